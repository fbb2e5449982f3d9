"""The charter's hard gates: conditions the engine checks itself, whatever the diagram or the entry point.

Facts are what the engine recorded when elements with a charter role completed (engine.runtime.charter_facts):
``{"roles": {role: {"seq", "at", "by", "task", "values"}}, ...}``. A gate looks at the facts, the case data and
what the directory and the protocol catalogue say, and returns refusals (rule id and French message). The
services refuse the whole change when a gate refuses: nothing of it is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from engine.domain.charter import enforces
from engine.domain.protocols import Protocol
from engine.domain.radioprotection import UNKNOWN, normalise_modality, radioprotection_flags

FACTS_KEY = "_telerad_charter"

# The fields whose values a fact keeps, per role (read from the completed element's data).
ROLE_FIELDS: dict[str, tuple[str, ...]] = {
    "identity_check": ("identity_checked", "identity_status", "identity_document", "ins_checked"),
    "consent": ("patient_informed", "consent", "force_majeure_reason"),
    "justification": ("justification", "substitute_modality", "modified_modality", "modified_exam"),
    "protocol": ("protocol",),
    "contraindication_check": ("contrast_decision", "requester_contraindication", "joint_decision",
                               "requester_consulted", "joint_reason"),
    "presence_attestation": ("physician_name", "physician_role", "physically_present"),
    "injection": ("product", "volume_ml", "injected_at", "adverse_event", "lot"),
    "report": ("outcome", "poor_prognosis", "urgent_finding"),
    "announcement": ("plan_confirmed", "announcer", "planned_at"),
    "motivated_refusal": ("refusal_reason", "refusal_detail"),
    "routing_alert": ("action_taken", "alert_outcome"),
}
ACCEPTED_JUSTIFICATIONS = ("validate", "modify", "substitute")
RADIOLOGIST_ROLES = frozenset({"acceptance", "justification", "protocol", "report", "expert_opinion"})
# Steps only the radiologist who accepted the case takes (not another radiologist of the lane).
CASE_RADIOLOGIST_STEPS = frozenset({"justification", "protocol", "report"})


@dataclass(frozen=True)
class Refusal:
    rule: str
    message: str


def fact(facts: Mapping[str, Any], role: str) -> Mapping[str, Any] | None:
    found = facts.get("roles", {}).get(role)
    return found if isinstance(found, Mapping) else None


def _after(facts: Mapping[str, Any], role: str, other: str) -> bool:
    """Whether `role` was recorded after the latest `other` (False when `role` is missing)."""
    first, second = fact(facts, role), fact(facts, other)
    return first is not None and (second is None or int(first["seq"]) > int(second["seq"]))


def _values(facts: Mapping[str, Any], role: str) -> Mapping[str, Any]:
    found = fact(facts, role)
    values = found.get("values") if found else None
    return values if isinstance(values, Mapping) else {}


def _text(value: Any) -> bool:
    return isinstance(value, str) and any(c.isalnum() for c in value)


def identity_checked(facts: Mapping[str, Any]) -> bool:
    """The identity check was recorded, and it says the identity was checked (not merely that a step ran)."""
    return fact(facts, "identity_check") is not None \
        and _values(facts, "identity_check").get("identity_checked") is True


def consent_recorded(facts: Mapping[str, Any]) -> bool:
    """The patient was informed, and consented or force majeure was stated with its reason (CH-4.1.7, 4.2.1)."""
    values = _values(facts, "consent")
    if fact(facts, "consent") is None or values.get("patient_informed") is not True:
        return False
    return values.get("consent") == "given" or (values.get("consent") == "force_majeure"
                                                 and _text(values.get("force_majeure_reason")))


def protocol_after_justification(facts: Mapping[str, Any]) -> bool:
    """The radiologist justified the exam, then chose its protocol: the acquisition may take place."""
    justified = _values(facts, "justification").get("justification") in ACCEPTED_JUSTIFICATIONS
    return justified and _after(facts, "protocol", "justification")


def announcement_confirmed(facts: Mapping[str, Any]) -> bool:
    """The announcement plan was confirmed, after the latest report."""
    return _after(facts, "announcement", "report") and _values(facts, "announcement").get("plan_confirmed") is True


def final_modality(data: Mapping[str, Any], facts: Mapping[str, Any]) -> str | None:
    """The modality the radiologist's justification settled on: substituted, modified, else requested."""
    justified = fact(facts, "justification")
    values = justified.get("values", {}) if justified else {}
    for candidate in (values.get("substitute_modality") if values.get("justification") == "substitute" else None,
                      values.get("modified_modality") if values.get("justification") == "modify" else None,
                      data.get("modality")):
        if isinstance(candidate, str) and candidate:
            try:
                return normalise_modality(candidate)
            except ValueError:
                return None
    return None


