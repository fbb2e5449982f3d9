"""The periodic side of DICOM reception: late matches, identity decisions, and the images_received message.

A study is "stable" when no instance arrived for a configurable delay; its case then receives the
images_received message (CH-4.1.11, CH-5.1), once, and only when the case waits for it (the message is kept
for later otherwise). Safe to run in several workers: on PostgreSQL a study is claimed with
FOR UPDATE SKIP LOCKED while its message is delivered; every state change is a guarded update.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.services.case_lookup import case_accession, with_case_status
from engine.services.context import EngineContext
from engine.services.images import record_image_events
from engine.services.instances import case_data
from engine.services.messages import deliver_message, waiting_for_message
from integrations.dicom.holds import open_identity_check, reevaluate_held, study_patient
from integrations.dicom.ingest import apply_decision
from integrations.dicom.matching import decide
from integrations.dicom.models import SERIES, STUDY, DicomInstance, DicomSeries

log = logging.getLogger(__name__)
MESSAGE = "images_received"
REMATCH_EVERY = timedelta(minutes=1)
REMATCH_WINDOW = timedelta(days=1)
DICOM = Actor("dicom")


@dataclass
class StabilityReport:
    matched: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    notified: list[str] = field(default_factory=list)


def notify_stable_studies(ctx: EngineContext, now: datetime | None = None, delay: float = 30.0,
                          batch: int = 100) -> StabilityReport:
    """One tick: match studies still without a case, decide on the studies held until their case's identity
    check, apply the technologists' identity decisions, then send images_received for every attached study
    that has been stable for `delay` seconds."""
    now = now or ctx.clock.now()
    report = StabilityReport()
    _match_waiting(ctx, now, min(batch, 20), report)
    _resolve_held(ctx, now, batch, report)
    cutoff = now - timedelta(seconds=delay)
    with ctx.read() as session:
        stable = session.execute(select(STUDY.c.uid, STUDY.c.case_id).where(
            STUDY.c.status == "attached", STUDY.c.notified_at.is_(None), STUDY.c.last_received_at <= cutoff)
            .order_by(STUDY.c.last_received_at).limit(batch)).all()
    for uid, case_id in stable:
        try:
            if _notify(ctx, uid, case_id, now):
                report.notified.append(uid)
        except Exception:
            log.exception("images_received for study %s failed; retried by the next tick", uid)
    return report


def _match_waiting(ctx: EngineContext, now: datetime, batch: int, report: StabilityReport) -> None:
    """Studies that arrived before their case (or its accession number) existed. Looking for a case by Study
    Instance UID searches the running cases' state, so each study is looked at most once a minute, during
    the day after its last instance (later, an upload to the case attaches it)."""
    with ctx.read() as session:
        waiting = session.execute(select(STUDY).where(
            STUDY.c.status == "receiving", STUDY.c.last_received_at >= now - REMATCH_WINDOW,
            or_(STUDY.c.match_checked_at.is_(None), STUDY.c.match_checked_at <= now - REMATCH_EVERY))
            .order_by(STUDY.c.match_checked_at.is_not(None), STUDY.c.match_checked_at).limit(batch)).all()
    for study in waiting:
        decision = decide(ctx, study.site_id, study.accession_number, study.uid, study_patient(study))
        if decision.status == "receiving":
            with ctx.write() as session:
                session.execute(update(STUDY).where(STUDY.c.uid == study.uid).values(match_checked_at=now))
                session.commit()
            continue
        with ctx.write() as session:
            transition = apply_decision(session, study.uid, decision)
            if transition is not None and decision.case_id is not None:
                record_image_events(session, decision.case_id, [(f"dicom.study_{transition}", {
                    "study_uid": study.uid, "accession_number": study.accession_number,
                    "reason": decision.reason})], now)
            session.commit()
        if transition is not None:
            report.matched.append(study.uid)
            if transition == "held" and not decision.awaiting_check:
                open_identity_check(ctx, study.uid)


def _resolve_held(ctx: EngineContext, now: datetime, batch: int, report: StabilityReport) -> None:
    with ctx.read() as session:
        held = session.execute(with_case_status(select(STUDY.c.uid, STUDY.c.case_id, STUDY.c.identity_case_id),
                                                STUDY.c.identity_case_id)
                               .where(STUDY.c.status == "held").limit(batch)).all()
    for uid, case_id, identity_case_id, identity_status in held:
        if identity_case_id is None:  # waiting for the case's identity check (or its task failed to open)
            if reevaluate_held(ctx, uid, now) == "attached":
                report.released.append(uid)
            continue
        if identity_status != "completed":
            continue
        decision = case_data(ctx, identity_case_id).get("decision")
        if decision not in ("attach", "reject"):
            continue
        status = "attached" if decision == "attach" else "rejected"
        with ctx.write() as session:
            changed = session.execute(update(STUDY).where(STUDY.c.uid == uid, STUDY.c.status == "held")
                                      .values(status=status))
            if changed.rowcount == 1 and case_id is not None:  # type: ignore[attr-defined]
                record_image_events(session, case_id, [(f"dicom.study_{status}", {
                    "study_uid": uid, "identity_case_id": identity_case_id, "decision": decision})], now)
            session.commit()
        if changed.rowcount == 1:  # type: ignore[attr-defined]
            (report.released if status == "attached" else report.rejected).append(uid)


def _notify(ctx: EngineContext, uid: str, case_id: int, now: datetime) -> bool:
    with ctx.read() as session:
        case = case_accession(session, case_id)
        waiting = waiting_for_message(session, case_id, MESSAGE, {"accession_number": case.accession_number})
        payload = _payload(session, uid)
    if case.status != "running" or not case.accession_number:
        _mark_notified(ctx, uid, now)  # nobody will ever wait for these images: stop looking
        return False
    if not waiting:
        return False  # the case is not at the acquisition step yet (or was moved on by hand): keep it for later
    if ctx.engine.dialect.name == "postgresql":  # several workers may tick at once: claim the study
        with ctx.write() as session:
            claimed = session.execute(select(STUDY.c.uid).where(STUDY.c.uid == uid, STUDY.c.notified_at.is_(None))
                                      .with_for_update(skip_locked=True)).first()
            if claimed is None:
                return False  # another worker is on it
            deliver_message(ctx, MESSAGE, {"accession_number": case.accession_number}, payload, source="dicom",
                            actor=DICOM)
            session.execute(update(STUDY).where(STUDY.c.uid == uid).values(notified_at=now))
            session.commit()
        return True
    deliver_message(ctx, MESSAGE, {"accession_number": case.accession_number}, payload, source="dicom", actor=DICOM)
    return _mark_notified(ctx, uid, now)


def _mark_notified(ctx: EngineContext, uid: str, now: datetime) -> bool:
    with ctx.write() as session:
        result = session.execute(update(STUDY).where(STUDY.c.uid == uid, STUDY.c.notified_at.is_(None))
                                 .values(notified_at=now))
        session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _payload(session: Session, uid: str) -> dict[str, object]:
    series = session.execute(select(func.count()).select_from(SERIES).where(SERIES.c.study_uid == uid)).scalar_one()
    instances = session.execute(select(func.count()).select_from(DicomInstance).join(
        DicomSeries, DicomSeries.uid == DicomInstance.series_uid).where(DicomSeries.study_uid == uid)).scalar_one()
    return {"study_uid": uid, "series": int(series), "instances": int(instances)}
