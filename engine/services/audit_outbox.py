"""Where each export of the audit trail stands, and the events it has still to send.

An export reads the events after its position (an audit_event id) and moves the position once they are sent:
nothing is lost when the receiver is down, and the task completions that wrote the events never wait for it.
On PostgreSQL ids come from a sequence and transactions commit out of order: an id missing below a newer one
may belong to a transaction still running, so an export stops at such a gap until the events after it are
older than GAP_GRACE (then the gap was a rolled-back transaction).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.services.context import EngineContext
from engine.store.models import AuditEvent, AuditExport, ProcessInstance

GAP_GRACE = timedelta(minutes=5)
RETRY_FIRST = timedelta(seconds=5)
RETRY_LONGEST = timedelta(minutes=10)


@dataclass(frozen=True)
class ExportCursor:
    name: str
    position: int
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None

    def due(self, now: datetime) -> bool:
        return self.next_attempt_at is None or self.next_attempt_at <= now


@dataclass(frozen=True)
class CaseFacts:
    case_id: int
    site_id: str | None
    patient_ref: str | None
    accession_number: str | None


@dataclass(frozen=True)
class PendingEvent:
    id: int
    chain: int
    seq: int
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]
    case: CaseFacts | None


def read_cursor(ctx: EngineContext, name: str) -> ExportCursor:
    with ctx.read() as session:
        row = session.get(AuditExport, name)
        if row is None:
            return ExportCursor(name, 0)
        return ExportCursor(name, row.position, row.attempts, row.next_attempt_at, row.last_error)


def settled_events(session: Session, after: int, limit: int, now: datetime) -> list[Any]:
    """The events after id `after`, in id order, stopping before an id gap younger than GAP_GRACE."""
    events = AuditEvent.__table__
    rows = session.connection().execute(
        select(events).where(events.c.id > after).order_by(events.c.id).limit(limit)).all()
    settled, expected = [], after + 1
    for row in rows:
        if row.id != expected and row.at > now - GAP_GRACE:
            break
        settled.append(row)
        expected = row.id + 1
    return settled


def pending_events(ctx: EngineContext, cursor: ExportCursor, limit: int) -> list[PendingEvent]:
    """At most `limit` events after the cursor, with the facts of the case each is about."""
    with ctx.read() as session:
        rows = settled_events(session, cursor.position, limit, ctx.clock.now())
        case_ids = {row.instance_id for row in rows if row.instance_id is not None}
        cases = {row.id: CaseFacts(row.id, row.site_id, row.patient_ref, row.accession_number)
                 for row in session.connection().execute(
                     select(ProcessInstance.id, ProcessInstance.site_id, ProcessInstance.patient_ref,
                            ProcessInstance.accession_number).where(ProcessInstance.id.in_(case_ids)))} \
            if case_ids else {}
    return [PendingEvent(row.id, row.chain, row.seq, row.at, row.actor, row.action, _detail(row.detail),
                         cases.get(row.instance_id) if row.instance_id is not None else None) for row in rows]


def advance(ctx: EngineContext, cursor: ExportCursor, position: int) -> None:
    """The export sent everything up to `position`: move there and forget past failures."""
    now = ctx.clock.now()
    with ctx.write() as session:
        row = _locked(session, cursor.name)
        if position > row.position:
            row.position = position
        row.attempts, row.next_attempt_at, row.last_error, row.updated_at = 0, None, None, now
        session.commit()


def record_failure(ctx: EngineContext, cursor: ExportCursor, error: str) -> ExportCursor:
    """A failed attempt: the next one waits 5 s, then twice as long each time, at most 10 min."""
    now = ctx.clock.now()
    with ctx.write() as session:
        row = _locked(session, cursor.name)
        row.attempts += 1
        row.next_attempt_at = now + min(RETRY_FIRST * 2 ** (row.attempts - 1), RETRY_LONGEST)
        row.last_error, row.updated_at = error[:2000], now
        session.commit()
        return ExportCursor(row.name, row.position, row.attempts, row.next_attempt_at, row.last_error)


def _locked(session: Session, name: str) -> AuditExport:
    row = session.execute(select(AuditExport).where(AuditExport.name == name).with_for_update()).scalar_one_or_none()
    if row is None:
        row = AuditExport(name=name, position=0, attempts=0)
        session.add(row)
        session.flush()
    return row


def reset_cursor(ctx: EngineContext, name: str, position: int) -> None:
    """Put an export back to `position` (e.g. 0 to send the whole trail again to a new syslog server)."""
    with ctx.write() as session:
        _locked(session, name)
        session.execute(update(AuditExport).where(AuditExport.name == name).values(
            position=position, attempts=0, next_attempt_at=None, last_error=None))
        session.commit()


def _detail(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {"text": text}
    return value if isinstance(value, dict) else {"value": value}
