"""The notification outbox as the worker and the administrators see it: claim the rows that are due, record each
attempt, list them, send them again now.

A row is claimed by moving its next attempt past a lease before sending, so two workers never send it at the
same time and a worker dying mid-send leaves it due again after the lease (at least once). A failed attempt is
retried after 30 s x 2^(attempts - 1), at most one hour apart; after `max_attempts` the row is given up (status
failed), visible to administrators, who can send it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from engine.domain.actors import Actor
from engine.errors import Forbidden
from engine.services.audit import record_global_event
from engine.services.context import EngineContext
from engine.store.directory_models import NotificationOutbox, User

BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 8
STATUSES = ("pending", "sent", "failed")


def backoff(attempts: int) -> timedelta:
    """Delay before the next attempt after `attempts` failed ones."""
    return min(BASE_DELAY * 2 ** max(attempts - 1, 0), MAX_DELAY)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    event: str
    event_key: str
    case_id: int | None
    site_id: str | None
    urgency: str | None
    recipient: str
    channel: str
    address: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    recipient_name: str | None = None  # the person's display name, on the administrators' page


def _view(row: NotificationOutbox, names: dict[str, str] | None = None) -> OutboxRow:
    return OutboxRow(row.id, row.event, row.event_key, row.case_id, row.site_id, row.urgency, row.recipient,
                     row.channel, row.address, row.status, row.attempts, row.next_attempt_at, row.last_error,
                     row.created_at, row.sent_at, (names or {}).get(row.recipient))


def claim_due(ctx: EngineContext, limit: int = 50, now: datetime | None = None) -> list[OutboxRow]:
    """The pending rows that are due, oldest first, each leased to this worker (FOR UPDATE SKIP LOCKED on
    PostgreSQL, a guarded update everywhere)."""
    now = now or ctx.clock.now()
    claimed = []
    with ctx.write() as session:
        query = (select(NotificationOutbox)
                 .where(NotificationOutbox.status == "pending", NotificationOutbox.next_attempt_at <= now)
                 .order_by(NotificationOutbox.next_attempt_at, NotificationOutbox.id).limit(limit))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        for row in session.execute(query).scalars().all():
            moved = session.execute(update(NotificationOutbox).where(
                NotificationOutbox.id == row.id, NotificationOutbox.next_attempt_at == row.next_attempt_at)
                .values(next_attempt_at=now + LEASE).execution_options(synchronize_session=False))
            if moved.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(_view(row))
        session.commit()
    return claimed


def mark_sent(ctx: EngineContext, row_id: int, now: datetime | None = None) -> None:
    now = now or ctx.clock.now()
    with ctx.write() as session:
        session.execute(update(NotificationOutbox).where(NotificationOutbox.id == row_id).values(
            status="sent", attempts=NotificationOutbox.attempts + 1, sent_at=now, last_error=None))
        session.commit()


def mark_failed(ctx: EngineContext, row_id: int, reason: str, max_attempts: int = MAX_ATTEMPTS,
                now: datetime | None = None) -> str:
    """Record a failed attempt: retried after the backoff, or given up after `max_attempts`. Returns the status."""
    now = now or ctx.clock.now()
    with ctx.write() as session:
        row = session.get(NotificationOutbox, row_id)
        if row is None:
            return "gone"
        row.attempts += 1
        row.last_error = reason[:1000]
        row.status = "failed" if row.attempts >= max_attempts else "pending"
        row.next_attempt_at = now + backoff(row.attempts)
        status = row.status
        session.commit()
    return status


def list_outbox(ctx: EngineContext, actor: Actor, status: str | None = None, limit: int = 200) -> list[OutboxRow]:
    """The latest rows, newest first (administrators only: who is told what, about which case number)."""
    _require_admin(actor)
    with ctx.read() as session:
        query = select(NotificationOutbox).order_by(NotificationOutbox.id.desc()).limit(limit)
        if status in STATUSES:
            query = query.where(NotificationOutbox.status == status)
        rows = session.execute(query).scalars().all()
        names = dict(session.execute(select(User.username, User.display_name).where(
            User.username.in_(sorted({row.recipient for row in rows})))).tuples().all())
        return [_view(row, names) for row in rows]


def count_by_status(ctx: EngineContext, actor: Actor) -> dict[str, int]:
    _require_admin(actor)
    with ctx.read() as session:
        counts = dict(session.execute(select(NotificationOutbox.status, func.count()).group_by(
            NotificationOutbox.status)).tuples().all())
    return {status: int(counts.get(status, 0)) for status in STATUSES}


def retry_now(ctx: EngineContext, actor: Actor, row_id: int) -> bool:
    """Send a row that is waiting or given up again now, with a fresh count of attempts. Audited."""
    _require_admin(actor)
    now = ctx.clock.now()
    with ctx.write() as session:
        moved = session.execute(update(NotificationOutbox).where(
            NotificationOutbox.id == row_id, NotificationOutbox.status.in_(("pending", "failed"))).values(
            status="pending", attempts=0, next_attempt_at=now))
        done = moved.rowcount == 1  # type: ignore[attr-defined]
        if done:
            record_global_event(session, actor.user_id, "notification.retry", {"row": row_id}, now)
        session.commit()
    return done


def _require_admin(actor: Actor) -> None:
    if not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur peut consulter et relancer les notifications.")
