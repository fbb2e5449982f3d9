"""The studies of a teleexpertise's patient found on the requesting site's PACS (CH-4.2.2): the choices of the
tele-expert's "original study" field (``"x-options": "pacs_studies"``) and its server-side check.

The DICOM priors tick (integrations.dicom.priors) records them in the table ``case_pacs_study`` (defined with the
site PACS tables, integrations.dicom.pacs_models) when it runs its C-FIND for a teleexpertise. A form's option
source and task check see the case's data, not its id: the candidates are found by the case's site and the same
patient key the tick recorded them under (``patient_key``: the patient's site identifier, else the normalised
family name and birth date, as the C-FIND asked). Two running cases of one patient at one site therefore offer the
same studies: those the site's PACS holds for that patient.

    pacs_study_choices(ctx, case)      # [(study UID, "12/09/2023 — scanner — Scanner abdominal (n° MX-1)")]
    check_original_study(ctx, site_id, data, case)   # TaskCheck of te_check: {} or {field: French message}
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import column, select, table

from engine.domain.charter import enforces
from engine.domain.protocols import modality_label
from engine.services.context import EngineContext

ORIGINAL_STUDY_FORM = "te_check.schema.json"
ORIGINAL_STUDY_FIELD = "original_study_uid"
MAX_CANDIDATES = 50
# The table integrations.dicom.pacs_models.CasePacsStudy defines (and Alembic migrates), read here by name: the
# engine never imports an adapter.
CASE_PACS_STUDY = table("case_pacs_study", column("case_id"), column("study_uid"), column("site_id"),
                        column("patient_key"), column("study_date"), column("modalities"), column("description"),
                        column("accession_number"), column("found_at"))


@dataclass(frozen=True)
class PacsStudy:
    uid: str
    date: str | None  # YYYY-MM-DD
    modalities: str | None  # ModalitiesInStudy, backslash-separated
    description: str | None
    accession_number: str | None

    def label(self) -> str:
        """What the tele-expert reads: date, modality and description in French (never the UID alone)."""
        date = f"{self.date[8:10]}/{self.date[5:7]}/{self.date[:4]}" if self.date and len(self.date) == 10 \
            else "date inconnue"
        codes = [code for code in (self.modalities or "").split("\\") if code.strip()]
        modality = ", ".join(modality_label(code.strip().upper()) for code in codes) or "modalité non précisée"
        text = f"{date} — {modality} — {self.description or 'sans description'}"
        return f"{text} (n° d'examen {self.accession_number})" if self.accession_number else text


def _plain(text: Any) -> str:
    decomposed = unicodedata.normalize("NFKD", str(text or ""))
    letters = "".join(c if c.isalnum() else " " for c in decomposed if not unicodedata.combining(c))
    return " ".join(letters.upper().split())


def patient_key(patient: Any) -> str | None:
    """The key a patient's PACS studies are recorded under: "ipp:<site identifier>", else "name:<family name>|
    <birth date>" (upper case, no accents); None when neither is known (the PACS is not asked either)."""
    if not isinstance(patient, Mapping):
        return None
    ipp = str(patient.get("site_patient_id") or "").strip()
    if ipp:
        return f"ipp:{ipp}"[:200]
    family = _plain(patient.get("birth_name") or patient.get("used_name"))
    birth_date = str(patient.get("birth_date") or "")[:10]
    if family and len(birth_date) == 10:
        return f"name:{family}|{birth_date}"[:200]
    return None


def pacs_studies(ctx: EngineContext, site_id: str | None, patient: Any) -> list[PacsStudy]:
    """The studies the site's PACS holds for the patient, as last found by the priors tick, newest first."""
    key = patient_key(patient)
    if not site_id or key is None:
        return []
    with ctx.read() as session:
        rows = session.execute(select(CASE_PACS_STUDY.c.study_uid, CASE_PACS_STUDY.c.study_date,
                                      CASE_PACS_STUDY.c.modalities, CASE_PACS_STUDY.c.description,
                                      CASE_PACS_STUDY.c.accession_number)
                               .where(CASE_PACS_STUDY.c.site_id == site_id, CASE_PACS_STUDY.c.patient_key == key)
                               .order_by(CASE_PACS_STUDY.c.found_at.desc())
                               .limit(MAX_CANDIDATES * 4)).all()
    studies: dict[str, PacsStudy] = {}
    for uid, date, modalities, description, accession in rows:
        studies.setdefault(uid, PacsStudy(uid, date, modalities, description, accession))
    return sorted(studies.values(), key=lambda s: (s.date or "", s.uid), reverse=True)[:MAX_CANDIDATES]


def _site(site_id: str | None, case: Mapping[str, Any]) -> str | None:
    site = case.get("site_id")
    return site if isinstance(site, str) and site else site_id


def pacs_study_choices(ctx: EngineContext, case: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(study UID, French label) of the case patient's studies on the case site's PACS: the option source
    ``pacs_studies`` of the tele-expert's form."""
    return [(study.uid, study.label()) for study in pacs_studies(ctx, _site(None, case), case.get("patient"))]


@enforces("CH-4.2.2")
def check_original_study(ctx: EngineContext, site_id: str | None, data: Mapping[str, Any],
                         case: Mapping[str, Any]) -> dict[str, str]:
    """A TaskCheck (engine.services.task_checks) of the tele-expert's form: the original study chosen must be one
    of the studies found for the case's patient on the requesting site's PACS."""
    chosen = data.get(ORIGINAL_STUDY_FIELD)
    if chosen is None or chosen == "":
        return {}
    offered = {study.uid for study in pacs_studies(ctx, _site(site_id, case), case.get("patient"))}
    if chosen not in offered:
        return {ORIGINAL_STUDY_FIELD: "Cet examen ne fait pas partie des examens de ce patient trouvés dans le PACS "
                                      "de l'établissement demandeur : choisissez-en un dans la liste proposée."}
    return {}


def study_label(ctx: EngineContext, case: Mapping[str, Any], uid: str) -> str:
    """How a recorded original study reads on the case page: its label among the case's candidates, else said to be
    an examination of the PACS (with its UID, never the UID alone)."""
    found = next((s for s in pacs_studies(ctx, _site(None, case), case.get("patient")) if s.uid == uid), None)
    return found.label() if found is not None else f"examen du PACS de l'établissement demandeur (UID {uid})"
