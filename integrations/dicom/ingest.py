"""Receive one DICOM instance: check it, store the file, index it, and attach or hold its study (CH-5.1).

The same path serves the C-STORE SCP and the web upload. The file is written first (content-addressed,
atomically); the instance row and the series and study upserts follow in ONE transaction, so a refused or
failed instance leaves nothing half-indexed, and a resent instance is recognised by its SOP Instance UID.

Identity vigilance (CH-4.1.6, CH-8.1), for EVERY instance: one naming a known study must come from the study's
site, carry the study's patient and (web upload) be sent to the study's case; otherwise it is held out of the
study (integrations.dicom.holds). A study is attached to its case only after the case's identity check and when
its traits match the case's (integrations.dicom.matching); each attach and hold is on the case's audit chain.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.services.context import EngineContext
from engine.services.images import case_identity, record_image_events
from integrations.dicom.holds import hold_instance, open_identity_check, reevaluate_held, study_patient
from integrations.dicom.matching import Decision, DicomPatient, compare, decide, same_patient
from integrations.dicom.models import INSTANCE, SERIES, STUDY
from integrations.dicom.orphans import content_conflict
from integrations.dicom.preview_queue import mark_received
from integrations.dicom.storage import (
    InvalidDicom,
    ParsedInstance,
    StoredFile,
    file_sha256,
    parse_instance,
    parse_instance_file,
    store_bytes,
    store_file,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    status: str  # stored, duplicate, held (kept out of the study it names), refused, conflict (resent, different)
    reason: str | None = None
    study_uid: str | None = None
    sop_instance_uid: str | None = None


class StorageFailure(OSError):
    """The file could not be written (disk full, permissions): the sender should retry later."""


@dataclass(frozen=True)
class _Held:
    reason: str
    case_id: int | None


@dataclass(frozen=True)
class _CheckCase:
    """The instance carries traits its study does not: they are compared with the case's patient first."""

    case_id: int


@dataclass(frozen=True)
class _Indexed:
    status: str  # stored or duplicate
    transition: str | None  # the study's new status when this instance attached or held it
    waiting: bool  # the study is held without a reconciliation task (e.g. until the identity check)


def ingest_file(ctx: EngineContext, path_or_bytes: Path | bytes, site_id: str | None, source: str, *,
                storage: Path, calling_ae: str | None = None, case_id: int | None = None,
                fsync: bool = True, consume: bool = False) -> IngestResult:
    """Check, store and index one Part-10 file. Refusals are logged and returned, never raised; a storage
    failure raises StorageFailure. `case_id` is the case chosen by the person uploading (web). A file on disk is
    checked and stored without being read into memory (its pixel data never is); with `consume` it is moved
    into the storage rather than copied (the SCP's received file)."""
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else None
    file_path = Path(path_or_bytes) if not isinstance(path_or_bytes, bytes) else None
    try:
        if data is not None:
            parsed = parse_instance(data)
            digest = hashlib.sha256(data).hexdigest()
        else:
            assert file_path is not None
            parsed = parse_instance_file(file_path)
            digest = file_sha256(file_path)
    except (InvalidDicom, OSError) as err:
        reason = str(err) if isinstance(err, InvalidDicom) else "fichier illisible"
        log.warning("DICOM instance refused (source %s, AE %s, site %s): %s", source, calling_ae, site_id, reason)
        return IngestResult("refused", reason)
    conflict = content_conflict(ctx, parsed.sop_instance_uid, sha256=digest)
    if conflict is not None:
        log.warning("DICOM instance %s resent with different content (source %s, AE %s): refused, the first one is"
                    " kept", parsed.sop_instance_uid, source, calling_ae)
        return IngestResult("conflict", conflict, parsed.study_uid, parsed.sop_instance_uid)
    try:
        if file_path is not None:
            stored = store_file(storage, file_path, digest, fsync=fsync, move=consume)
        else:
            assert data is not None
            stored = store_bytes(storage, data, fsync=fsync)
    except OSError as err:
        log.error("DICOM instance %s could not be stored: %s", parsed.sop_instance_uid, err)
        raise StorageFailure(str(err)) from err
    decision = None
    case_checked = False
    for _attempt in range(5):
        try:
            outcome = _index(ctx, parsed, stored, site_id, source, calling_ae, decision, case_id, case_checked)
        except IntegrityError:  # another association indexed the same study, series or instance first
            continue
        if isinstance(outcome, _CheckCase):
            contradicting = compare(_patient(parsed), case_identity(ctx, outcome.case_id).patient).contradicting
            if contradicting:
                outcome = _Held("patient différent de celui du dossier : " + ", ".join(contradicting),
                                outcome.case_id)
            else:
                case_checked = True
                continue
        if isinstance(outcome, _Held):
            held = hold_instance(ctx, parsed, stored, site_id, source, calling_ae, outcome.reason, outcome.case_id)
            return IngestResult("held" if held else "duplicate", outcome.reason, parsed.study_uid,
                                parsed.sop_instance_uid)
        if outcome is not None:
            break
        # A study seen for the first time (or given a case by the person uploading): find its case, then index.
        decision = decide(ctx, site_id, parsed.accession_number, parsed.study_uid, _patient(parsed), case_id)
    else:
        raise RuntimeError(f"DICOM instance {parsed.sop_instance_uid} could not be indexed")
    if outcome.transition == "held" and decision is not None and not decision.awaiting_check:
        open_identity_check(ctx, parsed.study_uid)
    elif outcome.waiting and outcome.transition is None:  # the next image after the identity check decides
        reevaluate_held(ctx, parsed.study_uid, ctx.clock.now())
    if outcome.status == "stored":  # rendered ahead by the worker, never by the page that shows it
        mark_received(storage, parsed.series_uid)
    return IngestResult(outcome.status, None, parsed.study_uid, parsed.sop_instance_uid)


