"""What changed for the inboxes since the last look, read from the audit log: every change to a case (a new case,
a claim, a completed step, an escalation, a notice) writes audit events in the transaction of the change, with
an increasing id. One `ChangeFeed` per web process is polled by one loop (web/clinical/live.py) and fans out to
that process's live connections, so the database cost does not grow with the number of connected people: one
indexed range read per poll, and, when something changed, one read of who the changed cases concern.

Ids are handed out at insert, not at commit: on PostgreSQL two cases saved at once may commit in the other
order. The feed therefore re-reads the ids of the last `window` seconds at each poll and remembers those it has
already seen, so an event committed late is still reported (once).
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select

from engine.domain.actors import Actor
from engine.services.context import EngineContext
from engine.store.models import AuditEvent, CaseNotice, ProcessInstance, Task, TaskCandidate, table_of

# Reading a case or a task changes nobody's list.
QUIET_ACTIONS = frozenset({"task.viewed", "case.viewed", "attachment.read"})
MAX_EVENTS_PER_POLL = 2000
_EVENT = table_of(AuditEvent)
_INSTANCE = table_of(ProcessInstance)
_TASK = table_of(Task)
_CANDIDATE = table_of(TaskCandidate)
_NOTICE = table_of(CaseNotice)


@dataclass(frozen=True)
class CaseChange:
    """A case changed: who it concerns (its site's members, people it was offered or assigned to, a notice's
    audience). Carries no clinical content."""

    case_id: int
    site_id: str | None
    users: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()

    def concerns(self, actor: Actor) -> bool:
        return (self.site_id is None or self.site_id in actor.sites or actor.user_id in self.users
                or bool(self.roles & actor.roles))


@dataclass
class ChangeFeed:
    ctx: EngineContext
    window: float = 10.0
    monotonic: Callable[[], float] = time.monotonic
    _floor: int | None = None
    _seen: set[int] = field(default_factory=set)
    _marks: deque[tuple[float, int]] = field(default_factory=deque)
    statements: int = 0  # read by the live-updates measurement

    def poll(self) -> list[CaseChange]:
        """The cases changed since the previous poll (none at the first: it only sets the starting point)."""
        if self._floor is None:
            with self.ctx.read() as session:
                self._floor = int(session.execute(select(func.max(_EVENT.c.id))).scalar() or 0)
            self.statements += 1
            self._marks.append((self.monotonic(), self._floor))
            return []
        with self.ctx.read() as session:
            rows = session.execute(select(_EVENT.c.id, _EVENT.c.instance_id, _EVENT.c.action)
                                   .where(_EVENT.c.id > self._floor).order_by(_EVENT.c.id)
                                   .limit(MAX_EVENTS_PER_POLL)).all()
        self.statements += 1
        fresh = [row for row in rows if row.id not in self._seen]
        self._seen.update(row.id for row in fresh)
        self._advance(max((row.id for row in rows), default=self._floor))
        cases = {row.instance_id for row in fresh if row.instance_id is not None and row.action not in QUIET_ACTIONS}
        return self._describe(cases) if cases else []

    def _advance(self, newest: int) -> None:
        """Ids older than the window are never re-read: the floor moves to the newest id seen `window` s ago."""
        now = self.monotonic()
        self._marks.append((now, newest))
        floor = self._floor or 0
        while self._marks and now - self._marks[0][0] >= self.window:
            floor = max(floor, self._marks.popleft()[1])
        self._floor = floor
        self._seen = {seen for seen in self._seen if seen > floor}

    def _describe(self, cases: set[int]) -> list[CaseChange]:
        ids = sorted(cases)
        with self.ctx.read() as session:
            sites: dict[int, str | None] = {row.id: row.site_id for row in session.execute(
                select(_INSTANCE.c.id, _INSTANCE.c.site_id).where(_INSTANCE.c.id.in_(ids)))}
            people = session.execute(
                select(_TASK.c.instance_id, _TASK.c.assignee, _TASK.c.ended_by, _CANDIDATE.c.user_id)
                .outerjoin(_CANDIDATE, _CANDIDATE.c.task_id == _TASK.c.id)
                .where(_TASK.c.instance_id.in_(ids))).all()
            notices = session.execute(select(_NOTICE.c.instance_id, _NOTICE.c.audience)
                                      .where(_NOTICE.c.instance_id.in_(ids))).all()
        self.statements += 3
        users: dict[int, set[str]] = {case_id: set() for case_id in ids}
        roles: dict[int, set[str]] = {case_id: set() for case_id in ids}
        for row in people:
            users[row.instance_id].update(u for u in (row.assignee, row.ended_by, row.user_id) if u)
        for row in notices:
            audience = _audience(row.audience)
            users[row.instance_id].update(audience.get("users", ()))
            roles[row.instance_id].update(audience.get("roles", ()))
        return [CaseChange(case_id, sites.get(case_id), frozenset(users[case_id]), frozenset(roles[case_id]))
                for case_id in ids if case_id in sites]


def _audience(text: str | None) -> dict[str, list[str]]:
    try:
        decoded = json.loads(text or "{}")
    except ValueError:
        return {}
    if not isinstance(decoded, dict):
        return {}
    return {key: [str(v) for v in decoded.get(key, []) if isinstance(v, str)] for key in ("users", "roles")}
