"""Which case a study belongs to, and whether the patient of the images is the patient of the case.

A study attaches to its case by accession number, then by Study Instance UID (as recorded on the case, e.g.
by the RIS order), and only to a case of the site that sent it. When the DICOM patient (id, name, birth date)
disagrees with the case's patient, the study is held for the technologist instead (identity vigilance,
CH-4.1.6).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from engine.services.context import EngineContext
from engine.services.instances import case_by_accession, case_by_study_uid, case_data
from engine.store.models import ProcessInstance


@dataclass(frozen=True)
class DicomPatient:
    patient_id: str | None
    patient_name: str | None  # DICOM PN: FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX
    birth_date: str | None  # YYYY-MM-DD

    def as_dict(self) -> dict[str, Any]:
        return {"patient_id": self.patient_id, "patient_name": self.patient_name, "birth_date": self.birth_date}


@dataclass(frozen=True)
class Decision:
    """Where a study goes: status 'attached' or 'held' with its case, or 'receiving' (no case yet)."""

    status: str
    case_id: int | None = None
    reason: str | None = None
    case_patient: dict[str, Any] = field(default_factory=dict)


def normalise(text: str | None) -> str:
    """Upper case, no accents, words separated by single spaces ('Le Bihan-Quéré' -> 'LE BIHAN QUERE')."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^A-Z0-9]+", " ", plain.upper()).split())


def identity_differences(dicom: DicomPatient, patient: dict[str, Any]) -> list[str]:
    """The identity traits on which the images and the case disagree (French labels); empty when they agree.

    Only traits present on both sides are compared; images carrying no identity at all are not attached.
    """
    differences: list[str] = []
    site_id = str(patient.get("site_patient_id") or "").strip()
    if dicom.patient_id and site_id and dicom.patient_id.strip() != site_id:
        differences.append("identifiant patient (IPP)")
    components = (dicom.patient_name or "").split("=")[0].split("^")
    family = normalise(components[0])
    given = normalise(" ".join(components[1:3]))
    if family:
        names = {normalise(patient.get("birth_name")), normalise(patient.get("used_name"))} - {""}
        if names and family not in names:
            differences.append("nom")
    if given:
        first_names = set(normalise(patient.get("first_names")).split())
        if first_names and not set(given.split()) <= first_names:
            differences.append("prénom")
    birth_date = str(patient.get("birth_date") or "")
    if dicom.birth_date and birth_date and dicom.birth_date != birth_date:
        differences.append("date de naissance")
    if not (dicom.patient_id or family or dicom.birth_date):
        differences.append("aucune identité dans les images")
    return differences


def find_case(ctx: EngineContext, site_id: str | None, accession_number: str | None,
              study_uid: str) -> tuple[int | None, str | None]:
    """(case id, None) for the case of the sending site, or (None, why not)."""
    candidates = []
    if accession_number:
        candidates.append(case_by_accession(ctx, accession_number))
        if site_id is not None:  # the newest case with this number may be another site's: look at ours too
            with ctx.read() as session:
                candidates.append(session.execute(select(ProcessInstance.id).where(
                    ProcessInstance.accession_number == accession_number, ProcessInstance.site_id == site_id)
                    .order_by(ProcessInstance.id.desc()).limit(1)).scalar_one_or_none())
    candidates.append(case_by_study_uid(ctx, study_uid))
    found = [c for c in candidates if c is not None]
    if not found:
        return None, "aucun dossier pour ce numéro d'accession ou cette étude"
    with ctx.read() as session:
        sites = dict(session.execute(select(ProcessInstance.id, ProcessInstance.site_id)
                                     .where(ProcessInstance.id.in_(found))).tuples().all())
    for case_id in found:
        if site_id is None or sites.get(case_id) == site_id:
            return case_id, None
    return None, "le dossier correspondant appartient à un autre site"


def decide(ctx: EngineContext, site_id: str | None, accession_number: str | None, study_uid: str,
           dicom: DicomPatient, case_id: int | None = None) -> Decision:
    """Match a study to a case (or to `case_id`, chosen by the person uploading) and check the identity."""
    reason = None
    if case_id is None:
        case_id, reason = find_case(ctx, site_id, accession_number, study_uid)
    if case_id is None:
        return Decision("receiving", reason=reason)
    patient = case_data(ctx, case_id).get("patient")
    patient = patient if isinstance(patient, dict) else {}
    case_patient = {k: patient[k] for k in ("birth_name", "used_name", "first_names", "birth_date",
                                            "site_patient_id") if patient.get(k)}
    differences = identity_differences(dicom, case_patient)
    if differences:
        return Decision("held", case_id, "identité différente : " + ", ".join(differences), case_patient)
    return Decision("attached", case_id, None, case_patient)
