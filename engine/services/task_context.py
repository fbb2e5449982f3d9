"""What earlier steps recorded that a task's decision needs, shown read-only above its form (issue 17).

Each form declares it in its schema (``x-context``, forms.registry): the fields of earlier forms, grouped by the
step that recorded them with who and when, and the directory phone of a person of the case (the requester to
call). Only what the actor may read of the case is shown: the task is one he may open (the task page's own
check) and the data are redacted like the task's (a poor-prognosis report awaiting its announcement, CH-4.1.13).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from engine.domain.actors import Actor
from engine.services.case_record import Completion, FieldReader, RecordedField, completions, last_writers, step_data
from engine.services.context import EngineContext
from engine.services.persistence import load_workflow, lock_instance
from engine.services.report_visibility import facts_of, redact_report
from engine.services.tasks import get_task
from engine.store.directory_models import NotificationContact, User
from engine.store.models import ProcessInstance
from forms.registry import UnknownForm, context_sources


@dataclass(frozen=True)
class ContextGroup:
    """Fields recorded by one earlier step (``title``, ``by_name``, ``at``), or, with ``contact`` set, the phone
    of a person of the case (``by_name`` is that person, ``fields`` holds the phone)."""

    title: str
    by_name: str | None
    at: datetime | None
    fields: tuple[RecordedField, ...]
    contact: bool = False


def task_context(ctx: EngineContext, actor: Actor, task_id: str) -> list[ContextGroup]:
    """The earlier records the task's form declares, for an actor who may open the task (NotFound, Conflict
    otherwise, as the task page); empty when the form declares none."""
    view = get_task(ctx, actor, task_id)
    try:
        sources = context_sources(ctx.forms.schema(view.form_key)) if view.form_key else []
    except UnknownForm:
        return []
    if not sources:
        return []
    with ctx.read() as session:
        instance = lock_instance(session, view.instance_id)
        cached = load_workflow(ctx, session, instance)
        started_by = session.execute(select(ProcessInstance.started_by)
                                     .where(ProcessInstance.id == view.instance_id)).scalar()
        facts = facts_of(cached.live)
        data = redact_report(actor, cached.live.case_data(), facts, started_by)
        steps = completions(session, view.instance_id)
        reader = FieldReader(ctx, session, data, steps, step_data(
            cached.live, steps, lambda recorded: redact_report(actor, recorded, facts, started_by)))
        groups = _groups(reader, steps, sources)
        groups.extend(_contacts(session, data, sources))
    ctx.live_cache.put(view.instance_id, cached)
    return groups


def _groups(reader: FieldReader, steps: list[Completion], sources: list[Any]) -> list[ContextGroup]:
    """The declared fields, grouped by the step that last recorded each, in the order the steps happened."""
    writers = last_writers(steps)
    wanted: dict[str, list[str]] = {}
    for source in sources:
        for name in source.fields:
            step = writers.get(name)
            if step is not None:  # whichever form recorded it last: the newest value, with its own title
                wanted.setdefault(step.task_id, []).append(name)
    groups: list[ContextGroup] = []
    for step in steps:
        names = wanted.pop(step.task_id, None)
        if not names:
            continue
        fields = reader.fields(step, dict.fromkeys(names))
        if fields:
            groups.append(ContextGroup(step.title, step.by_name, step.at, tuple(fields)))
    return groups


def _contacts(session: Any, data: dict[str, Any], sources: list[Any]) -> list[ContextGroup]:
    """The directory phone of each person a ``contact`` entry names (a case field holding a user name)."""
    people = [data.get(s.contact) for s in sources if s.contact]
    usernames = sorted({p for p in people if isinstance(p, str) and p})
    if not usernames:
        return []
    rows = session.execute(select(User.username, User.display_name, NotificationContact.phone)
                           .outerjoin(NotificationContact, NotificationContact.username == User.username)
                           .where(User.username.in_(usernames))).all()
    return [ContextGroup("", row.display_name, None, (RecordedField("phone", "", row.phone or ""),), contact=True)
            for row in rows]