def _patient(parsed: ParsedInstance) -> DicomPatient:
    return DicomPatient(parsed.patient_id, parsed.patient_name, parsed.patient_birth_date, parsed.patient_sex)


def _new_traits(study: Any, parsed: ParsedInstance) -> bool:
    """Whether the instance carries an identity trait its study does not (to be compared with the case's)."""
    pairs = ((study.patient_id, parsed.patient_id), (study.patient_name, parsed.patient_name),
             (study.patient_birth_date, parsed.patient_birth_date), (study.patient_sex, parsed.patient_sex))
    return any(mine and not known for known, mine in pairs)


def instance_mismatch(study: Any, parsed: ParsedInstance, site_id: str | None, chosen_case: int | None) -> str | None:
    """Why an instance naming a known study may not be indexed into it (None: it may)."""
    if study.site_id != site_id:
        return "instance envoyée par un autre site que celui de l'étude déjà reçue"
    if chosen_case is not None and study.case_id is not None and study.case_id != chosen_case:
        return "l'étude de cette instance est rattachée à un autre dossier"
    differences = same_patient(study_patient(study), _patient(parsed))
    if differences:
        return "patient différent de celui de l'étude déjà reçue : " + ", ".join(differences)
    if not (parsed.patient_id or parsed.patient_name or parsed.patient_birth_date) \
            and (study.patient_id or study.patient_name or study.patient_birth_date):
        return "instance sans identité du patient, alors que l'étude déjà reçue en porte une"
    known = getattr(study, "accession_number", None)
    if known and parsed.accession_number and parsed.accession_number.strip() != str(known).strip():
        return "numéro d'accession différent de celui de l'étude déjà reçue"
    return None


# Prebuilt statements (the per-instance hot path). SQLite: INSERT OR IGNORE, which SQLAlchemy caches compiled
# (its ON CONFLICT constructs are recompiled at every call); PostgreSQL: ON CONFLICT DO NOTHING.
_KNOWN_STUDY = select(STUDY.c.status, STUDY.c.site_id, STUDY.c.case_id, STUDY.c.identity_case_id,
                      STUDY.c.patient_id, STUDY.c.patient_name, STUDY.c.patient_birth_date,
                      STUDY.c.patient_sex, STUDY.c.accession_number).where(STUDY.c.uid == bindparam("b_uid"))
_TOUCH_STUDY = update(STUDY).where(STUDY.c.uid == bindparam("b_uid")).values(last_received_at=bindparam("b_now"))
_INSERT_IGNORE = {
    # RETURNING tells whether the instance row was new: rowcount is not reliable for ON CONFLICT on every driver
    "sqlite": (insert(SERIES).prefix_with("OR IGNORE", dialect="sqlite"),
               insert(INSTANCE).prefix_with("OR IGNORE", dialect="sqlite").returning(INSTANCE.c.sop_instance_uid)),
    "postgresql": (postgresql_insert(SERIES).on_conflict_do_nothing(index_elements=["uid"]),
                   postgresql_insert(INSTANCE).on_conflict_do_nothing(index_elements=["sop_instance_uid"])
                   .returning(INSTANCE.c.sop_instance_uid)),
}


