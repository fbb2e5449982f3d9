"""Which cases an actor may see, as SQL that a query of many cases' rows selects on: the rule of
``engine.domain.cases.may_see_case`` (members of the case's site, and the people routing involved in it), for the
administrators' pages that list rows of many cases (waiting timers, HL7 log) and must show a patient only to those
who may see the case, in one statement whatever the number of rows (CH-5.3, CH-8.1).

Being an administrator grants nothing here: an administrator sees a case's patient as anyone else does, through
the case's site or his part in it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import CompoundSelect, select, union

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.store.models import ProcessInstance, Task, TaskCandidate, table_of


def visible_case_ids(actor: Actor) -> CompoundSelect:
    """The ids of the cases the actor may see, from indexed look-ups (the actor's sites, assignee, actor of a
    step, offered a task): a union, because an OR of correlated EXISTS made SQLite scan every case (343 ms for a
    requester's case list among 100,000 cases, benchmarks/worklist.py) and an OR with an IN made PostgreSQL do the
    same. The case lists (engine.services.cases) and the administrators' pages use this one rule."""
    task = table_of(Task)
    candidate = table_of(TaskCandidate)
    instance = table_of(ProcessInstance)
    return union(
        select(instance.c.id).where(instance.c.site_id.in_(actor.sites or {""})),
        select(task.c.instance_id).where(task.c.assignee == actor.user_id),
        select(task.c.instance_id).where(task.c.ended_by == actor.user_id),
        select(task.c.instance_id).join(candidate, candidate.c.task_id == task.c.id)
        .where(candidate.c.user_id == actor.user_id))


@enforces("CH-5.3", "CH-8.1")
def may_see_case_column(actor: Actor, case_id: Any) -> Any:
    """A boolean SQL expression per row: the actor may see the case whose id is in the column ``case_id`` (NULL,
    read as no, for a row without a case). The system itself sees every case."""
    if actor.is_system:
        return case_id.is_not(None)
    return case_id.in_(visible_case_ids(actor))
