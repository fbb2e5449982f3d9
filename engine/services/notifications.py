"""Notifications: who must be reached outside the browser, decided with the save that raised the event and written
in its transaction (CH-4.1.12, CH-5.5). The worker sends them (integrations.notify) and retries them.

The save hook reads back what the save has just written, in the same transaction: the tasks it opened (an offer
to radiologists, the announcement plan for the requester, the acknowledgement of a released report, the images
held for an identity check) and the case notices it raised (no radiologist left, report overdue). One row per
person, channel and event; a person is reached on the channels of their preferences that have an address, and
only on the channels the installation has (`channels`). "No radiologist left" is repeated (`remind_unhandled`)
until its notice is resolved.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, select
from sqlalchemy.orm import Session

from engine.domain.urgency import URGENT, VITAL
from engine.services.context import EngineContext
from engine.services.notification_contacts import (
    ANNOUNCEMENT_PLAN,
    CHANNELS,
    IDENTITY_HOLD,
    NEXT_TIER,
    NO_RADIOLOGIST,
    OFFER,
    REPORT_OVERDUE,
    REPORT_RELEASED,
    URGENT_OFFER,
    contacts_of,
)
from engine.services.persistence import InstanceRow
from engine.store.directory_models import NotificationOutbox, UserRole, UserSite
from engine.store.models import CaseNotice, ProcessInstance, Task, TaskCandidate, table_of

_OUTBOX = table_of(NotificationOutbox)
ACCEPTANCE_TASKS = frozenset({"accept_case"})
# task spec -> event for whoever the task is for (assignee, offered users, or its lane's role at the site)
TASK_EVENTS = {"confirm_announcement_plan": ANNOUNCEMENT_PLAN, "acknowledge_report": REPORT_RELEASED,
               "te_integrate": REPORT_RELEASED, "reconcile_images": IDENTITY_HOLD}
NOTICE_EVENTS = {"no_radiologist": NO_RADIOLOGIST, "report_overdue": REPORT_OVERDUE}


@dataclass(frozen=True)
class Event:
    event: str
    key: str
    recipients: tuple[str, ...]  # in order: the on-call radiologist first
    on_call: str | None = None  # the on-call radiologist among them, told that he is reached as such


# The key of the on-call radiologist's row: his message says he is reached because he is on call.
ON_CALL_KEY = ":oncall"


@dataclass(frozen=True)
class CaseFacts:
    case_id: int | None  # None: an event about a site, not a case (a convention, a visit, a silent link)
    site_id: str | None
    urgency: str | None


class NotificationHook:
    """The save hook (engine.services.persistence.write_save): rows for the events of this save."""

    def __init__(self, ctx: EngineContext, channels: Sequence[str] = CHANNELS):
        self.ctx = ctx
        self.channels = tuple(c for c in channels if c in CHANNELS)

    def __call__(self, session: Session, saved: InstanceRow, data: Any) -> None:
        if not self.channels:
            return
        case = session.execute(select(ProcessInstance.updated_at, ProcessInstance.urgency, ProcessInstance.site_id)
                               .where(ProcessInstance.id == saved.id)).one()
        facts = CaseFacts(saved.id, case.site_id, case.urgency)
        events = [*self._task_events(session, facts, case.updated_at),
                  *self._notice_events(session, facts, case.updated_at)]
        if events:
            write_rows(session, facts, events, self.channels, case.updated_at)

    def _task_events(self, session: Session, facts: CaseFacts, at: datetime) -> list[Event]:
        tasks = session.execute(select(Task.id, Task.spec_name, Task.lane, Task.assignee, Task.restricted).where(
            Task.instance_id == facts.case_id, Task.created_at == at, Task.status == "open")).all()
        events = []
        for task in tasks:
            event = TASK_EVENTS.get(task.spec_name)
            if task.spec_name in ACCEPTANCE_TASKS:
                event = self._offer_event(session, facts, task.id)
            if event is None:
                continue
            if task.restricted:
                people = list(session.execute(select(TaskCandidate.user_id).where(
                    TaskCandidate.task_id == task.id).order_by(TaskCandidate.user_id)).scalars())
                if task.spec_name in ACCEPTANCE_TASKS:
                    told = self._told_of_this_tier(session, facts)
                    people = [user for user in people if user not in told]
            elif task.assignee:
                people = [task.assignee]
            else:
                people = holders(session, [task.lane] if task.lane else [], facts.site_id)
            events.append(self._event(event, f"task:{task.id}", facts.site_id, people))
        return events

    def _offer_event(self, session: Session, facts: CaseFacts, task_id: str) -> str:
        # An acceptance task cancelled by its timer before this one: the offer moved to the next tier.
        timed_out = session.execute(select(func.count()).select_from(Task).where(
            Task.instance_id == facts.case_id, Task.spec_name.in_(ACCEPTANCE_TASKS), Task.id != task_id,
            Task.status == "cancelled")).scalar_one()
        if timed_out:
            return NEXT_TIER
        return URGENT_OFFER if facts.urgency in (VITAL, URGENT) else OFFER

    def _told_of_this_tier(self, session: Session, facts: CaseFacts) -> set[str]:
        """Who was already offered the case at this tier: a colleague's decline re-offers it to the others, who
        need no second message."""
        tier_moved = session.execute(select(func.max(Task.ended_at)).where(
            Task.instance_id == facts.case_id, Task.spec_name.in_(ACCEPTANCE_TASKS),
            Task.status == "cancelled")).scalar_one()
        query = select(_OUTBOX.c.recipient).where(_OUTBOX.c.case_id == facts.case_id,
                                                  _OUTBOX.c.event.in_((URGENT_OFFER, OFFER, NEXT_TIER)))
        if tier_moved is not None:
            query = query.where(_OUTBOX.c.created_at >= tier_moved)
        return set(session.execute(query).scalars())

    def _notice_events(self, session: Session, facts: CaseFacts, at: datetime) -> list[Event]:
        notices = session.execute(select(CaseNotice.id, CaseNotice.kind, CaseNotice.audience).where(
            CaseNotice.instance_id == facts.case_id, CaseNotice.created_at == at)).all()
        by_kind = {n.kind: n for n in notices if n.kind in NOTICE_EVENTS}  # one message per kind and save
        return [self._event(NOTICE_EVENTS[n.kind], f"notice:{n.id}", facts.site_id,
                            audience_of(session, n.audience, facts.site_id)) for n in by_kind.values()]

    def _event(self, event: str, key: str, site_id: str | None, people: Iterable[str]) -> Event:
        """The event for these people, the on-call radiologist of the site's territory first."""
        ordered = list(dict.fromkeys(people))
        on_duty = on_call_of(self.ctx, site_id)
        return Event(event, key, tuple(sorted(ordered, key=lambda user: user != on_duty)),
                     on_duty if on_duty in ordered else None)


