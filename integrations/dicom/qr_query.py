"""The query side of the Query/Retrieve SCP (integrations.dicom.query_retrieve): the levels and keys of C-FIND,
C-GET and C-MOVE identifiers turned into SQL over the DICOM index, restricted to what the actor may see, and the
C-FIND responses built from the rows."""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
)
from sqlalchemy import Select, and_, distinct, func, select

from engine.domain.actors import Actor
from engine.services.case_visibility import may_see_case_column
from engine.services.context import EngineContext
from integrations.dicom.models import INSTANCE, SERIES, STUDY

PATIENT_ROOT = {str(PatientRootQueryRetrieveInformationModelFind), str(PatientRootQueryRetrieveInformationModelGet),
                str(PatientRootQueryRetrieveInformationModelMove)}
LEVELS = {"patient": ("PATIENT", "STUDY", "SERIES", "IMAGE"), "study": ("STUDY", "SERIES", "IMAGE")}

PENDING = 0xFF00
SUCCESS = 0x0000
NOT_AUTHORISED = 0x0124
OUT_OF_RESOURCES = 0xA700
IDENTIFIER_MISMATCH = 0xA900  # no or wrong Query/Retrieve Level, or a missing unique key for a retrieval
UNABLE_TO_PROCESS = 0xC000
MAX_MATCHES = 10_000
MAX_SUBOPERATIONS = 65_535  # the counts are US in the responses


class QueryError(ValueError):
    """The identifier cannot be answered: `status` says which failure status to send."""

    def __init__(self, message: str, status: int = IDENTIFIER_MISMATCH):
        super().__init__(message)
        self.status = status


# --- matching (PS3.4 C.2.2.2): single value, universal (empty), wildcard (* ?), UID list, date range ----------

def _like(value: str) -> str:
    escaped = value.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return escaped.replace("*", "%").replace("?", "_")


def _text(column: Any, value: str, *, folded: bool = False) -> Any:
    if "*" in value or "?" in value:
        if folded:
            return func.lower(column).like(_like(value.lower()), escape="!")
        return column.like(_like(value), escape="!")
    return func.lower(column) == value.lower() if folded else column == value


def _uids(column: Any, value: str) -> Any:
    return column.in_([uid.strip() for uid in value.split("\\") if uid.strip()])


def _iso(date: str) -> str:
    digits = date.strip()
    if len(digits) != 8 or not digits.isdigit():
        raise QueryError(f"date mal formée : {date[:20]!r}", UNABLE_TO_PROCESS)
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"


def _date(column: Any, value: str) -> Any:
    if "-" not in value:
        return column == _iso(value)
    low, high = value.split("-", 1)
    conditions = [column.is_not(None)]
    if low.strip():
        conditions.append(column >= _iso(low))
    if high.strip():
        conditions.append(column <= _iso(high))
    return and_(*conditions)


def _integer(column: Any, value: str) -> Any:
    try:
        return column == int(value.strip())
    except ValueError:
        raise QueryError(f"nombre mal formé : {value[:20]!r}", UNABLE_TO_PROCESS) from None


# keyword -> (column, kind); kinds: uid, text, name (case-insensitive), date, int
STUDY_KEYS = {"StudyInstanceUID": (STUDY.c.uid, "uid"), "AccessionNumber": (STUDY.c.accession_number, "text"),
              "StudyDescription": (STUDY.c.description, "text")}
PATIENT_KEYS = {"PatientID": (STUDY.c.patient_id, "text"), "PatientName": (STUDY.c.patient_name, "name"),
                "PatientBirthDate": (STUDY.c.patient_birth_date, "date"), "PatientSex": (STUDY.c.patient_sex, "text")}
SERIES_KEYS = {"SeriesInstanceUID": (SERIES.c.uid, "uid"), "Modality": (SERIES.c.modality, "text"),
               "SeriesDescription": (SERIES.c.description, "text"), "SeriesNumber": (SERIES.c.number, "int")}
