"""The original study of a teleexpertise (CH-4.2.2): the tele-expert chooses, at his check of the request
(te_check, field ``original_study_uid``), one of the patient's studies on the requesting site's PACS; Telerad moves
it from that PACS and attaches it to the case as its examined study (not a prior). Run by the priors tick
(integrations.dicom.priors.fetch_priors), never on the request path.

1. Candidates: when the priors tick runs its C-FIND for a teleexpertise, every study found (at most
   MAX_CANDIDATES, newest first) is recorded in case_pacs_study under the case's site and patient key
   (``record_candidates``); engine.services.pacs_studies offers them in the form and refuses any other UID.
2. Queue: a completed te_check not read yet is read once (``queue_chosen``): the case's ``original_study_uid``, if
   any, is queued in original_study_fetch and ``dicom.original_study_requested`` written on the case's chain.
3. Fetch (``fetch_original_studies``): C-MOVE of the study to Telerad's AE title (the priors' move), then claimed
   like any image: its identity traits compared with the request's (integrations.dicom.matching), attached to the
   case (no case_prior row: a prior of the same study stops being one) or held with a reconciliation task
   (integrations.dicom.holds); ``dicom.original_study_fetched`` on the case's chain. A study already another
   case's is only reported ("elsewhere"). A PACS that does not answer is retried like the priors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from engine.services.context import EngineContext
from engine.services.images import case_identity, record_image_events
from engine.services.instances import case_data
from engine.services.pacs_studies import MAX_CANDIDATES, ORIGINAL_STUDY_FIELD, pacs_studies, patient_key
from integrations.dicom.holds import open_identity_check, study_patient
from integrations.dicom.matching import identity_differences
from integrations.dicom.models import STUDY
from integrations.dicom.pacs import PacsAddress, pacs_of_site
from integrations.dicom.pacs_models import (
    CASE_PACS_STUDY,
    CASE_PRIOR,
    ORIGINAL_STUDY_FETCH,
    checks_to_read,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
RETRY_DELAY = timedelta(minutes=1)  # times the number of attempts, at most MAX_RETRY_DELAY
MAX_RETRY_DELAY = timedelta(hours=1)
LEASE = timedelta(minutes=30)
Move = Callable[[PacsAddress, str, str], None]  # (PACS, Telerad's AE title, study UID): priors.move_study


class StudyNotReceived(Exception):
    """The PACS accepted the C-MOVE but the study did not reach Telerad (retried later)."""


def record_candidates(ctx: EngineContext, case_id: int, site_id: str, patient: Any, found: Iterable[Any]) -> int:
    """Keep the studies a C-FIND found for a teleexpertise's patient (priors.FoundStudy) as the case's candidate
    original studies, replacing the previous list, in one transaction; how many were kept."""
    key = patient_key(patient)
    if key is None:
        return 0
    now = ctx.clock.now()
    studies = sorted({s.uid: s for s in found}.values(), key=lambda s: (s.date or "", s.uid), reverse=True)
    rows = [{"case_id": case_id, "study_uid": s.uid[:64], "site_id": site_id, "patient_key": key,
             "study_date": s.date, "modalities": (s.modalities or None) and s.modalities[:64],
             "description": (s.description or None) and s.description[:200],
             "accession_number": (s.accession_number or None) and s.accession_number[:64], "found_at": now}
            for s in studies[:MAX_CANDIDATES]]
    with ctx.write() as session:
        session.execute(delete(CASE_PACS_STUDY).where(CASE_PACS_STUDY.c.case_id == case_id))
        if rows:
            session.execute(insert(CASE_PACS_STUDY), rows)
        session.commit()
    return len(rows)


def queue_chosen(ctx: EngineContext, now: datetime, limit: int = 50) -> list[int]:
    """Read the tele-expert's checks completed since last read; queue the original studies chosen (the cases)."""
    with ctx.read() as session:
        checks = session.execute(checks_to_read(limit)).all()
    queued = []
    for case_id, site_id, ended_at in checks:
        data = case_data(ctx, case_id)
        chosen = data.get(ORIGINAL_STUDY_FIELD)
        chosen = chosen if isinstance(chosen, str) and chosen else None
        try:
            if _record_choice(ctx, case_id, site_id, ended_at, chosen, data, now):
                queued.append(case_id)
        except IntegrityError:
            continue  # read by another worker meanwhile
    return queued


