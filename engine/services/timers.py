"""Fire the timers that are due. Only instances with a due row in the timer table are loaded."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select

from engine.domain.actors import Actor
from engine.runtime import WorkflowFailed, using_clock
from engine.services.context import EngineContext
from engine.services.persistence import append_case_events, load_workflow, lock_instance, save_workflow
from engine.store import audit
from engine.store.db import is_postgres
from engine.store.models import Timer

log = logging.getLogger(__name__)


@dataclass
class FireReport:
    fired: int = 0
    instances: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def fire_due_timers(ctx: EngineContext, now: datetime | None = None, batch: int = 200) -> FireReport:
    """Fire every timer due at ``now``, one transaction per instance; safe to run in several workers."""
    now = now or ctx.clock.now()
    report = FireReport()
    with ctx.read() as session:
        # Ordered by due time so the query walks the due_at index only (an idle tick reads nothing).
        due = session.execute(
            select(Timer.instance_id).where(Timer.due_at < now).order_by(Timer.due_at).limit(batch * 4)
        ).scalars().all()
    candidates = list(dict.fromkeys(due))[:batch]
    for instance_id in candidates:
        try:
            fired = _fire_instance(ctx, instance_id, now)
        except WorkflowFailed as err:
            log.error("timer of case %s failed: %s", instance_id, err)
            report.failed[instance_id] = str(err)
            _mark_failed(ctx, instance_id, str(err))
            continue
        if fired:
            report.fired += fired
            report.instances.append(instance_id)
    return report


def _fire_instance(ctx: EngineContext, instance_id: int, now: datetime) -> int:
    system = Actor.system()
    with ctx.write() as session:
        query = select(Timer).where(Timer.instance_id == instance_id, Timer.due_at < now)
        if is_postgres(ctx.engine):
            query = query.with_for_update(skip_locked=True)  # another worker holds them: leave them
        due = session.execute(query).scalars().all()
        if not due:
            return 0
        instance = lock_instance(session, instance_id)
        cached = load_workflow(ctx, session, instance)
        with using_clock(_Frozen(now)):
            cached.live.fire_timers()
        due_ids = {t.id for t in due}
        still_waiting = {t.task_id for t in cached.live.snapshot().timers}
        fired = [t for t in due if t.id not in still_waiting]
        events = [audit.AuditEntry(system.user_id, "timer.fired", instance_id,
                                   {"timer": t.spec_name, "task_id": t.id, "due_at": t.due_at.isoformat(),
                                    "expression": t.expression, "setting": t.setting}) for t in fired]
        entry = save_workflow(ctx, session, instance, cached.live, cached.snapshot, system, events)
        session.commit()
    ctx.live_cache.put(instance_id, entry)
    if len(fired) < len(due_ids):
        log.debug("case %s: %d due timer(s) did not fire yet", instance_id, len(due_ids) - len(fired))
    return len(fired)


def _mark_failed(ctx: EngineContext, instance_id: int, message: str) -> None:
    with ctx.write() as session:
        instance = lock_instance(session, instance_id)
        session.execute(delete(Timer).where(Timer.instance_id == instance_id))
        append_case_events(session, instance,
                           [audit.AuditEntry("system", "instance.failed", instance_id, {"error": message[:500]})],
                           ctx.clock.now(), status="failed", error=message[:2000])
        session.commit()


class _Frozen:
    def __init__(self, moment: datetime):
        self._moment = moment

    def now(self) -> datetime:
        return self._moment