IMAGE_KEYS = {"SOPInstanceUID": (INSTANCE.c.sop_instance_uid, "uid"), "SOPClassUID": (INSTANCE.c.sop_class_uid, "uid"),
              "InstanceNumber": (INSTANCE.c.instance_number, "int")}
KEYS_BY_LEVEL = {"PATIENT": PATIENT_KEYS, "STUDY": {**PATIENT_KEYS, **STUDY_KEYS},
                 "SERIES": {**PATIENT_KEYS, **STUDY_KEYS, **SERIES_KEYS},
                 "IMAGE": {**PATIENT_KEYS, **STUDY_KEYS, **SERIES_KEYS, **IMAGE_KEYS}}


def matching_conditions(identifier: Dataset, level: str) -> list[Any]:
    conditions = []
    for keyword, (column, kind) in KEYS_BY_LEVEL[level].items():
        raw = identifier.get(keyword)
        value = "" if raw is None else str(raw).strip()
        if not value or value == "*":
            continue  # universal matching
        if not value.isprintable() or len(value) > 324:
            raise QueryError(f"valeur de {keyword} invalide", UNABLE_TO_PROCESS)
        if kind == "uid":
            conditions.append(_uids(column, value))
        elif kind == "date":
            conditions.append(_date(column, value))
        elif kind == "int":
            conditions.append(_integer(column, value))
        else:
            conditions.append(_text(column, value, folded=kind == "name"))
    modalities = str(identifier.get("ModalitiesInStudy") or "").strip()
    if modalities and level != "PATIENT":
        wanted = [m.strip() for m in modalities.split("\\") if m.strip() and m.strip() != "*"]
        if wanted:
            conditions.append(STUDY.c.uid.in_(select(SERIES.c.study_uid).where(SERIES.c.modality.in_(wanted))))
    return conditions


def visible_conditions(actor: Actor) -> list[Any]:
    return [STUDY.c.status == "attached", may_see_case_column(actor, STUDY.c.case_id)]


def level_of(identifier: Dataset, model: str) -> str:
    level = str(identifier.get("QueryRetrieveLevel") or "").strip().upper()
    if level not in LEVELS[model]:
        raise QueryError(f"niveau de requête absent ou invalide pour ce modèle : {level[:10]!r}")
    return level


def model_of(sop_class: str) -> str:
    return "patient" if str(sop_class) in PATIENT_ROOT else "study"


# --- C-FIND ---------------------------------------------------------------------------------------------------

def find_query(actor: Actor, identifier: Dataset, level: str) -> Select[Any]:
    conditions = [*visible_conditions(actor), *matching_conditions(identifier, level)]
    series_count = select(func.count()).where(SERIES.c.study_uid == STUDY.c.uid).scalar_subquery()
    study_instances = select(func.count()).select_from(INSTANCE.join(SERIES, INSTANCE.c.series_uid == SERIES.c.uid)) \
        .where(SERIES.c.study_uid == STUDY.c.uid).scalar_subquery()
    if level == "PATIENT":
        return select(STUDY.c.patient_id, STUDY.c.patient_name, STUDY.c.patient_birth_date, STUDY.c.patient_sex,
                      func.count(distinct(STUDY.c.uid)).label("studies")) \
            .where(*conditions).group_by(STUDY.c.patient_id, STUDY.c.patient_name, STUDY.c.patient_birth_date,
                                         STUDY.c.patient_sex).limit(MAX_MATCHES)
    study_columns = (STUDY.c.uid.label("study_uid"), STUDY.c.case_id, STUDY.c.accession_number, STUDY.c.patient_id,
                     STUDY.c.patient_name, STUDY.c.patient_birth_date, STUDY.c.patient_sex,
                     STUDY.c.description.label("study_description"))
    if level == "STUDY":
        return select(*study_columns, series_count.label("series_count"), study_instances.label("instance_count")) \
            .where(*conditions).order_by(STUDY.c.first_received_at).limit(MAX_MATCHES)
    series_instances = select(func.count()).where(INSTANCE.c.series_uid == SERIES.c.uid).scalar_subquery()
    series_columns = (SERIES.c.uid.label("series_uid"), SERIES.c.modality, SERIES.c.description.label(
        "series_description"), SERIES.c.number.label("series_number"))
    joined = STUDY.join(SERIES, SERIES.c.study_uid == STUDY.c.uid)
    if level == "SERIES":
        return select(*study_columns, *series_columns, series_instances.label("instance_count")).select_from(joined) \
            .where(*conditions).order_by(SERIES.c.number, SERIES.c.uid).limit(MAX_MATCHES)
    return select(*study_columns, *series_columns, INSTANCE.c.sop_instance_uid, INSTANCE.c.sop_class_uid,
                  INSTANCE.c.instance_number, INSTANCE.c.rows, INSTANCE.c.columns, INSTANCE.c.frames) \
        .select_from(joined.join(INSTANCE, INSTANCE.c.series_uid == SERIES.c.uid)).where(*conditions) \
        .order_by(INSTANCE.c.instance_number, INSTANCE.c.sop_instance_uid).limit(MAX_MATCHES)


