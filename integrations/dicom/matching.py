"""Which case a study belongs to, and whether the patient of the images is the patient of the case.

A study attaches to its case by accession number, then by Study Instance UID (as recorded on the case, e.g.
by the RIS order), and only to a case of the site that sent it. Images are used only after the case's identity
check (CH-4.1.6, CH-8.1): before it, the study is held; after it, its traits are compared with the case's (name,
birth date, sex, IPP): at least two must match and none may contradict, else it is held for the technologist's
reconciliation. A study carrying only a Patient ID therefore never attaches (one trait at most).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from engine.domain.charter import enforces
from engine.services.case_lookup import latest_site_case_by_accession, sites_of_cases
from engine.services.context import EngineContext
from engine.services.images import case_identity
from engine.services.instances import case_by_accession, case_by_study_uid

MIN_MATCHING_TRAITS = 2
# The traits that count towards the two: the sex may contradict, it never identifies on its own (CH-4.1.6).
STRONG_TRAITS = frozenset({"nom", "date de naissance", "identifiant patient (IPP)"})
AWAITING_CHECK = ("identité du patient pas encore vérifiée dans le dossier : images retenues jusqu'à la "
                  "vérification d'identité")
AWAITING_PROTOCOL = ("examen pas encore justifié ou protocole pas encore choisi par le radiologue : images retenues "
                     "jusqu'au choix du protocole")


@dataclass(frozen=True)
class DicomPatient:
    patient_id: str | None
    patient_name: str | None  # DICOM PN: FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX
    birth_date: str | None  # YYYY-MM-DD
    sex: str | None = None  # M, F, O

    def as_dict(self) -> dict[str, Any]:
        return {"patient_id": self.patient_id, "patient_name": self.patient_name, "birth_date": self.birth_date,
                "sex": self.sex}


@dataclass(frozen=True)
class Decision:
    """Where a study goes: status 'attached' or 'held' with its case, or 'receiving' (no case yet).
    `awaiting_check`: held only because the case's identity is not checked yet (no reconciliation yet)."""

    status: str
    case_id: int | None = None
    reason: str | None = None
    case_patient: dict[str, Any] = field(default_factory=dict)
    awaiting_check: bool = False


@dataclass(frozen=True)
class Comparison:
    matching: tuple[str, ...]  # French labels of the traits both sides give alike
    contradicting: tuple[str, ...]  # ... and of those they give differently


def normalise(text: str | None) -> str:
    """Upper case, no accents, words separated by single spaces ('Le Bihan-Quéré' -> 'LE BIHAN QUERE')."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^A-Z0-9]+", " ", plain.upper()).split())


def _names(patient_name: str | None) -> tuple[str, str]:
    components = (patient_name or "").split("=")[0].split("^")
    return normalise(components[0]), normalise(" ".join(components[1:3]))


def _sex(value: Any) -> str:
    text = str(value or "").strip().upper()
    return text if text in ("M", "F") else ""  # O, U, empty: not a trait one can compare


def compare(dicom: DicomPatient, patient: dict[str, Any]) -> Comparison:
    """Compare the traits the images carry with the case's patient (only traits present on both sides count)."""
    matching: list[str] = []
    contradicting: list[str] = []

    def weigh(label: str, present: bool, same: bool) -> None:
        if present:
            (matching if same else contradicting).append(label)

    ipp = str(patient.get("site_patient_id") or "").strip()
    weigh("identifiant patient (IPP)", bool(dicom.patient_id and ipp), (dicom.patient_id or "").strip() == ipp)
    family, given = _names(dicom.patient_name)
    names = {normalise(patient.get("birth_name")), normalise(patient.get("used_name"))} - {""}
    first_names = set(normalise(patient.get("first_names")).split())
    if family and names:
        if family not in names:
            contradicting.append("nom")
        elif given and first_names and not set(given.split()) <= first_names:
            contradicting.append("prénom")
        else:
            matching.append("nom")
    birth_date = str(patient.get("birth_date") or "")[:10]
    weigh("date de naissance", bool(dicom.birth_date and birth_date), dicom.birth_date == birth_date)
    weigh("sexe", bool(_sex(dicom.sex) and _sex(patient.get("sex"))), _sex(dicom.sex) == _sex(patient.get("sex")))
    return Comparison(tuple(matching), tuple(contradicting))


@enforces("CH-4.1.6", "CH-8.1")
def identity_differences(dicom: DicomPatient, patient: dict[str, Any]) -> list[str]:
    """Why the images cannot be taken as the case patient's (French); empty when at least two traits match and
    none contradicts."""
    found = compare(dicom, patient)
    differences = list(found.contradicting)
    if not (dicom.patient_id or dicom.patient_name or dicom.birth_date):
        differences.append("aucune identité dans les images")
    elif not differences and len([t for t in found.matching if t in STRONG_TRAITS]) < MIN_MATCHING_TRAITS:
        agreed = ", ".join(found.matching) or "aucun"
        differences.append(f"moins de deux traits concordants parmi le nom, la date de naissance et l'IPP (le sexe "
                           f"ne suffit pas à identifier ; concordant : {agreed})")
    return differences


def same_patient(first: DicomPatient, second: DicomPatient) -> list[str]:
    """The traits on which two instances disagree (only traits present in both are compared)."""
    differences = []
    if first.patient_id and second.patient_id and first.patient_id.strip() != second.patient_id.strip():
        differences.append("identifiant patient")
    (family1, given1), (family2, given2) = _names(first.patient_name), _names(second.patient_name)
    if (family1 and family2 and family1 != family2) or (given1 and given2 and given1 != given2):
        differences.append("nom")
    if first.birth_date and second.birth_date and first.birth_date != second.birth_date:
        differences.append("date de naissance")
    if _sex(first.sex) and _sex(second.sex) and _sex(first.sex) != _sex(second.sex):
        differences.append("sexe")
    return differences


def find_case(ctx: EngineContext, site_id: str | None, accession_number: str | None,
              study_uid: str) -> tuple[int | None, str | None]:
    """(case id, None) for the case of the sending site, or (None, why not)."""
    candidates = []
    if accession_number:
        candidates.append(case_by_accession(ctx, accession_number))
        if site_id is not None:  # the newest case with this number may be another site's: look at ours too
            candidates.append(latest_site_case_by_accession(ctx, accession_number, site_id))
    candidates.append(case_by_study_uid(ctx, study_uid))
    found = [c for c in candidates if c is not None]
    if not found:
        return None, "aucun dossier pour ce numéro d'accession ou cette étude"
    sites = sites_of_cases(ctx, found)
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
    case = case_identity(ctx, case_id)
    if site_id is not None and case.site_id != site_id:
        return Decision("receiving", reason="le dossier correspondant appartient à un autre site")
    if not case.identity_checked:
        return Decision("held", case_id, AWAITING_CHECK, case.patient, awaiting_check=True)
    differences = identity_differences(dicom, case.patient)
    if differences:
        return Decision("held", case_id, ("identité différente : " + ", ".join(differences))[:300], case.patient)
    if case.awaiting_protocol:
        return Decision("held", case_id, AWAITING_PROTOCOL, case.patient, awaiting_check=True)
    return Decision("attached", case_id, None, case.patient)
