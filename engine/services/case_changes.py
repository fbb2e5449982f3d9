"""What an outside change (an RIS amendment or cancel) may still do to a case, given the charter facts.

- An amendment of the patient's identity traits after the identity check (or the justification), or of the
  modality or the indication after the justification, would leave those steps vouching for data they never saw
  (CH-4.1.6, CH-4.1.2): it is refused with the reason; before those steps it is applied.
- A case that has reached the acquisition step (the patient may have been exposed) ends only with a released
  report or a motivated refusal (CH-1.2): an order cancel is refused from then on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain import gates
from engine.domain.charter import enforces
from engine.runtime import Snapshot
from engine.store.models import AuditEvent

# Case data fields holding the indication of the exam (the request's clinical part) and its modality.
INDICATION_FIELDS = ("modality", "requested_exam", "question", "clinical_context", "clinical_exam_done",
                     "clinical_exam_date", "history", "paraclinical", "prior_exams")
# The order's own references, settled with the justification too: the urgency (due times), the requesting
# physician named in the joint justification, and the identifiers that images are matched on.
ORDER_FIELDS = ("urgency", "requesting_physician", "study_instance_uid", "accession_number")
FIELD_LABELS = {
    "patient.birth_name": "nom de naissance", "patient.used_name": "nom utilisé",
    "patient.first_names": "prénoms", "patient.birth_date": "date de naissance", "patient.sex": "sexe",
    "patient.ins": "INS", "patient.site_patient_id": "IPP", "patient.identity_status": "statut de l'identité",
    "patient.birth_place_code": "lieu de naissance", "modality": "modalité", "requested_exam": "examen demandé",
    "question": "question posée", "clinical_context": "contexte clinique", "clinical_exam_done": "examen clinique",
    "clinical_exam_date": "date de l'examen clinique", "history": "antécédents",
    "paraclinical": "examens paracliniques", "prior_exams": "examens antérieurs", "urgency": "urgence",
    "requesting_physician": "médecin demandeur", "study_instance_uid": "identifiant de l'examen (Study UID)",
    "accession_number": "numéro d'accession",
}
# Roles recorded at or after the acquisition: the patient may have been exposed.
ACQUISITION_AND_AFTER = ("acquisition", "injection", "report", "announcement", "report_release")
# Audit action written on the case's chain when a DICOM study is attached to it (engine.services.images).
IMAGES_ATTACHED = "dicom.study_attached"


def _differs(old: Any, new: Any) -> bool:
    if isinstance(old, str) and isinstance(new, str):  # 'QUÉRÉ' from the RIS is the 'Quéré' of the case
        return " ".join(old.split()).casefold() != " ".join(new.split()).casefold()
    return bool(old != new)


def changed_fields(current: Mapping[str, Any], values: Mapping[str, Any]) -> list[str]:
    """Dotted paths of the fields `values` would change (objects such as `patient` are merged one level deep,
    as LiveWorkflow.update_data does). An absent or empty old value that gets a value counts as a change."""
    changed: list[str] = []
    for key, value in values.items():
        old = current.get(key)
        if isinstance(value, Mapping) and (old is None or isinstance(old, Mapping)):
            changed += [f"{key}.{sub}" for sub, new in value.items()
                        if _differs((old or {}).get(sub), new)]
        elif _differs(old, value):
            changed.append(key)
    return changed


def _labels(paths: Iterable[str]) -> str:
    return ", ".join(FIELD_LABELS.get(path, path) for path in paths)


@enforces("CH-4.1.6", "CH-4.1.2")
def amendment_refusals(facts: Mapping[str, Any], current: Mapping[str, Any],
                       values: Mapping[str, Any]) -> list[gates.Refusal]:
    """Refusals of an outside amendment of a case, given what the case has recorded."""
    changed = changed_fields(current, values)
    identity = [p for p in changed if p == "patient" or p.startswith("patient.")]
    # An order reference the case did not have yet (the Study Instance UID the RIS assigns later) may be given;
    # one the case has may not be changed once the exam is justified.
    indication = [p for p in changed if p in INDICATION_FIELDS
                  or (p.split(".")[0] in ORDER_FIELDS and current.get(p.split(".")[0]) not in (None, ""))]
    checked = gates.fact(facts, "identity_check") is not None
    justified = gates.fact(facts, "justification") is not None
    refusals = []
    if identity and (checked or justified):
        step = "vérifiée" if checked else "prise en compte pour la justification de l'examen"
        refusals.append(gates.Refusal("CH-4.1.6", f"l'identité du patient a déjà été {step} ; la modification "
                                                  f"de {_labels(identity)} n'est pas appliquée : prévenez le "
                                                  "manipulateur du site, qui corrige l'identité dans le dossier"))
    if indication and justified:
        refusals.append(gates.Refusal("CH-4.1.2", "l'examen a déjà été justifié par le radiologue ; la "
                                                  f"modification de {_labels(indication)} n'est pas appliquée : "
                                                  "annulez la demande et envoyez-en une nouvelle, ou prévenez le "
                                                  "radiologue"))
    return refusals


def images_attached(session: Session, case_id: int) -> bool:
    """Whether a DICOM study was ever attached to the case (the attach is an event of the case's audit chain)."""
    return session.execute(select(AuditEvent.id).where(
        AuditEvent.chain == case_id, AuditEvent.action == IMAGES_ATTACHED).limit(1)).first() is not None


@enforces("CH-1.2")
def cancel_refusals(facts: Mapping[str, Any], snapshot: Snapshot, acquisition_task_seen: bool,
                    attached: bool) -> list[gates.Refusal]:
    """A case that reached the acquisition step cannot be cancelled from outside any more (CH-1.2)."""
    reached = any(gates.fact(facts, role) is not None for role in ACQUISITION_AND_AFTER) \
        or any(task.charter_role == "acquisition" for task in snapshot.user_tasks) \
        or acquisition_task_seen or attached
    if not reached:
        return []
    return [gates.Refusal("CH-1.2", "le dossier a atteint l'étape d'acquisition des images : il ne peut plus "
                                    "être annulé, il se termine par un compte-rendu diffusé ou par un refus "
                                    "motivé du radiologue")]
