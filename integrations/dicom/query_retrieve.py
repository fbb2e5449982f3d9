"""Query/Retrieve SCP (issue 18, CH-4.1.11): C-FIND, C-GET and C-MOVE for the radiologists' viewing stations.

- Study Root and Patient Root information models; levels PATIENT (Patient Root), STUDY, SERIES and IMAGE.
- The association's actor is the calling station's owner (integrations.dicom.workstations): only studies
  attached to a case (status 'attached') whose case he may see answer (engine.services.case_visibility, in SQL),
  and held instances never do (they are not in the index).
- C-GET sends the matching instances back on the association (the requestor proposes the SCP role for their
  storage classes); C-MOVE sends them to the destination AE title only when it is a registered station whose
  owner may see them too: an unknown destination, or one whose owner may see none of them, gets 0xA801.
- Audit: every retrieval (C-GET, C-MOVE) is one event per case on the case's chain before its sub-operations
  (dicom.qr_get / dicom.qr_move: calling AE, destination, studies, number of instances); a C-FIND is one
  dicom.qr_find event per case per association, the first time the case's studies answer a query.
- The files are sent as stored (no transcoding): an instance whose transfer syntax the peer did not accept counts
  as a failed sub-operation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import build_context
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)
from sqlalchemy import Select, and_, distinct, func, select

from engine.domain.actors import Actor
from engine.services.case_visibility import may_see_case_column
from engine.services.context import EngineContext
from engine.services.images import record_image_events
from integrations.dicom.models import INSTANCE, SERIES, STUDY
from integrations.dicom.storage import path_of
from integrations.dicom.workstations import owner_actor, workstation_by_title

log = logging.getLogger(__name__)

QR_SOP_CLASSES = (
    PatientRootQueryRetrieveInformationModelFind, PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove, StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet, StudyRootQueryRetrieveInformationModelMove,
)
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


def _matching(identifier: Dataset, level: str) -> list[Any]:
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


def _visible(actor: Actor) -> list[Any]:
    return [STUDY.c.status == "attached", may_see_case_column(actor, STUDY.c.case_id)]


def level_of(identifier: Dataset, model: str) -> str:
    level = str(identifier.get("QueryRetrieveLevel") or "").strip().upper()
    if level not in LEVELS[model]:
        raise QueryError(f"niveau de requête absent ou invalide pour ce modèle : {level[:10]!r}")
    return level


def model_of(sop_class: str) -> str:
    return "patient" if str(sop_class) in PATIENT_ROOT else "study"


# --- C-FIND ---------------------------------------------------------------------------------------------------

def _find_query(actor: Actor, identifier: Dataset, level: str) -> Select[Any]:
    conditions = [*_visible(actor), *_matching(identifier, level)]
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


def _modalities(ctx: EngineContext, study_uids: list[str]) -> dict[str, str]:
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


def _values(row: Any, level: str, modalities: dict[str, str]) -> dict[str, Any]:
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


def _response(identifier: Dataset, level: str, values: dict[str, Any], retrieve_ae: str) -> Dataset:
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


@dataclass(frozen=True)
class FindAnswer:
    responses: list[Dataset]
    case_studies: dict[int, list[str]]  # case id -> study UIDs answered (for the audit)


def find(ctx: EngineContext, actor: Actor, identifier: Dataset, model: str, retrieve_ae: str) -> FindAnswer:
    level = level_of(identifier, model)
    with ctx.read() as session:
        rows = session.execute(_find_query(actor, identifier, level)).all()
    uids = sorted({row._mapping["study_uid"] for row in rows}) if level != "PATIENT" else []
    modalities = _modalities(ctx, uids) if level == "STUDY" and "ModalitiesInStudy" in identifier else {}
    responses = [_response(identifier, level, _values(row, level, modalities), retrieve_ae) for row in rows]
    cases: dict[int, list[str]] = {}
    if level == "PATIENT":
        with ctx.read() as session:
            patient_rows = session.execute(select(STUDY.c.case_id, STUDY.c.uid).where(
                *_visible(actor), *_matching(identifier, level)).limit(MAX_MATCHES)).all()
        for case_id, study_uid in patient_rows:
            cases.setdefault(int(case_id), []).append(study_uid)
    else:
        for row in rows:
            study_uids = cases.setdefault(int(row._mapping["case_id"]), [])
            if row._mapping["study_uid"] not in study_uids:
                study_uids.append(row._mapping["study_uid"])
    return FindAnswer(responses, cases)


# --- C-GET / C-MOVE -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Match:
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax: str
    sha256: str
    study_uid: str
    case_id: int


UNIQUE_KEYS = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID",
               "IMAGE": "SOPInstanceUID"}


def matches(ctx: EngineContext, actor: Actor, identifier: Dataset, model: str, *,
            also_visible_to: Actor | None = None) -> list[Match]:
    """The instances a retrieval identifier names that the actor (and `also_visible_to`) may see."""
    level = level_of(identifier, model)
    if not str(identifier.get(UNIQUE_KEYS[level]) or "").strip():
        raise QueryError(f"clé unique {UNIQUE_KEYS[level]} absente pour le niveau {level}")
    conditions = [*_visible(actor), *_matching(identifier, level)]
    if also_visible_to is not None:
        conditions.append(may_see_case_column(also_visible_to, STUDY.c.case_id))
    query = select(INSTANCE.c.sop_instance_uid, INSTANCE.c.sop_class_uid, INSTANCE.c.transfer_syntax,
                   INSTANCE.c.sha256, STUDY.c.uid, STUDY.c.case_id) \
        .select_from(STUDY.join(SERIES, SERIES.c.study_uid == STUDY.c.uid)
                     .join(INSTANCE, INSTANCE.c.series_uid == SERIES.c.uid)) \
        .where(*conditions).order_by(STUDY.c.uid, SERIES.c.number, INSTANCE.c.instance_number) \
        .limit(MAX_SUBOPERATIONS + 1)
    with ctx.read() as session:
        rows = session.execute(query).all()
    if len(rows) > MAX_SUBOPERATIONS:
        raise QueryError("plus de 65535 instances demandées en une fois", OUT_OF_RESOURCES)
    return [Match(r[0], r[1], r[2], r[3], r[4], int(r[5])) for r in rows]


def record_access(ctx: EngineContext, actor: Actor, action: str, details: dict[int, dict[str, Any]]) -> None:
    """One event per case (case id -> its detail) on the case's chain, all in one transaction."""
    if not details:
        return
    now = ctx.clock.now()
    with ctx.write() as session:
        for case_id in sorted(details):
            record_image_events(session, case_id, [(action, details[case_id])], now, actor=actor.user_id)
        session.commit()