def on_call_of(ctx: EngineContext, site_id: str | None) -> str | None:
    """The on-call radiologist of the site's territory now (engine.domain.oncall.on_call_at), if any."""
    if ctx.directory is None or not site_id:
        return None
    site = ctx.directory.site(site_id)
    return ctx.directory.on_call(site.territory_id, ctx.clock.now()) if site is not None else None


def holders(session: Session, roles: Sequence[str], site_id: str | None) -> list[str]:
    """Users holding one of `roles`: at the site, or anywhere for administrators."""
    found: set[str] = set()
    if "administrator" in roles:
        found |= set(session.execute(select(UserRole.username).where(UserRole.role == "administrator")).scalars())
    site_roles = [r for r in roles if r != "administrator"]
    if site_roles and site_id:
        found |= set(session.execute(select(UserRole.username).join(UserSite, and_(
            UserSite.username == UserRole.username, UserSite.site_id == site_id)).where(
            UserRole.role.in_(site_roles))).scalars())
    return sorted(found)


def audience_of(session: Session, audience: str, site_id: str | None) -> list[str]:
    """The people a case notice names (engine.services.notices): by name, then by role at its site."""
    parsed = json.loads(audience)
    return [*parsed.get("users", ()), *holders(session, list(parsed.get("roles", ())), site_id)]


