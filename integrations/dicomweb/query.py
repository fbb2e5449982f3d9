"""The studies, series and instances an actor may see, as SQL over the DICOM index (integrations.dicom.models).

One rule for every DICOMweb resource: a study is served only when it is attached to its case and that case is
one the actor may see (engine.services.case_visibility.visible_case_ids, in the same statement: no per-row
check); held, receiving and rejected studies are never served, and a UID the actor may not see is answered
exactly as an unknown one.

Matching on StudyDate needs the files' headers (the index has no study date): the candidates the SQL keys leave
are read (headers cached by content hash) and filtered, at most MAX_DATE_SCAN of them per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, distinct, func, select

from engine.domain.actors import Actor
from engine.services.case_visibility import visible_case_ids
from engine.services.context import EngineContext
from integrations.dicom.models import INSTANCE, SERIES, STUDY
from integrations.dicomweb.headers import header
from integrations.dicomweb.keys import INSTANCE as INSTANCE_LEVEL
from integrations.dicomweb.keys import SERIES as SERIES_LEVEL
from integrations.dicomweb.keys import STUDY as STUDY_LEVEL
from integrations.dicomweb.keys import Query

MAX_DATE_SCAN = 5000  # candidate studies whose date is read from their files, per request


@dataclass(frozen=True)
class Scope:
    """The resource a query or retrieval is under: /studies/{study}/series/{series}/..."""

    study_uid: str | None = None
    series_uid: str | None = None
    sop_instance_uid: str | None = None


@dataclass(frozen=True)
class Found:
    """One answer of a query: its UIDs, its case, what the index knows of it, and a file to read its header from."""

    level: str
    study_uid: str
    series_uid: str | None
    sop_instance_uid: str | None
    case_id: int
    values: dict[str, Any]  # keyword -> value from the index (counts included)
    sha256: str | None  # a file of it: the instance itself, or one instance of the series or study


@dataclass(frozen=True)
class InstanceFile:
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    case_id: int
    sha256: str
    size: int
    transfer_syntax: str
    frames: int | None
    rows: int | None
    columns: int | None


def served(actor: Actor) -> ColumnElement[bool]:
    """The studies DICOMweb serves to this actor: attached to a case he may see."""
    return and_(STUDY.c.status == "attached", STUDY.c.case_id.in_(visible_case_ids(actor)))


def _like(column: Any, pattern: str, *, fold: bool = False) -> ColumnElement[bool]:
    """DICOM wildcard matching (* any run, ? one character) as LIKE, the other characters literal."""
    if "*" not in pattern and "?" not in pattern:
        return func.upper(column) == pattern.upper() if fold else column == pattern
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like = escaped.replace("*", "%").replace("?", "_")
    if fold:
        return func.upper(column).like(like.upper(), escape="\\")
    return column.like(like, escape="\\")


def _conditions(query: Query, scope: Scope) -> list[ColumnElement[bool]]:
    m = query.matches
    where: list[ColumnElement[bool]] = []
    if scope.study_uid:
        where.append(STUDY.c.uid == scope.study_uid)
    if scope.series_uid:
        where.append(SERIES.c.uid == scope.series_uid)
    if scope.sop_instance_uid:
        where.append(INSTANCE.c.sop_instance_uid == scope.sop_instance_uid)
    if "StudyInstanceUID" in m:
        where.append(STUDY.c.uid.in_(m["StudyInstanceUID"]))  # type: ignore[arg-type]
    for keyword, column, fold in (("AccessionNumber", STUDY.c.accession_number, False),
                                  ("PatientID", STUDY.c.patient_id, False),
                                  ("PatientName", STUDY.c.patient_name, True),
                                  ("StudyDescription", STUDY.c.description, True),
                                  ("SeriesDescription", SERIES.c.description, True)):
        if keyword in m:
            where.append(_like(column, str(m[keyword]), fold=fold))
    if "ModalitiesInStudy" in m:
        where.append(STUDY.c.uid.in_(select(SERIES.c.study_uid).where(
            SERIES.c.modality.in_(m["ModalitiesInStudy"]))))  # type: ignore[arg-type]
    if "Modality" in m:
        where.append(SERIES.c.modality.in_(m["Modality"]))  # type: ignore[arg-type]
    if "SeriesInstanceUID" in m:
        where.append(SERIES.c.uid.in_(m["SeriesInstanceUID"]))  # type: ignore[arg-type]
    if "SeriesNumber" in m:
        where.append(SERIES.c.number == m["SeriesNumber"])
    if "SOPInstanceUID" in m:
        where.append(INSTANCE.c.sop_instance_uid.in_(m["SOPInstanceUID"]))  # type: ignore[arg-type]
    if "SOPClassUID" in m:
        where.append(INSTANCE.c.sop_class_uid.in_(m["SOPClassUID"]))  # type: ignore[arg-type]
    if "InstanceNumber" in m:
        where.append(INSTANCE.c.instance_number == m["InstanceNumber"])
    return where


def _study_select(actor: Actor, query: Query, scope: Scope) -> Select[Any]:
    return (select(STUDY).where(served(actor), *_conditions(query, scope))
            .order_by(STUDY.c.first_received_at, STUDY.c.uid))


def search(ctx: EngineContext, actor: Actor, query: Query, scope: Scope, storage: Path) -> list[Found]:
    """The answers of a QIDO-RS query at its level, paged by its limit and offset, in a stable order. A query
    at a level matches only on the keys of that level and the levels above (integrations.dicomweb.keys). The
    counts are computed for the answers only (indexed look-ups by study or series UID), never for the whole
    index."""
    if query.level == STUDY_LEVEL:
        statement = _study_select(actor, query, scope)
    elif query.level == SERIES_LEVEL:
        statement = _series_select(actor, query, scope)
    else:
        statement = _instance_select(actor, query, scope)
    dated = "StudyDate" in query.matches
    statement = statement.limit(MAX_DATE_SCAN) if dated else statement.offset(query.offset).limit(query.limit)
    with ctx.read() as session:
        rows = session.execute(statement).mappings().all()
        if query.level == STUDY_LEVEL:
            counts = _study_counts(session, [row["uid"] for row in rows])
        elif query.level == SERIES_LEVEL:
            counts = _series_counts(session, [row["series_uid"] for row in rows])
        else:
            counts = {}
    found = [_found(query.level, row, counts) for row in rows]
    if dated:
        dates: tuple[str | None, str | None] = query.matches["StudyDate"]  # type: ignore[assignment]
        low, high = dates
        found = [f for f in found if _date_matches(storage, f, low, high)][query.offset:query.offset + query.limit]
    return found


def _series_select(actor: Actor, query: Query, scope: Scope) -> Select[Any]:
    return (select(SERIES.c.uid.label("series_uid"), SERIES.c.modality,
                   SERIES.c.description.label("series_description"), SERIES.c.number.label("series_number"), STUDY)
            .join(STUDY, STUDY.c.uid == SERIES.c.study_uid)
            .where(served(actor), *_conditions(query, scope))
            .order_by(STUDY.c.first_received_at, STUDY.c.uid, SERIES.c.number, SERIES.c.uid))


def _chunks(values: list[str], size: int = 500) -> list[list[str]]:
    return [values[i:i + size] for i in range(0, len(values), size)]


def _study_counts(session: Any, study_uids: list[str]) -> dict[str, dict[str, Any]]:
    """Per study: its modalities, series and instances counted, and one of its files (for its header)."""
    counts: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(study_uids):
        for uid, series, instances, sha256 in session.execute(
                select(SERIES.c.study_uid, func.count(distinct(SERIES.c.uid)), func.count(INSTANCE.c.sop_instance_uid),
                       func.min(INSTANCE.c.sha256))
                .join(INSTANCE, INSTANCE.c.series_uid == SERIES.c.uid)
                .where(SERIES.c.study_uid.in_(chunk)).group_by(SERIES.c.study_uid)).all():
            counts[uid] = {"series": int(series), "instances": int(instances), "sha256": sha256, "modalities": []}
        for uid, modality in session.execute(
                select(SERIES.c.study_uid, SERIES.c.modality).distinct()
                .where(SERIES.c.study_uid.in_(chunk), SERIES.c.modality.is_not(None))
                .order_by(SERIES.c.study_uid, SERIES.c.modality)).all():
            if uid in counts:
                counts[uid]["modalities"].append(modality)
    return counts


def _series_counts(session: Any, series_uids: list[str]) -> dict[str, dict[str, Any]]:
    counts: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(series_uids):
        for uid, instances, sha256 in session.execute(
                select(INSTANCE.c.series_uid, func.count(), func.min(INSTANCE.c.sha256))
                .where(INSTANCE.c.series_uid.in_(chunk)).group_by(INSTANCE.c.series_uid)).all():
            counts[uid] = {"instances": int(instances), "sha256": sha256}
    return counts


def _instance_select(actor: Actor, query: Query, scope: Scope) -> Select[Any]:
    return (select(INSTANCE.c.sop_instance_uid, INSTANCE.c.sop_class_uid, INSTANCE.c.instance_number,
                   INSTANCE.c.rows, INSTANCE.c.columns, INSTANCE.c.frames, INSTANCE.c.sha256,
                   INSTANCE.c.transfer_syntax, INSTANCE.c.size,
                   SERIES.c.uid.label("series_uid"), SERIES.c.modality,
                   SERIES.c.number.label("series_number"), STUDY)
            .join(SERIES, SERIES.c.uid == INSTANCE.c.series_uid)
            .join(STUDY, STUDY.c.uid == SERIES.c.study_uid)
            .where(served(actor), *_conditions(query, scope))
            .order_by(STUDY.c.first_received_at, STUDY.c.uid, SERIES.c.number, SERIES.c.uid,
                      INSTANCE.c.instance_number, INSTANCE.c.sop_instance_uid))


def _study_values(row: Any) -> dict[str, Any]:
    birth = row["patient_birth_date"]
    return {"StudyInstanceUID": row["uid"], "AccessionNumber": row["accession_number"],
            "PatientID": row["patient_id"], "PatientName": row["patient_name"],
            "PatientBirthDate": birth.replace("-", "") if birth else None, "PatientSex": row["patient_sex"],
            "StudyDescription": row["description"]}


def _found(level: str, row: Any, counts: dict[str, dict[str, Any]]) -> Found:
    values = _study_values(row)
    if level == STUDY_LEVEL:
        counted = counts.get(row["uid"], {})
        values.update(ModalitiesInStudy=counted.get("modalities") or None,
                      NumberOfStudyRelatedSeries=counted.get("series", 0),
                      NumberOfStudyRelatedInstances=counted.get("instances", 0))
        return Found(level, row["uid"], None, None, int(row["case_id"]), values, counted.get("sha256"))
    values.update(SeriesInstanceUID=row["series_uid"], Modality=row["modality"], SeriesNumber=row["series_number"])
    if level == SERIES_LEVEL:
        counted = counts.get(row["series_uid"], {})
        values.update(SeriesDescription=row["series_description"],
                      NumberOfSeriesRelatedInstances=counted.get("instances", 0))
        return Found(level, row["uid"], row["series_uid"], None, int(row["case_id"]), values, counted.get("sha256"))
    values.update(SOPInstanceUID=row["sop_instance_uid"], SOPClassUID=row["sop_class_uid"],
                  InstanceNumber=row["instance_number"], Rows=row["rows"], Columns=row["columns"],
                  NumberOfFrames=row["frames"] if (row["frames"] or 0) > 1 else None)
    return Found(INSTANCE_LEVEL, row["uid"], row["series_uid"], row["sop_instance_uid"], int(row["case_id"]),
                 values, row["sha256"])


def _date_matches(storage: Path, found: Found, low: str | None, high: str | None) -> bool:
    dataset = header(storage, found.sha256) if found.sha256 else None
    date = str(dataset.get("StudyDate") or "") if dataset is not None else ""
    if not date:
        return False
    return (low is None or date >= low) and (high is None or date <= high)


def instance_files(ctx: EngineContext, actor: Actor, scope: Scope) -> list[InstanceFile]:
    """The files of a study, series or instance the actor may retrieve, in order (series, instance number);
    empty when there is none or he may not see it (the caller answers 404 either way)."""
    where = [served(actor), STUDY.c.uid == scope.study_uid]
    if scope.series_uid:
        where.append(SERIES.c.uid == scope.series_uid)
    if scope.sop_instance_uid:
        where.append(INSTANCE.c.sop_instance_uid == scope.sop_instance_uid)
    statement = (select(STUDY.c.uid, SERIES.c.uid, INSTANCE.c.sop_instance_uid, INSTANCE.c.sop_class_uid,
                        STUDY.c.case_id, INSTANCE.c.sha256, INSTANCE.c.size, INSTANCE.c.transfer_syntax,
                        INSTANCE.c.frames, INSTANCE.c.rows, INSTANCE.c.columns)
                 .join(SERIES, SERIES.c.uid == INSTANCE.c.series_uid)
                 .join(STUDY, STUDY.c.uid == SERIES.c.study_uid)
                 .where(*where)
                 .order_by(SERIES.c.number, SERIES.c.uid, INSTANCE.c.instance_number, INSTANCE.c.sop_instance_uid))
    with ctx.read() as session:
        return [InstanceFile(*row) for row in session.execute(statement).all()]


def scope_visible(ctx: EngineContext, actor: Actor, scope: Scope) -> bool:
    """Whether the study (and series) a query is under is one the actor may see (one indexed look-up)."""
    statement = select(STUDY.c.uid).where(served(actor), STUDY.c.uid == scope.study_uid)
    if scope.series_uid:
        statement = statement.join(SERIES, SERIES.c.study_uid == STUDY.c.uid).where(SERIES.c.uid == scope.series_uid)
    with ctx.read() as session:
        return session.execute(statement.limit(1)).first() is not None


def study_case(ctx: EngineContext, actor: Actor, study_uid: str) -> int | None:
    """The case of a study the actor may see (attached), None otherwise."""
    with ctx.read() as session:
        return session.execute(select(STUDY.c.case_id).where(STUDY.c.uid == study_uid, served(actor))
                               ).scalar_one_or_none()