def _record_choice(ctx: EngineContext, case_id: int, site_id: str, ended_at: datetime, chosen: str | None,
                   data: dict[str, Any], now: datetime) -> bool:
    study = next((s for s in pacs_studies(ctx, site_id, data.get("patient")) if s.uid == chosen), None) \
        if chosen else None
    expert = data.get("expert_id") if isinstance(data.get("expert_id"), str) else None
    with ctx.write() as session:
        row = session.execute(select(ORIGINAL_STUDY_FETCH).where(ORIGINAL_STUDY_FETCH.c.case_id == case_id)).first()
        new = chosen is not None and (row is None or row.study_uid != chosen)
        values: dict[str, Any] = {"check_ended_at": ended_at}
        if new:
            values.update(study_uid=chosen, status="pending", attempts=0, next_attempt_at=now, last_error=None,
                          requested_by=expert, requested_at=now, done_at=None, outcome=None)
        if row is None:
            session.execute(insert(ORIGINAL_STUDY_FETCH).values(**{
                "case_id": case_id, "site_id": site_id, "study_uid": None, "status": "none", "attempts": 0,
                "next_attempt_at": now, "requested_at": now, **values}))
        else:
            session.execute(update(ORIGINAL_STUDY_FETCH).where(ORIGINAL_STUDY_FETCH.c.case_id == case_id)
                            .values(**values))
        if new:
            record_image_events(session, case_id, [("dicom.original_study_requested", {
                "study_uid": chosen, "date": study.date if study else None,
                "modalities": study.modalities if study else None,
                "description": study.description if study else None, "chosen_by": expert})], now)
        session.commit()
    return new


def fetch_original_studies(ctx: EngineContext, telerad_ae: str, move: Move, batch: int = 5) -> dict[str, list[int]]:
    """One tick: queue the chosen original studies, then move and attach the due ones. The cases by outcome:
    {"queued", "fetched", "retried", "failed"}."""
    now = ctx.clock.now()
    report: dict[str, list[int]] = {"queued": queue_chosen(ctx, now), "fetched": [], "retried": [], "failed": []}
    with ctx.read() as session:
        due = session.execute(select(ORIGINAL_STUDY_FETCH).where(
            ORIGINAL_STUDY_FETCH.c.status == "pending", ORIGINAL_STUDY_FETCH.c.next_attempt_at <= now)
            .order_by(ORIGINAL_STUDY_FETCH.c.next_attempt_at).limit(batch)).all()
    for row in due:
        if not _lease(ctx, row, now):
            continue
        try:
            outcome = _fetch(ctx, row, telerad_ae, move)
        except Exception as err:
            expected = isinstance(err, StudyNotReceived) or type(err).__name__ == "PacsUnavailable"
            log.warning("original study of case %s: %s", row.case_id, err, exc_info=not expected)
            report["failed" if _retry_later(ctx, row, now, str(err) or type(err).__name__) else "retried"].append(
                row.case_id)
            continue
        with ctx.write() as session:
            session.execute(update(ORIGINAL_STUDY_FETCH).where(ORIGINAL_STUDY_FETCH.c.case_id == row.case_id,
                                                                ORIGINAL_STUDY_FETCH.c.study_uid == row.study_uid)
                            .values(status="done", done_at=now, last_error=None, outcome=outcome))
            record_image_events(session, row.case_id, [("dicom.original_study_fetched", {
                "study_uid": row.study_uid, "status": outcome})], now)
            session.commit()
        report["fetched"].append(row.case_id)
    return report


