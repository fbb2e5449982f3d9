"""The production state of a research export (CH-8.2): claimed by one producer at a time, its progress and
heartbeat recorded as it advances, finished or failed; an interrupted production (its process stopped: the request
stays RUNNING and its heartbeat grows old) is taken over by the worker.

Each claim increments the request's attempt; every later write of the producer names its attempt, so a producer
whose production was taken over (it was only slow, or its process came back) can no longer record progress,
finish or fail the request: only the current claimant does."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update

from engine.domain.charter import enforces
from engine.domain.research import APPROVED, DOWNLOADED, FAILED, PENDING, READY, REFUSED, RUNNING, STALE_PRODUCTION
from engine.errors import Conflict, NotFound
from engine.services.context import EngineContext
from engine.services.research import RequestView, _audit, _view
from engine.store.research_models import ResearchRequest

FILE_NAME = re.compile(r"^(?P<request>[0-9]+)-[0-9a-f]{32}\.zip$")  # the request's id, then a random part
TAKEN_OVER = "La production de cet export a été reprise par un autre processus."


@enforces("CH-8.2")
def start_production(ctx: EngineContext, request_id: int) -> RequestView:
    """Claim an approved request for production (or one whose production failed); anything else: Conflict. The
    view returned carries the attempt the producer names in its later writes."""
    now = ctx.clock.now()
    with ctx.write() as session:
        row = session.get(ResearchRequest, request_id, with_for_update=True)
        if row is None:
            raise NotFound("demande d'export introuvable")
        if row.status not in (APPROVED, FAILED):
            if row.status in (PENDING, REFUSED):
                raise Conflict("Cette demande n'est pas approuvée par un administrateur : pas d'export.")
            raise Conflict("L'export de cette demande est déjà produit ou en cours.")
        row.status, row.progress_done, row.progress_total, row.error = RUNNING, 0, 0, None
        row.attempt, row.heartbeat_at = (row.attempt or 0) + 1, now
        session.commit()
        return _view(row)


def stale_productions(ctx: EngineContext) -> list[int]:
    """The RUNNING requests whose heartbeat is older than STALE_PRODUCTION (or missing): their producer stopped."""
    cutoff = ctx.clock.now() - STALE_PRODUCTION
    with ctx.read() as session:
        return list(session.execute(select(ResearchRequest.id).where(
            ResearchRequest.status == RUNNING,
            or_(ResearchRequest.heartbeat_at.is_(None), ResearchRequest.heartbeat_at < cutoff))
            .order_by(ResearchRequest.id)).scalars())


def claim_stale_production(ctx: EngineContext, request_id: int) -> RequestView | None:
    """Take over an interrupted production: one conditional UPDATE (still RUNNING, heartbeat still stale) that
    increments the attempt, so that of two workers claiming it at once exactly one wins (the other's UPDATE finds
    the fresh heartbeat and changes nothing: None). Audited as research.restarted."""
    now = ctx.clock.now()
    with ctx.write() as session:
        result = session.execute(
            update(ResearchRequest).where(
                ResearchRequest.id == request_id, ResearchRequest.status == RUNNING,
                or_(ResearchRequest.heartbeat_at.is_(None), ResearchRequest.heartbeat_at < now - STALE_PRODUCTION))
            .values(attempt=ResearchRequest.attempt + 1, heartbeat_at=now, progress_done=0, progress_total=0,
                    error=None)
            .execution_options(synchronize_session=False))
        if getattr(result, "rowcount", 0) != 1:
            session.rollback()
            return None
        row = session.get(ResearchRequest, request_id)
        assert row is not None
        session.refresh(row)
        _audit(session, "system", "research.restarted", {"request": request_id, "attempt": row.attempt}, now)
        session.commit()
        return _view(row)


def _claimed(session: Any, request_id: int, attempt: int) -> ResearchRequest:
    row = session.get(ResearchRequest, request_id, with_for_update=True)
    if row is None or row.status != RUNNING or row.attempt != attempt:
        raise Conflict(TAKEN_OVER)
    return row


def set_progress(ctx: EngineContext, request_id: int, attempt: int, done: int | None = None,
                 total: int | None = None) -> None:
    """Record the progress (cases done / total) when given, and the heartbeat; Conflict when the production was
    taken over (the caller stops)."""
    with ctx.write() as session:
        row = _claimed(session, request_id, attempt)
        if done is not None and total is not None:
            row.progress_done, row.progress_total = done, total
        row.heartbeat_at = ctx.clock.now()
        session.commit()


@enforces("CH-8.2")
def finish_production(ctx: EngineContext, request_id: int, attempt: int, file_name: str, sha256: str,
                      manifest: dict[str, Any]) -> None:
    """The export is ready: recorded with the cases it holds (audited with them)."""
    found = FILE_NAME.fullmatch(file_name)
    if found is None or int(found["request"]) != request_id:
        raise ValueError("not an export file name of this request")
    now = ctx.clock.now()
    with ctx.write() as session:
        row = _claimed(session, request_id, attempt)
        row.status, row.produced_at, row.file_name, row.sha256 = READY, now, file_name, sha256
        row.heartbeat_at = now
        row.manifest = json.dumps(manifest, ensure_ascii=False)
        _audit(session, "system", "research.exported", {
            "request": request_id, "requester": row.requester, "protocol": row.protocol,
            "approval": row.approval_ref, "approved_by": row.decided_by, "cases": manifest.get("case_ids", []),
            "images": manifest.get("image_count", 0), "left_out": len(manifest.get("left_out", [])),
            "cleaned": len(manifest.get("cleaned", [])), "sha256": sha256}, now)
        session.commit()


def fail_production(ctx: EngineContext, request_id: int, attempt: int, error: str) -> None:
    """The production failed (recorded on the request, which may be produced again); nothing when it was taken
    over meanwhile."""
    with ctx.write() as session:
        row = session.get(ResearchRequest, request_id, with_for_update=True)
        if row is not None and row.status == RUNNING and row.attempt == attempt:
            row.status, row.error = FAILED, error[:2000]
            session.commit()



def files_in_use(ctx: EngineContext, sending: timedelta) -> tuple[set[str], set[int]]:
    """What the research folder must keep: the files of the READY requests and of those downloaded within
    `sending` (being sent, deleted once sent), and the ids of the RUNNING requests (their partial and
    just-finished files are named after them: the takeover job, not the purge, deals with those)."""
    since = ctx.clock.now() - sending
    with ctx.read() as session:
        rows = session.execute(select(ResearchRequest.id, ResearchRequest.status, ResearchRequest.file_name).where(
            or_(ResearchRequest.status.in_((READY, RUNNING)),
                and_(ResearchRequest.status == DOWNLOADED, ResearchRequest.downloaded_at >= since)))).all()
    return {row.file_name for row in rows if row.status != RUNNING and row.file_name}, \
        {int(row.id) for row in rows if row.status == RUNNING}