@dataclass(frozen=True)
class CaseView:
    """What a gate needs to know of a case besides its facts."""

    data: Mapping[str, Any]
    facts: Mapping[str, Any]
    protocol: Protocol | None  # the protocol of the latest protocol fact, from the catalogue
    today: date  # the Paris date
    radiologist_problems: list[str] | None  # credential problems of the case's radiologist (None: no radiologist)


@enforces("CH-4.1.6", "CH-4.1.7", "CH-4.1.2", "CH-4.1.9", "CH-4.1.3", "CH-4.1.10", "CH-3.1", "CH-3.2")
def before_acquisition(case: CaseView) -> list[Refusal]:
    """Everything that must hold before a patient is exposed (an acquisition step opens or is recorded)."""
    refusals: list[Refusal] = []
    facts = case.facts
    if not identity_checked(facts):
        refusals.append(Refusal("CH-4.1.6", "l'identité du patient n'a pas été vérifiée (ou a été modifiée depuis)"))
    if not consent_recorded(facts):
        refusals.append(Refusal("CH-4.1.7", "l'information et le consentement du patient ne sont pas tracés"))
    justified = fact(facts, "justification")
    if justified is None or justified.get("values", {}).get("justification") not in ACCEPTED_JUSTIFICATIONS:
        refusals.append(Refusal("CH-4.1.2", "l'examen n'a pas été justifié par le radiologue"))
    if not _after(facts, "protocol", "justification"):
        refusals.append(Refusal("CH-4.1.9", "le radiologue n'a pas choisi le protocole après la justification"))
    elif case.protocol is None:
        refusals.append(Refusal("CH-4.1.9", "le protocole choisi n'existe pas dans le catalogue"))
    else:
        refusals += _protocol_refusals(case, case.protocol)
    if case.radiologist_problems is None:
        refusals.append(Refusal("CH-3.1", "aucun radiologue n'a accepté le dossier"))
    elif case.radiologist_problems:
        refusals.append(Refusal("CH-3.2", "le radiologue ne remplit plus les conditions d'exercice : "
                                + " ".join(case.radiologist_problems)))
    return refusals


def _protocol_refusals(case: CaseView, protocol: Protocol) -> list[Refusal]:
    refusals: list[Refusal] = []
    modality = final_modality(case.data, case.facts)
    if modality is not None and protocol.modality != modality:
        refusals.append(Refusal("CH-4.1.9", f"le protocole « {protocol.label} » ne correspond pas à la modalité "
                                            f"retenue ({modality})"))
    refusals += pregnancy_refusals(case.data, protocol.modality, case.today)
    if protocol.contrast:
        refusals += contrast_refusals(case.facts, case.data)
    return refusals


@enforces("CH-4.1.3")
def pregnancy_refusals(data: Mapping[str, Any], modality: str, today: date) -> list[Refusal]:
    """Exposure is blocked while the pregnancy status of a woman of childbearing age is unknown."""
    patient = data.get("patient") if isinstance(data.get("patient"), Mapping) else {}
    assert isinstance(patient, Mapping)
    try:
        birth_date = date.fromisoformat(str(patient.get("birth_date"))[:10])
        flags = radioprotection_flags(modality, patient.get("sex"), birth_date, today)
    except (ValueError, TypeError):
        return [Refusal("CH-4.1.3", "la date de naissance du patient est inconnue : la radioprotection ne peut "
                                    "pas être évaluée")]
    status = data.get("pregnancy_status")
    if flags.pregnancy_status_required and (status is None or status == UNKNOWN):
        return [Refusal("CH-4.1.3", "l'état de grossesse d'une patiente en âge de procréer n'est pas connu pour "
                                    "cette technique irradiante")]
    return []


