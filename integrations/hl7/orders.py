"""Orders and patient updates -> engine calls.

ORM^O01 / OMI^O23 order control NW starts a telediagnosis case (waiting at its request form, pre-filled), CA (or
DC) cancels it, XO updates it; ADT^A08 updates the patient traits of every running case of the site for that
patient (PID-3). A case is found by its accession number within the sender's site only. NW is idempotent by
accession number too, so a message processed again after a crash never makes a second case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.domain.actors import Actor
from engine.domain.data_checks import data_problems, paris_date
from engine.errors import CharterRefused
from engine.services.case_changes import changed_fields
from engine.services.case_lookup import latest_case_by_accession
from engine.services.context import EngineContext
from engine.services.instances import (
    amend_case,
    cancel_instance,
    case_data,
    cases_for_patient,
    check_amendment,
    start_instance,
)
from forms.validation import field_path, french_message
from integrations.hl7.codec import AckError
from integrations.hl7.fields import Fields, OrderRefused, accession_number, order_data, patient_traits

PROCESS = "telediagnosis"
REQUEST_FORM = "td_request.schema.json"
LOCATIONS = {  # case data field -> where it comes from, for the ERR segment
    "patient": ("PID", 5), "patient.birth_name": ("PID", 5), "patient.first_names": ("PID", 5),
    "patient.used_name": ("PID", 5), "patient.birth_date": ("PID", 7), "patient.sex": ("PID", 8),
    "patient.ins": ("PID", 3), "patient.site_patient_id": ("PID", 3), "patient.identity_status": ("PID", 32),
    "requested_exam": ("OBR", 4), "modality": ("OBR", 24), "urgency": ("TQ1", 9), "question": ("OBR", 31),
    "clinical_context": ("OBR", 13),
}


@dataclass(frozen=True)
class Sender:
    application: str
    facility: str
    site_id: str

    @property
    def actor(self) -> Actor:
        return Actor(f"hl7:{self.application}@{self.facility}", frozenset({"requester"}), frozenset({self.site_id}))


@dataclass(frozen=True)
class Outcome:
    case_id: int | None
    note: str


def apply(ctx: EngineContext, sender: Sender, message_type: str, f: Fields, control_id: str) -> Outcome:
    if message_type == "ADT^A08":
        return _update_patient(ctx, sender, f, control_id)
    control = f.get("ORC", 1).upper()
    if control == "NW":
        return _new_order(ctx, sender, f, control_id)
    if control in ("CA", "DC"):
        return _cancel(ctx, sender, f, control, control_id)
    if control == "XO":
        return _change(ctx, sender, f, control_id)
    raise OrderRefused(AckError(103, f"Code de commande ORC-1 non pris en charge : « {control} » (NW, CA, XO).",
                                ("ORC", 1)))


def _new_order(ctx: EngineContext, sender: Sender, f: Fields, control_id: str) -> Outcome:
    accession = accession_number(f)
    if not accession:
        raise OrderRefused(AckError(101, "Numéro d'accession manquant (OBR-18 ou IPC-1).", ("OBR", 18)))
    data = {"patient": patient_traits(f, complete=True), **order_data(f), "accession_number": accession,
            "hl7": {"sender": f"{sender.application}@{sender.facility}", "control_id": control_id}}
    check(ctx, data, complete=True)
    existing = latest_case_by_accession(ctx, accession)
    if existing is not None:
        case_id, status = existing.id, existing.status
        if existing.site_id != sender.site_id:
            raise OrderRefused(AckError(205, f"Numéro d'accession {accession} déjà utilisé par un autre "
                                             "établissement : attribuez-en un autre.", ("OBR", 18)))
        if status != "cancelled":
            if _another_patient(case_data(ctx, case_id).get("patient") or {}, data["patient"]):
                raise OrderRefused(AckError(205, f"Numéro d'accession {accession} déjà utilisé pour un autre patient "
                                                 "de l'établissement : vérifiez l'identité et le numéro.", ("PID", 5)))
            return Outcome(case_id, "commande déjà reçue : dossier existant")
    case_id = start_instance(ctx, sender.actor, PROCESS, data, site_id=sender.site_id)
    return Outcome(case_id, "dossier créé")


_IDENTIFYING = ("birth_name", "first_names", "birth_date", "sex", "site_patient_id")


def _another_patient(known: Any, sent: Any) -> bool:
    """Whether a repeated order names another patient than its case's (traits given on both sides differ)."""
    if not isinstance(known, dict) or not isinstance(sent, dict):
        return False
    both = {k: sent[k] for k in _IDENTIFYING if known.get(k) not in (None, "") and sent.get(k) not in (None, "")}
    return bool(changed_fields(known, both))