def _index(ctx: EngineContext, parsed: ParsedInstance, stored: StoredFile, site_id: str | None, source: str,
           calling_ae: str | None, decision: Decision | None, chosen_case: int | None,
           case_checked: bool) -> _Indexed | _Held | _CheckCase | None:
    """Index the instance with its series and study in one transaction, or say why it is held out of the study
    it names, or that its traits must first be compared with the case's; None when the study first needs a
    decision."""
    now = ctx.clock.now()
    with ctx.write() as session:
        connection = session.connection()
        # The update first: on PostgreSQL it locks the study row until this instance is indexed.
        touched = connection.execute(_TOUCH_STUDY, {"b_uid": parsed.study_uid, "b_now": now}).rowcount
        known = connection.execute(_KNOWN_STUDY, {"b_uid": parsed.study_uid}).first() if touched else None
        if known is not None:
            reason = instance_mismatch(known, parsed, site_id, chosen_case)
            if reason is not None:
                return _Held(reason, known.case_id)  # rolled back by the session's close: nothing indexed
            if known.case_id is not None and not case_checked and _new_traits(known, parsed):
                return _CheckCase(known.case_id)
        transition = None
        status = known.status if known is not None else None
        if known is None or (known.status == "receiving" and chosen_case is not None):
            if decision is None:
                return None  # rolled back by the session's close
            if known is None:
                connection.execute(insert(STUDY).values(
                    uid=parsed.study_uid, case_id=decision.case_id, site_id=site_id,
                    accession_number=parsed.accession_number, patient_id=parsed.patient_id,
                    patient_name=parsed.patient_name, patient_birth_date=parsed.patient_birth_date,
                    patient_sex=parsed.patient_sex, description=parsed.study_description, status=decision.status,
                    hold_reason=decision.reason, first_received_at=now, last_received_at=now))
                transition = decision.status if decision.status != "receiving" else None
            elif decision.status != "receiving":
                transition = apply_decision(session, parsed.study_uid, decision)
            status = transition or status
        dialect = "postgresql" if ctx.engine.dialect.name == "postgresql" else "sqlite"
        insert_series, insert_instance = _INSERT_IGNORE[dialect]
        connection.execute(insert_series, {
            "uid": parsed.series_uid, "study_uid": parsed.study_uid, "modality": parsed.modality,
            "description": parsed.series_description, "number": parsed.series_number})
        inserted = connection.execute(insert_instance, {
            "sop_instance_uid": parsed.sop_instance_uid, "series_uid": parsed.series_uid,
            "sop_class_uid": parsed.sop_class_uid, "instance_number": parsed.instance_number,
            "sha256": stored.sha256, "size": stored.size, "transfer_syntax": parsed.transfer_syntax,
            "rows": parsed.rows, "columns": parsed.columns, "frames": parsed.frames, "source": source,
            "calling_ae": calling_ae, "received_at": now}).first() is not None
        waiting = status == "held" and (known is None or known.identity_case_id is None)
        if not inserted:  # a resend changes nothing (the study's last reception time is rolled back too)...
            existing = connection.execute(select(INSTANCE.c.sha256).where(
                INSTANCE.c.sop_instance_uid == parsed.sop_instance_uid)).scalar_one_or_none()
            if existing != stored.sha256:
                log.warning("DICOM instance %s resent with different content: the first one is kept",
                            parsed.sop_instance_uid)
            if transition is None:
                return _Indexed("duplicate", None, waiting)
        if transition is not None and decision is not None and decision.case_id is not None:
            record_image_events(session, decision.case_id, [(f"dicom.study_{transition}", {
                "study_uid": parsed.study_uid, "accession_number": parsed.accession_number,
                "source": source, "calling_ae": calling_ae, "reason": decision.reason})], now)
        session.commit()  # ...unless it is the upload that gives a study still without a case its case
    return _Indexed("stored" if inserted else "duplicate", transition, waiting)


def apply_decision(session: Session, study_uid: str, decision: Decision) -> str | None:
    """Move a study still without a case to its decision; None when someone else decided first."""
    result = session.connection().execute(update(STUDY).where(
        STUDY.c.uid == study_uid, STUDY.c.status == "receiving").values(
        status=decision.status, case_id=decision.case_id, hold_reason=decision.reason))
    return decision.status if result.rowcount == 1 else None  # type: ignore[attr-defined]