@enforces("CH-4.1.10")
def contrast_refusals(facts: Mapping[str, Any], data: Mapping[str, Any]) -> list[Refusal]:
    """An injected protocol: contraindications checked jointly and a physician's presence attested, both after
    the latest protocol choice."""
    refusals: list[Refusal] = []
    check = fact(facts, "contraindication_check")
    if not _after(facts, "contraindication_check", "protocol") or check is None \
            or check.get("values", {}).get("contrast_decision") not in ("cleared", "contraindicated"):
        refusals.append(Refusal("CH-4.1.10", "les contre-indications au produit de contraste n'ont pas été "
                                             "vérifiées pour ce protocole"))
    else:
        values = check.get("values", {})
        if values.get("contrast_decision") == "contraindicated":
            refusals.append(Refusal("CH-4.1.10", "le radiologue a retenu une contre-indication : changez de "
                                                 "protocole"))
        elif (values.get("requester_contraindication") is True or data.get("requester_contraindication") is True) \
                and values.get("joint_decision") != "maintain":
            refusals.append(Refusal("CH-4.1.10", "le demandeur a signalé une contre-indication : une décision "
                                                 "conjointe documentée est nécessaire"))
    presence = fact(facts, "presence_attestation")
    if not _after(facts, "presence_attestation", "protocol") or presence is None \
            or presence.get("values", {}).get("physically_present") is not True \
            or not str(presence.get("values", {}).get("physician_name") or "").strip():
        refusals.append(Refusal("CH-4.1.10", "la présence d'un médecin nommé auprès du manipulateur n'a pas été "
                                             "attestée pour l'injection"))
    return refusals


@enforces("CH-4.1.10")
def before_injection(facts: Mapping[str, Any], data: Mapping[str, Any]) -> list[Refusal]:
    """No injection before the contraindications are settled and a named physician's presence is attested."""
    return contrast_refusals(facts, data)


def handled_locally(facts: Mapping[str, Any]) -> bool:
    """The site's medical lead closed the teleradiology case because it was handled on site, with the reason."""
    alert = fact(facts, "routing_alert")
    values = alert.get("values", {}) if alert else {}
    return values.get("alert_outcome") == "handled_locally" and bool(str(values.get("action_taken") or "").strip())


@enforces("CH-1.2")
def before_closing(facts: Mapping[str, Any]) -> list[Refusal]:
    """A case ends only with a released report or a motivated refusal (or, when no radiologist was left, a
    documented local handling decided by the site's medical lead)."""
    if fact(facts, "report_release") is None and fact(facts, "motivated_refusal") is None \
            and not handled_locally(facts):
        return [Refusal("CH-1.2", "un dossier ne peut se terminer que par un compte-rendu diffusé ou un refus "
                                  "motivé")]
    return []


@enforces("CH-4.1.13")
def before_release(facts: Mapping[str, Any], data: Mapping[str, Any]) -> list[Refusal]:
    """A poor-prognosis report is released only after the announcement plan is confirmed."""
    report = fact(facts, "report")
    poor = (report.get("values", {}).get("poor_prognosis") if report else None) is True \
        or data.get("poor_prognosis") is True
    if poor and not announcement_confirmed(facts):
        return [Refusal("CH-4.1.13", "un compte-rendu de pronostic grave n'est diffusé qu'après confirmation du "
                                     "plan d'annonce avec le demandeur")]
    return []


@enforces("CH-4.2.1")
def before_expert_opinion(facts: Mapping[str, Any]) -> list[Refusal]:
    """The tele-expert gives his opinion only once the patient consented to a named tele-expert."""
    if not consent_recorded(facts):
        return [Refusal("CH-4.2.1", "le consentement du patient à l'avis d'un télé-expert nommé n'est pas tracé")]
    return []


def describe(refusals: list[Refusal], step: str) -> str:
    """One French sentence for the user: what was refused and why, with the rule ids."""
    reasons = " ; ".join(f"{r.message} ({r.rule})" for r in refusals)
    return f"Étape refusée par la charte de téléradiologie ({step}) : {reasons}."