def _by_case(found: list[Match]) -> dict[int, list[str]]:
    cases: dict[int, list[str]] = {}
    for match in found:
        cases.setdefault(match.case_id, []).append(match.study_uid)
    return cases


def _count_by_case(found: list[Match]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for match in found:
        counts[match.case_id] = counts.get(match.case_id, 0) + 1
    return counts


def move_contexts(found: list[Match]) -> list[Any]:
    """The presentation contexts proposed to a C-MOVE destination: each SOP class with the stored transfer
    syntaxes, then the uncompressed ones (at most 128 contexts)."""
    syntaxes: dict[str, list[str]] = {}
    for match in found:
        listed = syntaxes.setdefault(match.sop_class_uid, [])
        if match.transfer_syntax not in listed:
            listed.append(match.transfer_syntax)
    contexts = []
    for sop_class, listed in list(syntaxes.items())[:128]:
        for fallback in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            if fallback not in listed:
                listed.append(fallback)
        contexts.append(build_context(sop_class, listed))
    return contexts


class QueryRetrieveHandlers:
    """The C-FIND, C-GET and C-MOVE event handlers of the SCP, for associations whose calling AE title is a
    registered station (event.assoc.telerad_actor, set by the SCP when it accepted the association)."""

    def __init__(self, ctx: EngineContext, ae_title: str, storage: Path):
        self.ctx = ctx
        self.ae_title = ae_title
        self.storage = storage

    @staticmethod
    def _actor(event: Any) -> Actor | None:
        return getattr(event.assoc, "telerad_actor", None)

    def on_find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        actor = self._actor(event)
        if actor is None:
            yield NOT_AUTHORISED, None
            return
        try:
            answer = find(self.ctx, actor, event.identifier, model_of(event.request.AffectedSOPClassUID),
                          self.ae_title)
        except QueryError as err:
            log.warning("C-FIND from %s refused: %s", event.assoc.telerad_calling_ae, err)
            yield err.status, None
            return
        seen: set[int] = event.assoc.__dict__.setdefault("telerad_found_cases", set())
        new_cases = {case_id: uids for case_id, uids in answer.case_studies.items() if case_id not in seen}
        calling = event.assoc.telerad_calling_ae
        record_access(self.ctx, actor, "dicom.qr_find", {
            case_id: {"calling_ae": calling, "study_uids": sorted(set(uids))} for case_id, uids in new_cases.items()})
        seen.update(new_cases)
        for response in answer.responses:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield PENDING, response

    def on_get(self, event: Any) -> Iterator[Any]:
        # pynetdicom takes the number of sub-operations first: a refusal is one sub-operation that fails with it.
        actor = self._actor(event)
        if actor is None:
            yield 1
            yield NOT_AUTHORISED, None
            return
        try:
            found = matches(self.ctx, actor, event.identifier, model_of(event.request.AffectedSOPClassUID))
        except QueryError as err:
            log.warning("C-GET from %s refused: %s", event.assoc.telerad_calling_ae, err)
            yield 1
            yield err.status, None
            return
        calling = event.assoc.telerad_calling_ae
        self._audit(actor, "dicom.qr_get", found, {"calling_ae": calling, "destination": calling})
        yield len(found)
        yield from self._suboperations(event, found)

    def on_move(self, event: Any) -> Iterator[Any]:
        actor = self._actor(event)
        if actor is None:  # a modality: pynetdicom takes the destination first, refused as unknown (0xA801)
            yield None, None
            return
        destination_title = str(event.move_destination or "").strip()
        station = workstation_by_title(self.ctx, destination_title)
        receiver = owner_actor(self.ctx, station) if station is not None else None
        calling = event.assoc.telerad_calling_ae
        try:
            model = model_of(event.request.AffectedSOPClassUID)
            wanted = matches(self.ctx, actor, event.identifier, model)
            found = matches(self.ctx, actor, event.identifier, model, also_visible_to=receiver) \
                if receiver is not None else []
        except QueryError as err:  # before the destination: pynetdicom answers 0xC514, unable to process
            log.warning("C-MOVE from %s refused: %s", calling, err)
            raise
        if station is None or receiver is None or (wanted and not found):
            log.warning("C-MOVE from %s to %r refused: %s", calling, destination_title,
                        "not a registered station" if station is None or receiver is None
                        else "its owner may not see these images")
            yield None, None  # 0xA801 move destination unknown
            return
        self._audit(actor, "dicom.qr_move", found, {"calling_ae": calling, "destination": station.ae_title,
                                                     "destination_owner": station.owner})
        yield station.host, station.port, {"contexts": move_contexts(found)} if found else {}
        yield len(found)
        yield from self._suboperations(event, found)

    def _audit(self, actor: Actor, action: str, found: list[Match], detail: dict[str, Any]) -> None:
        counts = _count_by_case(found)
        record_access(self.ctx, actor, action, {
            case_id: {**detail, "study_uids": sorted(set(study_uids)), "instances": counts[case_id]}
            for case_id, study_uids in _by_case(found).items()})

    def _suboperations(self, event: Any, found: list[Match]) -> Iterator[tuple[int, Dataset | None]]:
        for match in found:
            if event.is_cancelled:
                cancelled = Dataset()
                cancelled.FailedSOPInstanceUIDList = []
                yield 0xFE00, cancelled
                return
            try:
                dataset = dcmread(path_of(self.storage, match.sha256))
            except (OSError, ValueError) as err:
                log.error("instance %s could not be read for a retrieval: %s", match.sop_instance_uid, err)
                missing = Dataset()  # no SOP Class: the C-STORE cannot be sent, a failed sub-operation is counted
                missing.SOPInstanceUID = match.sop_instance_uid
                yield PENDING, missing
                continue
            yield PENDING, dataset