def write_rows(session: Session, facts: CaseFacts, events: Sequence[Event], channels: Sequence[str],
               now: datetime) -> int:
    """One pending row per person, channel and event, for the channels of each person's preferences that have an
    address; a row already written for the same key is not written twice. Returns how many were written."""
    contacts = contacts_of(session, [user for event in events for user in event.recipients])
    keys = [key for event in events for key in (event.key, event.key + ON_CALL_KEY)]
    existing = {(r.recipient, r.channel, r.event_key) for r in session.execute(
        select(_OUTBOX.c.recipient, _OUTBOX.c.channel, _OUTBOX.c.event_key).where(_OUTBOX.c.event_key.in_(keys)))}
    rows: list[dict[str, Any]] = []
    for event in events:
        for user in event.recipients:
            contact = contacts.get(user)
            if contact is None:
                continue
            key = event.key + ON_CALL_KEY if user == event.on_call else event.key
            for channel in contact.channels(event.event):
                address = contact.address(channel)
                if channel in channels and address and (user, channel, key) not in existing:
                    existing.add((user, channel, key))
                    rows.append({"event": event.event, "event_key": key[:128], "case_id": facts.case_id,
                                 "site_id": facts.site_id, "urgency": facts.urgency, "recipient": user,
                                 "channel": channel, "address": address, "status": "pending", "attempts": 0,
                                 "next_attempt_at": now, "last_error": None, "created_at": now, "sent_at": None})
    if rows:
        session.execute(insert(_OUTBOX), rows)
    return len(rows)


def remind_unhandled(ctx: EngineContext, every: timedelta, channels: Sequence[str] = CHANNELS) -> int:
    """Again to the same people when nobody was told for `every`: each running case with a "no radiologist left"
    notice that nobody has handled yet (CH-3.3, CH-5.5). The diagram renews its own alert (a new notice, told by the
    save hook), so this only speaks when it has not. Returns how many rows were written."""
    now = ctx.clock.now()
    written = 0
    with ctx.write() as session:
        query = (select(CaseNotice.id, CaseNotice.instance_id, CaseNotice.audience, CaseNotice.site_id,
                        ProcessInstance.urgency)
                 .join(ProcessInstance, ProcessInstance.id == CaseNotice.instance_id)
                 .where(CaseNotice.kind == "no_radiologist", CaseNotice.resolved_at.is_(None),
                        ProcessInstance.status == "running", CaseNotice.created_at <= now - every)
                 .order_by(CaseNotice.id.desc()).limit(200))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(of=table_of(CaseNotice), skip_locked=True)
        latest: dict[int, Any] = {}
        for notice in session.execute(query).all():
            latest.setdefault(notice.instance_id, notice)
        for case_id, notice in sorted(latest.items()):
            last = session.execute(select(func.max(_OUTBOX.c.created_at)).where(
                _OUTBOX.c.case_id == case_id, _OUTBOX.c.event == NO_RADIOLOGIST)).scalar_one()
            if last is not None and last > now - every:
                continue
            facts = CaseFacts(case_id, notice.site_id, notice.urgency)
            people = audience_of(session, notice.audience, notice.site_id)
            on_duty = on_call_of(ctx, notice.site_id)
            people = sorted(dict.fromkeys([*people, *([on_duty] if on_duty else [])]), key=lambda u: u != on_duty)
            key = f"notice:{notice.id}:reminder:{now.strftime('%Y%m%dT%H%M%S')}"
            written += write_rows(session, facts, [Event(NO_RADIOLOGIST, key, tuple(people), on_duty)], channels, now)
        session.commit()
    return written


def install(ctx: EngineContext, channels: Sequence[str] = CHANNELS) -> None:
    """Register the notification hook on a context (idempotent): every process that saves cases needs it."""
    if not any(isinstance(hook, NotificationHook) for hook in ctx.save_hooks):
        ctx.save_hooks.append(NotificationHook(ctx, channels))
