"""Read-only queries on the waiting timers, for the administrators' escalation pages.

The ``timer`` table holds only waiting timers (a fired or cancelled one is deleted with the state change), so
every row here is a delay still running; the patient's name comes from the case row, and only for an actor who
may see the case (CH-5.3: an administrator of no site sees the case number and its site, not the patient).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from engine.domain.actors import Actor
from engine.services.case_visibility import may_see_case_column
from engine.services.context import EngineContext
from engine.store.models import ProcessInstance, Timer

MAX_PAGE = 500


@dataclass(frozen=True)
class WaitingTimer:
    id: str
    case_id: int
    site_id: str | None
    patient_visible: bool  # the actor may see the case; when not, patient_name is None
    patient_name: str | None
    spec_name: str  # the diagram's timer element
    setting: str | None  # the escalation setting its delay came from, if any
    armed_at: datetime
    due_at: datetime


@dataclass(frozen=True)
class TimerPage:
    timers: list[WaitingTimer]
    total: int  # rows matching the filters, all pages together
    limit: int
    offset: int


def waiting_timers(ctx: EngineContext, actor: Actor, setting: str | None = None, case_id: int | None = None,
                   due_before: datetime | None = None, overdue_at: datetime | None = None,
                   limit: int = 50, offset: int = 0) -> TimerPage:
    """Waiting timers, soonest due first, filtered by setting, case, due strictly before `due_before`, and
    (with `overdue_at`, usually "now") only those already due at that moment. Two statements whatever the page:
    whether `actor` may see each case is a column of the page's query."""
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, offset)
    conditions: list[Any] = []
    if setting:
        conditions.append(Timer.setting == setting)
    if case_id is not None:
        conditions.append(Timer.instance_id == case_id)
    if due_before is not None:
        conditions.append(Timer.due_at < due_before)
    if overdue_at is not None:
        conditions.append(Timer.due_at <= overdue_at)
    visible = may_see_case_column(actor, ProcessInstance.id)
    query = (select(Timer.id, Timer.instance_id, ProcessInstance.site_id, visible.label("visible"),
                    ProcessInstance.patient_name, Timer.spec_name, Timer.setting, Timer.armed_at, Timer.due_at)
             .join(ProcessInstance, ProcessInstance.id == Timer.instance_id)
             .where(*conditions))
    with ctx.read() as session:
        total = session.execute(select(func.count()).select_from(Timer).join(
            ProcessInstance, ProcessInstance.id == Timer.instance_id).where(*conditions)).scalar_one()
        rows = session.execute(query.order_by(Timer.due_at, Timer.instance_id, Timer.id)
                               .limit(limit).offset(offset)).all()
    return TimerPage([_timer(row) for row in rows], int(total), limit, offset)


def _timer(row: Any) -> WaitingTimer:
    visible = bool(row.visible)
    return WaitingTimer(row.id, row.instance_id, row.site_id, visible, row.patient_name if visible else None,
                        row.spec_name, row.setting, row.armed_at, row.due_at)
