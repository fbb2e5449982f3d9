"""The charter role of a diagram element: what a step *is* for the charter, whatever its id or name.

A designer marks an element with the extension property ``charterRole`` (in ``spiffworkflow:properties``),
for example ``<spiffworkflow:property name="charterRole" value="acquisition"/>``. The engine's hard gates
(engine.domain.gates) and the deployment-time path analysis (engine.runtime.charter_paths) read these roles;
a diagram of a charter family that lacks a required role, or whose paths skip one, is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLE_PROPERTY = "charterRole"


@dataclass(frozen=True)
class CharterRole:
    name: str
    rules: tuple[str, ...]
    label: str  # French, shown to designers and in refusals


_ROLES = (
    CharterRole("request", ("CH-4.1.1", "CH-4.1.8"), "demande"),
    CharterRole("identity_check", ("CH-4.1.6",), "vérification d'identité"),
    CharterRole("consent", ("CH-4.1.7", "CH-4.2.1"), "information et consentement du patient"),
    CharterRole("justification", ("CH-4.1.2",), "justification de l'examen"),
    CharterRole("radioprotection", ("CH-4.1.3",), "radioprotection"),
    CharterRole("protocol", ("CH-4.1.9",), "choix du protocole"),
    CharterRole("contraindication_check", ("CH-4.1.10",), "recherche des contre-indications"),
    CharterRole("presence_attestation", ("CH-4.1.10",), "attestation de présence médicale"),
    CharterRole("injection", ("CH-4.1.10",), "injection"),
    CharterRole("acquisition", ("CH-4.1.4",), "acquisition"),
    CharterRole("report", ("CH-4.1.12",), "interprétation et compte-rendu"),
    CharterRole("announcement", ("CH-4.1.13",), "procédure d'annonce"),
    CharterRole("report_release", ("CH-1.2",), "diffusion du compte-rendu"),
    CharterRole("motivated_refusal", ("CH-1.2", "CH-4.1.14"), "refus motivé"),
    CharterRole("acknowledgement", ("CH-4.1.15",), "prise de connaissance du compte-rendu"),
    CharterRole("routing", ("CH-3.3",), "offre du dossier aux radiologues, par proximité"),
    CharterRole("acceptance", ("CH-3.1", "CH-3.2"), "acceptation du dossier par un radiologue"),
    CharterRole("routing_alert", ("CH-3.3",), "alerte : aucun radiologue disponible"),
    CharterRole("routing_alert_reminder", ("CH-3.3",), "relance de l'alerte : aucun radiologue disponible"),
    CharterRole("report_overdue", ("CH-4.1.12",), "signalement du retard du compte-rendu"),
    CharterRole("expert_opinion", ("CH-4.2.3",), "avis du télé-expert"),
)
ROLES: dict[str, CharterRole] = {role.name: role for role in _ROLES}

# The charter families of CH-1.1, by process id, and the roles a diagram of that family must contain.
FAMILY_REQUIRED_ROLES: dict[str, tuple[str, ...]] = {
    "telediagnosis": ("request", "identity_check", "consent", "justification", "radioprotection", "protocol",
                      "acquisition", "report", "report_release", "motivated_refusal"),
    # No motivated refusal required here: a tele-expert who lacks data says what and why and the local
    # radiologist completes the file (CH-4.2.3); the case always ends with the expert's report, and the closing
    # invariant (CLOSING_ROLES before every end) still proves CH-1.2.
    "teleexpertise": ("request", "consent", "expert_opinion", "report_release"),
}

# Roles every path from a start event must pass before reaching an element of the key role.
REQUIRED_BEFORE: dict[str, tuple[str, ...]] = {
    "acquisition": ("identity_check", "consent", "justification", "radioprotection", "protocol"),
    "injection": ("contraindication_check", "presence_attestation"),
    "expert_opinion": ("consent",),  # CH-4.2.1: consent to the opinion of a named tele-expert first
}
# An end event of a charter family's top process must be preceded, on every path, by one of these.
CLOSING_ROLES = ("report_release", "motivated_refusal")
# ... or by a local handling: when no radiologist was left, the routing alert (role) decided, with its reason,
# that the site handles the case itself, and the path takes a flow whose condition holds only then
# (engine.domain.gates.handled_locally).
LOCAL_CLOSURE = ("routing_alert", 'alert_outcome == "handled_locally"')
# A path from a `protocol` element to `acquisition` (or `injection`) must pass `presence_attestation` unless the
# gateway conditions taken on it cannot hold together with this fact: the chosen protocol injects contrast
# (result of the service operation telerad.protocol_facts, called right after the protocol task).
INJECTION_FACT = 'protocol_facts["contrast"] == True'
INJECTION_FACT_OPERATION = "telerad.protocol_facts"  # the only writer of that variable the fact survives
# Every waiting state (user task, receive task, intermediate catch event) should have a due time (a timer).
DUE_TIME_RULE = "CH-4.1.12"


def rule_of(role: str, family: str = "telediagnosis") -> str:
    """The charter rule a finding about `role` cites: the family's own rule where the role has one per family
    (consent: CH-4.1.7 in telediagnosis, CH-4.2.1 in teleexpertise)."""
    found = ROLES.get(role)
    if found is None:
        return "CH-1.1"
    own = [r for r in found.rules if r.startswith("CH-4.2")] if family == "teleexpertise" else \
        [r for r in found.rules if not r.startswith("CH-4.2")]
    return (own or list(found.rules))[0]


def label(role: str) -> str:
    found = ROLES.get(role)
    return found.label if found else role


# Where a role may stand. A role done by a person is a user task whose form declares the same role
# (`"x-charter-role"` in its JSON Schema): the fact the engine records then carries that form's answers, which the
# gates check. A role done by the engine is a service task calling one of its operations (or a decision table).
PERSON_ROLES = frozenset({"request", "identity_check", "consent", "justification", "protocol",
                          "contraindication_check", "presence_attestation", "injection", "acquisition", "report",
                          "announcement", "acknowledgement", "routing_alert", "acceptance", "expert_opinion"})
ENGINE_ROLES: dict[str, tuple[str, ...]] = {  # role -> operations that may carry it (empty: any operation)
    "report_release": ("telerad.release_report", "telerad.teleexpertise_recipients"),
    "routing": ("telerad.routing_start",),
    "radioprotection": ("telerad.protocol_facts", "telerad.patient_facts"),  # or a decision table
    "report_overdue": (),
    "routing_alert_reminder": (),
}
# A motivated refusal is the refusal form's user task, or a call of the process that holds it.
CALLABLE_ROLES = frozenset({"motivated_refusal"})
# Steps only the case's radiologist (the one who accepted it) takes: the charter's joint justification, the choice
# of protocol and the report are his (CH-4.1.2, CH-4.1.9, CH-4.1.12); their task must be in a radiologist lane.
RADIOLOGIST_STEPS = frozenset({"acceptance", "justification", "protocol", "report"})
FORM_ROLE_KEY = "x-charter-role"
