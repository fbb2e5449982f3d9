"""Reminders before a convention expires (issue 19, item 5): the administrators and the site's medical leads are
told through the notification outbox when the renewal date comes, thirty days before the expiry, and when the
convention has expired (it then no longer routes cases: engine.store.convention_models.routes_cases). Each stage
is sent once per expiry date (table convention_reminder; a new expiry date starts again), and only the latest due
stage when several came at once (a scheduler that did not run for a while). Run daily by web.ops.scheduler.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.convention_content import RENEWAL_REMINDER_BEFORE, expired
from engine.domain.data_checks import paris_date
from engine.services.context import EngineContext
from engine.services.notification_contacts import CHANNELS, CONVENTION_EXPIRY
from engine.services.notifications import CaseFacts, Event, holders, write_rows
from engine.store import audit
from engine.store.convention_models import ConventionReminder
from engine.store.directory_models import ConventionRow

RENEWAL, EXPIRY_SOON, EXPIRED = "renewal", "expiry_soon", "expired"


def due_stage(expires_on: date, renewal_on: date | None, today: date) -> str | None:
    """The latest reminder stage reached today, None before the first."""
    if expired(expires_on, today):
        return EXPIRED
    if today >= expires_on - RENEWAL_REMINDER_BEFORE:
        return EXPIRY_SOON
    if renewal_on is not None and today >= renewal_on:
        return RENEWAL
    return None


def send_convention_reminders(ctx: EngineContext, channels: Sequence[str] = CHANNELS) -> int:
    """Record the reminders due today and queue their messages; returns how many reminders were recorded."""
    now = ctx.clock.now()
    today = paris_date(now)
    channels = tuple(c for c in channels if c in CHANNELS)
    recorded = 0
    with ctx.write() as session:
        query = (select(ConventionRow).where(ConventionRow.expires_on.is_not(None),
                                             ConventionRow.cme_validated.is_(True),
                                             ConventionRow.approved_by_g4.is_(True),
                                             ConventionRow.approved_by_council.is_(True))
                 .order_by(ConventionRow.id))
        if session.get_bind().dialect.name == "postgresql":  # two schedulers never remind twice
            query = query.with_for_update(skip_locked=True)
        for row in session.execute(query).scalars().all():
            assert row.expires_on is not None
            stage = due_stage(row.expires_on, row.renewal_on, today)
            if stage is None or _already_sent(session, row.id, stage, row.expires_on):
                continue
            session.add(ConventionReminder(convention_id=row.id, stage=stage, expires_on=row.expires_on,
                                           sent_at=now))
            people = sorted({*holders(session, ["administrator", "site_lead"], row.site_id),
                             *([row.medical_lead] if row.medical_lead else [])})
            key = f"convention:{row.id}:{stage}:{row.expires_on.isoformat()}"
            event = Event(CONVENTION_EXPIRY, key, tuple(people))
            written = write_rows(session, CaseFacts(None, row.site_id, None), [event], channels, now)
            audit.append_global(session, [audit.AuditEntry("system", "convention.reminder", None, {
                "convention": row.id, "site": row.site_id, "stage": stage, "expires_on": row.expires_on.isoformat(),
                "recipients": people, "messages": written})], now)
            recorded += 1
        session.commit()
    return recorded


def _already_sent(session: Session, convention_id: int, stage: str, expires_on: date) -> bool:
    later = {RENEWAL: (RENEWAL, EXPIRY_SOON, EXPIRED), EXPIRY_SOON: (EXPIRY_SOON, EXPIRED), EXPIRED: (EXPIRED,)}
    return session.execute(select(ConventionReminder.id).where(
        ConventionReminder.convention_id == convention_id, ConventionReminder.expires_on == expires_on,
        ConventionReminder.stage.in_(later[stage])).limit(1)).first() is not None
