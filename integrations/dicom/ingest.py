"""Receive one DICOM instance: check it, store the file, index it, and attach or hold its study (CH-5.1).

The same path serves the C-STORE SCP and the web upload. The file is written first (content-addressed,
atomically); the instance row and the series and study upserts follow in ONE transaction, so a refused or
failed instance leaves nothing half-indexed, and a resent instance is recognised by its SOP Instance UID.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.services.context import EngineContext
from engine.services.instances import cancel_instance, case_data, start_instance
from engine.services.persistence import append_case_events, lock_instance
from engine.store import audit
from engine.store.db import is_postgres
from engine.store.models import ProcessInstance, table_of
from integrations.dicom.matching import Decision, DicomPatient, decide
from integrations.dicom.models import DicomInstance, DicomSeries, DicomStudy
from integrations.dicom.storage import InvalidDicom, ParsedInstance, StoredFile, parse_instance, store_bytes

log = logging.getLogger(__name__)

STUDY = table_of(DicomStudy)
SERIES = table_of(DicomSeries)
INSTANCE = table_of(DicomInstance)
IDENTITY_PROCESS = "image_identity_check"


@dataclass(frozen=True)
class IngestResult:
    status: str  # stored, duplicate, refused
    reason: str | None = None
    study_uid: str | None = None
    sop_instance_uid: str | None = None


class StorageFailure(OSError):
    """The file could not be written (disk full, permissions): the sender should retry later."""


def ingest_file(ctx: EngineContext, path_or_bytes: Path | bytes, site_id: str | None, source: str, *,
                storage: Path, calling_ae: str | None = None, case_id: int | None = None,
                fsync: bool = True) -> IngestResult:
    """Check, store and index one Part-10 file. Refusals are logged and returned, never raised; a storage
    failure raises StorageFailure. `case_id` is the case chosen by the person uploading (web)."""
    try:
        data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
        parsed = parse_instance(data)
    except (InvalidDicom, OSError) as err:
        reason = str(err) if isinstance(err, InvalidDicom) else "fichier illisible"
        log.warning("DICOM instance refused (source %s, AE %s, site %s): %s", source, calling_ae, site_id, reason)
        return IngestResult("refused", reason)
    try:
        stored = store_bytes(storage, data, fsync=fsync)
    except OSError as err:
        log.error("DICOM instance %s could not be stored: %s", parsed.sop_instance_uid, err)
        raise StorageFailure(str(err)) from err
    decision = None
    for _attempt in range(4):
        try:
            outcome = _index(ctx, parsed, stored, site_id, source, calling_ae, decision, case_id)
        except IntegrityError:  # another association indexed the same study, series or instance first
            continue
        if outcome is not None:
            break
        # A study seen for the first time (or given a case by the person uploading): find its case, then index.
        decision = decide(ctx, site_id, parsed.accession_number, parsed.study_uid, _patient(parsed), case_id)
    else:
        raise RuntimeError(f"DICOM instance {parsed.sop_instance_uid} could not be indexed")
    status, transition = outcome
    if transition == "held":
        open_identity_check(ctx, parsed.study_uid)
    return IngestResult(status, None, parsed.study_uid, parsed.sop_instance_uid)


def _patient(parsed: ParsedInstance) -> DicomPatient:
    return DicomPatient(parsed.patient_id, parsed.patient_name, parsed.patient_birth_date)


# Prebuilt statements (the per-instance hot path). SQLite: INSERT OR IGNORE, which SQLAlchemy caches compiled
# (its ON CONFLICT constructs are recompiled at every call); PostgreSQL: ON CONFLICT DO NOTHING.
_TOUCH_STUDY = (update(STUDY).where(STUDY.c.uid == bindparam("b_uid"))
                .values(last_received_at=bindparam("b_now")).returning(STUDY.c.status))
_INSERT_IGNORE = {
    # RETURNING tells whether the instance row was new: rowcount is not reliable for ON CONFLICT on every driver
    "sqlite": (insert(SERIES).prefix_with("OR IGNORE", dialect="sqlite"),
               insert(INSTANCE).prefix_with("OR IGNORE", dialect="sqlite").returning(INSTANCE.c.sop_instance_uid)),
    "postgresql": (postgresql_insert(SERIES).on_conflict_do_nothing(index_elements=["uid"]),
                   postgresql_insert(INSTANCE).on_conflict_do_nothing(index_elements=["sop_instance_uid"])
                   .returning(INSTANCE.c.sop_instance_uid)),
}


def _index(ctx: EngineContext, parsed: ParsedInstance, stored: StoredFile, site_id: str | None, source: str,
           calling_ae: str | None, decision: Decision | None,
           chosen_case: int | None) -> tuple[str, str | None] | None:
    """Index the instance with its series and study in one transaction: (stored or duplicate, the study's
    new status when this instance attached or held it), or None when the study first needs a decision."""
    now = ctx.clock.now()
    with ctx.write() as session:
        connection = session.connection()
        known = connection.execute(_TOUCH_STUDY, {"b_uid": parsed.study_uid, "b_now": now}).scalar_one_or_none()
        transition = None
        if known is None or (known == "receiving" and chosen_case is not None):
            if decision is None:
                return None  # rolled back by the session's close
            if known is None:
                connection.execute(insert(STUDY).values(
                    uid=parsed.study_uid, case_id=decision.case_id, site_id=site_id,
                    accession_number=parsed.accession_number, patient_id=parsed.patient_id,
                    patient_name=parsed.patient_name, patient_birth_date=parsed.patient_birth_date,
                    description=parsed.study_description, status=decision.status, hold_reason=decision.reason,
                    first_received_at=now, last_received_at=now))
                transition = decision.status if decision.status != "receiving" else None
            elif decision.status != "receiving":
                transition = apply_decision(session, parsed.study_uid, decision, now)
        insert_series, insert_instance = _INSERT_IGNORE["postgresql" if is_postgres(ctx.engine) else "sqlite"]
        connection.execute(insert_series, {
            "uid": parsed.series_uid, "study_uid": parsed.study_uid, "modality": parsed.modality,
            "description": parsed.series_description, "number": parsed.series_number})
        inserted = connection.execute(insert_instance, {
            "sop_instance_uid": parsed.sop_instance_uid, "series_uid": parsed.series_uid,
            "sop_class_uid": parsed.sop_class_uid, "instance_number": parsed.instance_number,
            "sha256": stored.sha256, "size": stored.size, "transfer_syntax": parsed.transfer_syntax,
            "rows": parsed.rows, "columns": parsed.columns, "frames": parsed.frames, "source": source,
            "calling_ae": calling_ae, "received_at": now}).first() is not None
        if not inserted:  # a resend changes nothing (the study's last reception time is rolled back too)...
            existing = connection.execute(select(INSTANCE.c.sha256).where(
                INSTANCE.c.sop_instance_uid == parsed.sop_instance_uid)).scalar_one_or_none()
            if existing != stored.sha256:
                log.warning("DICOM instance %s resent with different content: the first one is kept",
                            parsed.sop_instance_uid)
            if transition is None:
                return "duplicate", None
        if transition is not None and decision is not None and decision.case_id is not None:
            record_on_case(session, decision.case_id, f"dicom.study_{transition}", now, {
                "study_uid": parsed.study_uid, "accession_number": parsed.accession_number,
                "source": source, "reason": decision.reason})
        session.commit()  # ...unless it is the upload that gives a study still without a case its case
    return ("stored" if inserted else "duplicate"), transition


def apply_decision(session: Session, study_uid: str, decision: Decision, now: datetime) -> str | None:
    """Move a study still without a case to its decision; None when someone else decided first."""
    result = session.connection().execute(update(STUDY).where(
        STUDY.c.uid == study_uid, STUDY.c.status == "receiving").values(
        status=decision.status, case_id=decision.case_id, hold_reason=decision.reason))
    return decision.status if result.rowcount == 1 else None  # type: ignore[attr-defined]


def record_on_case(session: Session, case_id: int, action: str, now: datetime, detail: dict[str, object]) -> None:
    """An event in the case's own audit chain (CH-5.3), in the caller's transaction."""
    instance = lock_instance(session, case_id)
    append_case_events(session, instance, [audit.AuditEntry("dicom", action, case_id, detail)], now)


def open_identity_check(ctx: EngineContext, study_uid: str) -> int | None:
    """Give a held study to the technologists of the case's site (CH-4.1.6); idempotent."""
    with ctx.read() as session:
        study = session.execute(select(STUDY).where(STUDY.c.uid == study_uid)).first()
    if study is None or study.status != "held" or study.identity_case_id is not None or study.case_id is None:
        return None
    try:
        patient = case_data(ctx, study.case_id).get("patient")
        case_patient = {k: v for k, v in (patient if isinstance(patient, dict) else {}).items()
                        if k in ("birth_name", "used_name", "first_names", "birth_date", "site_patient_id")}
        with ctx.read() as session:
            site_id = session.execute(select(ProcessInstance.site_id).where(
                ProcessInstance.id == study.case_id)).scalar_one()
        actor = Actor("dicom", frozenset({"technologist"}), frozenset({site_id} if site_id else set()))
        identity_case = start_instance(ctx, actor, IDENTITY_PROCESS, {
            "case_id": study.case_id, "study_uid": study_uid, "hold_reason": study.hold_reason,
            "dicom_patient": {"patient_id": study.patient_id, "patient_name": study.patient_name,
                              "birth_date": study.patient_birth_date},
            "case_patient": case_patient}, site_id=site_id)
    except Exception:
        log.exception("identity check for held study %s could not be opened; retried by the next tick", study_uid)
        return None
    with ctx.write() as session:
        result = session.execute(update(STUDY).where(STUDY.c.uid == study_uid, STUDY.c.identity_case_id.is_(None))
                                 .values(identity_case_id=identity_case))
        session.commit()
    if result.rowcount != 1:  # type: ignore[attr-defined]  # opened twice at the same moment: keep one
        cancel_instance(ctx, Actor("dicom"), identity_case, "doublon de vérification d'identité")
        return None
    log.info("study %s held (%s): identity check case %s", study_uid, study.hold_reason, identity_case)
    return identity_case