def _cancel(ctx: EngineContext, sender: Sender, f: Fields, control: str, control_id: str) -> Outcome:
    case_id, status = _case_of_order(ctx, sender, f)
    if status == "completed":
        raise OrderRefused(AckError(207, "Dossier déjà terminé (compte rendu rendu) : la commande ne peut plus "
                                         "être annulée.", ("ORC", 1)))
    try:
        cancel_instance(ctx, sender.actor, case_id, f"commande annulée par le RIS ({control}, message {control_id})")
    except CharterRefused as err:  # reached the acquisition: ends with a report or a motivated refusal (CH-1.2)
        raise OrderRefused(AckError(207, str(err), ("ORC", 1))) from err
    return Outcome(case_id, "dossier annulé" if status == "running" else "dossier déjà annulé")


def _change(ctx: EngineContext, sender: Sender, f: Fields, control_id: str) -> Outcome:
    case_id, status = _case_of_order(ctx, sender, f)
    values: dict[str, Any] = order_data(f)
    patient = patient_traits(f, complete=False)
    if patient:
        values["patient"] = patient
    check(ctx, values, complete=False)
    try:
        amended = status == "running" and amend_case(ctx, sender.actor, case_id, values,
                                                     f"commande modifiée par le RIS (XO, message {control_id})")
    except CharterRefused as err:  # identity checked or exam justified: refused with the reason (CH-4.1.6, 4.1.2)
        raise OrderRefused(AckError(207, str(err), _location(err))) from err
    if not amended:
        raise OrderRefused(AckError(207, "Dossier terminé ou annulé : la commande ne peut plus être modifiée.",
                                    ("ORC", 1)))
    return Outcome(case_id, "dossier modifié")


def _update_patient(ctx: EngineContext, sender: Sender, f: Fields, control_id: str) -> Outcome:
    traits = patient_traits(f, complete=False)
    patient_id = traits.pop("site_patient_id", None)
    if not patient_id:
        raise OrderRefused(AckError(101, "Identifiant patient de l'établissement manquant (PID-3).", ("PID", 3)))
    check(ctx, {"patient": traits}, complete=False)
    cases = cases_for_patient(ctx, sender.site_id, patient_id) if traits else []
    try:
        for case_id in cases:  # every case is checked first: a refused message changes none of them
            check_amendment(ctx, sender.actor, case_id, {"patient": traits})
        updated = [case_id for case_id in cases
                   if amend_case(ctx, sender.actor, case_id, {"patient": traits},
                                 f"identité mise à jour par le SIH (ADT^A08, message {control_id})")]
    except CharterRefused as err:
        raise OrderRefused(AckError(207, str(err), ("PID", 5))) from err
    return Outcome(updated[0] if updated else None, f"{len(updated)} dossier(s) en cours mis à jour")


def _case_of_order(ctx: EngineContext, sender: Sender, f: Fields) -> tuple[int, str]:
    accession = accession_number(f)
    found = latest_case_by_accession(ctx, accession) if accession else None
    if found is None or found.site_id != sender.site_id:
        raise OrderRefused(AckError(204, f"Aucun dossier de cet établissement pour le numéro d'accession "
                                         f"« {accession} ».", ("OBR", 18)))
    return found.id, found.status


def _location(err: CharterRefused) -> tuple[str, int]:
    """Where the refused change came from: the patient (PID-5) or the order's exam (OBR-4)."""
    return ("PID", 5) if any(rule == "CH-4.1.6" for rule, _ in err.refusals) else ("OBR", 4)


def check(ctx: EngineContext, data: dict[str, Any], complete: bool) -> None:
    """Validate what the message gives against the request form (only the fields it gives; for a new order the
    patient must be complete) and the charter's data checks (INS key, no date in the future: CH-4.1.6, CH-8.1,
    CH-4.1.1). Refused fields are answered AE with the French message."""
    problems: dict[str, str] = dict(data_problems(data, paris_date(ctx.clock.now())))
    errors = ctx.forms.validator(REQUEST_FORM).iter_errors(data) if ctx.forms.exists(REQUEST_FORM) else ()
    for error in errors:
        path = field_path(error)
        if error.validator == "additionalProperties" and not list(error.absolute_path):
            continue  # order details beyond the form (accession number, RIS order...) are kept in the case
        if error.validator == "required" and (not complete or "." not in path):
            continue  # the requester completes the rest of the request form
        problems.setdefault(path, french_message(error))
    if problems:
        first = sorted(problems)[0]
        text = "; ".join(f"{path} : {message}" for path, message in sorted(problems.items()))
        raise OrderRefused(AckError(102 if "obligatoire" not in problems[first] else 101,
                                    f"Données refusées par le formulaire de demande — {text}",
                                    LOCATIONS.get(first, LOCATIONS.get(first.split(".")[0]))))