def _lease(ctx: EngineContext, row: Any, now: datetime) -> bool:
    with ctx.write() as session:
        taken = session.execute(update(ORIGINAL_STUDY_FETCH).where(
            ORIGINAL_STUDY_FETCH.c.case_id == row.case_id, ORIGINAL_STUDY_FETCH.c.status == "pending",
            ORIGINAL_STUDY_FETCH.c.study_uid == row.study_uid,
            ORIGINAL_STUDY_FETCH.c.next_attempt_at == row.next_attempt_at).values(next_attempt_at=now + LEASE))
        session.commit()
    return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


def _retry_later(ctx: EngineContext, row: Any, now: datetime, error: str) -> bool:
    """Record a failed attempt; True when given up (dicom.original_study_failed on the case's chain)."""
    attempts = row.attempts + 1
    failed = attempts >= MAX_ATTEMPTS
    with ctx.write() as session:
        session.execute(update(ORIGINAL_STUDY_FETCH).where(ORIGINAL_STUDY_FETCH.c.case_id == row.case_id,
                                                            ORIGINAL_STUDY_FETCH.c.study_uid == row.study_uid)
                        .values(attempts=attempts, last_error=error[:300],
                                next_attempt_at=now + min(RETRY_DELAY * attempts, MAX_RETRY_DELAY),
                                status="failed" if failed else "pending", done_at=now if failed else None))
        if failed:
            record_image_events(session, row.case_id, [("dicom.original_study_failed", {
                "study_uid": row.study_uid, "attempts": attempts, "error": error[:300]})], now)
        session.commit()
    return failed


def _fetch(ctx: EngineContext, row: Any, telerad_ae: str, move: Move) -> str:
    """Move the study unless Telerad has it, then claim it for the case: its outcome (attached, held, elsewhere)."""
    outcome = _claim(ctx, row.case_id, row.study_uid)
    if outcome is None:
        pacs = pacs_of_site(ctx, row.site_id)
        if pacs is None:
            raise StudyNotReceived(f"plus de PACS déclaré pour le site {row.site_id}")
        move(pacs, telerad_ae, row.study_uid)
        outcome = _claim(ctx, row.case_id, row.study_uid)
    if outcome is None:
        raise StudyNotReceived(f"étude {row.study_uid} non reçue après le C-MOVE")
    return outcome


def _claim(ctx: EngineContext, case_id: int, study_uid: str) -> str | None:
    """Attach (or hold) the received study as the case's examined study; None when Telerad has not received it."""
    identity = case_identity(ctx, case_id)
    now = ctx.clock.now()
    held_reason = None
    with ctx.write() as session:
        received = session.execute(select(STUDY).where(STUDY.c.uid == study_uid)).first()
        if received is None:
            session.commit()
            return None
        if received.case_id == case_id:
            # Already the case's (a prior fetched earlier, or received otherwise): now its examined study.
            session.execute(delete(CASE_PRIOR).where(CASE_PRIOR.c.case_id == case_id,
                                                     CASE_PRIOR.c.study_uid == study_uid))
            outcome = "held" if received.status == "held" else "attached"
        elif received.case_id is not None or received.status != "receiving" or received.site_id != identity.site_id:
            outcome = "elsewhere"
        else:
            differences = identity_differences(study_patient(received), identity.patient)
            outcome = "held" if differences else "attached"
            held_reason = ("identité différente : " + ", ".join(differences))[:300] if differences else None
            session.execute(update(STUDY).where(STUDY.c.uid == study_uid, STUDY.c.status == "receiving",
                                                STUDY.c.case_id.is_(None)).values(
                case_id=case_id, status=outcome, hold_reason=held_reason, notified_at=now))
            record_image_events(session, case_id, [(f"dicom.study_{outcome}", {
                "study_uid": study_uid, "accession_number": received.accession_number, "original": True,
                "reason": held_reason})], now)
        session.commit()
    if held_reason is not None:
        open_identity_check(ctx, study_uid)
    return outcome