def modalities_of(ctx: EngineContext, study_uids: list[str]) -> dict[str, str]:
    if not study_uids:
        return {}
    found: dict[str, list[str]] = {}
    with ctx.read() as session:
        for study_uid, modality in session.execute(select(SERIES.c.study_uid, SERIES.c.modality).distinct().where(
                SERIES.c.study_uid.in_(study_uids), SERIES.c.modality.is_not(None))):
            found.setdefault(study_uid, []).append(modality)
    return {uid: "\\".join(sorted(values)) for uid, values in found.items()}


def _dicom_date(iso: str | None) -> str:
    return iso.replace("-", "") if iso else ""


def row_values(row: Any, level: str, modalities: dict[str, str]) -> dict[str, Any]:
    data = row._mapping
    values: dict[str, Any] = {
        "PatientID": data["patient_id"] or "", "PatientName": data["patient_name"] or "",
        "PatientBirthDate": _dicom_date(data["patient_birth_date"]), "PatientSex": data["patient_sex"] or ""}
    if level == "PATIENT":
        values["NumberOfPatientRelatedStudies"] = int(data["studies"])
        return values
    values.update({"StudyInstanceUID": data["study_uid"], "AccessionNumber": data["accession_number"] or "",
                   "StudyDescription": data["study_description"] or "",
                   "ModalitiesInStudy": modalities.get(data["study_uid"], "")})
    if level == "STUDY":
        values.update({"NumberOfStudyRelatedSeries": int(data["series_count"]),
                       "NumberOfStudyRelatedInstances": int(data["instance_count"])})
        return values
    values.update({"SeriesInstanceUID": data["series_uid"], "Modality": data["modality"] or "",
                   "SeriesDescription": data["series_description"] or "", "SeriesNumber": data["series_number"]})
    if level == "SERIES":
        values["NumberOfSeriesRelatedInstances"] = int(data["instance_count"])
        return values
    values.update({"SOPInstanceUID": data["sop_instance_uid"], "SOPClassUID": data["sop_class_uid"],
                   "InstanceNumber": data["instance_number"], "Rows": data["rows"], "Columns": data["columns"],
                   "NumberOfFrames": data["frames"]})
    return values


def find_response(identifier: Dataset, level: str, values: dict[str, Any], retrieve_ae: str) -> Dataset:
    """The requested keys with their values (empty when unknown: StudyDate, StudyTime... are not indexed)."""
    response = Dataset()
    for element in identifier:
        keyword = element.keyword
        if not keyword or keyword in ("SpecificCharacterSet", "QueryRetrieveLevel", "RetrieveAETitle"):
            continue
        value = values.get(keyword)
        if element.VR == "SQ":
            response.add_new(element.tag, "SQ", [])
        elif value is None or value == "":
            response.add_new(element.tag, element.VR, None)
        else:
            response.add_new(element.tag, element.VR, value)
    response.QueryRetrieveLevel = level
    response.RetrieveAETitle = retrieve_ae
    if any(isinstance(v, str) and not v.isascii() for v in values.values()):
        response.SpecificCharacterSet = "ISO_IR 192"
    return response
