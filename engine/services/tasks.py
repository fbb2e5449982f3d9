"""User tasks: list, claim, unclaim, complete."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, exists, or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from engine.domain.actors import Actor, may_complete_task, may_see_task
from engine.errors import CharterRefused, Conflict, Forbidden, NotFound
from engine.runtime import using_clock
from engine.services.charter_gates import check_radiologist_step
from engine.services.context import EngineContext
from engine.services.persistence import (
    InstanceRow,
    append_case_events,
    case_of_task_row,
    is_offered,
    load_workflow,
    lock_instance,
    lock_task_and_case,
    prepare_save,
    read_task,
    rechain,
    write_save,
)
from engine.services.reassignment import replace_radiologist
from engine.services.refusals import record_refusal
from engine.services.report_visibility import facts_of, redact_report
from engine.services.task_checks import as_refusals, check_engine_owned, task_data_problems
from engine.store import audit
from engine.store.driver import DriverQuery, Source
from engine.store.models import ProcessInstance, Task, TaskCandidate, table_of
from forms import FormValidationError

LOG = logging.getLogger(__name__)

_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_TASK = table_of(Task)


@dataclass(frozen=True)
class TaskView:
    id: str
    instance_id: int
    spec_name: str
    title: str
    lane: str | None
    form_key: str | None
    site_id: str | None
    assignee: str | None
    urgency: int
    due_at: datetime | None
    created_at: datetime
    patient_name: str | None = None
    case_summary: str | None = None
    process_id: str | None = None
    patient_birth_date: str | None = None
    patient_ref: str | None = None
    case_version: int | None = None


def _view(row: Any, **changes: Any) -> TaskView:
    values: dict[str, Any] = {name: getattr(row, name, None) for name in TaskView.__dataclass_fields__}
    values.update(changes)
    return TaskView(**values)


_CANDIDATE = table_of(TaskCandidate)
_INSTANCE = table_of(ProcessInstance)
# The inbox query, built once (its cache key too); the actor's roles and sites are expanding parameters.
_INBOX = (
    select(_TASK, _INSTANCE.c.patient_name, _INSTANCE.c.summary.label("case_summary"), _INSTANCE.c.process_id,
           _INSTANCE.c.patient_birth_date, _INSTANCE.c.patient_ref, _INSTANCE.c.version.label("case_version"))
    .join(_INSTANCE, _INSTANCE.c.id == _TASK.c.instance_id)
    .where(_TASK.c.status == "open", or_(
        _TASK.c.assignee == bindparam("user"),
        and_(_TASK.c.assignee.is_(None),
             or_(_TASK.c.lane.is_(None), _TASK.c.lane.in_(bindparam("roles", expanding=True))),
             or_(and_(~_TASK.c.restricted,
                      or_(_TASK.c.site_id.is_(None), _TASK.c.site_id.in_(bindparam("sites", expanding=True)))),
                 and_(_TASK.c.restricted, exists().where(_CANDIDATE.c.task_id == _TASK.c.id,
                                                         _CANDIDATE.c.user_id == bindparam("user")))))))
    .order_by(_TASK.c.urgency, _TASK.c.due_at.is_(None), _TASK.c.due_at, _TASK.c.created_at)
    .limit(bindparam("limit"))
)
_INBOX_ON_DRIVER = DriverQuery(_INBOX)


def list_tasks(ctx: EngineContext, actor: Actor, limit: int = 200) -> list[TaskView]:
    """Open tasks this actor holds or may claim, most urgent first, then by due time and age."""
    with ctx.driver_read() as reader:
        rows = _INBOX_ON_DRIVER.all(reader, {
            "user": actor.user_id, "roles": sorted(actor.roles) or [""], "sites": sorted(actor.sites) or [""],
            "limit": limit})
    return [_view(r) for r in rows]


def get_task(ctx: EngineContext, actor: Actor, task_id: str) -> TaskView:
    with ctx.read() as session:
        return _view(_check_open(session, actor, read_task(session, task_id)))


def task_data(ctx: EngineContext, actor: Actor, task_id: str) -> dict[str, Any]:
    """The data a task's form is pre-filled with."""
    return task_with_data(ctx, actor, task_id)[1]


def task_with_data(ctx: EngineContext, actor: Actor, task_id: str) -> tuple[TaskView, dict[str, Any]]:
    """A task and the data its form is pre-filled with, read together (one check, one read of the task).

    The read is traced on the case's audit chain like a case view (CH-5.3): task data holds the patient's
    identity and, for some steps, the report."""
    with ctx.driver_read() as reader:
        row = _check_open(reader, actor, read_task(reader, task_id))
        instance = case_of_task_row(row)
        cached = load_workflow(ctx, reader, instance)
        # A poor-prognosis report is read only by its radiologist and the requester until the announcement plan
        # is confirmed (CH-4.1.13), in task data as on the case page.
        data = redact_report(actor, cached.live.task_data(task_id), facts_of(cached.live))
    with ctx.write() as session:
        locked = lock_instance(session, instance.id)
        append_case_events(session, locked, [audit.AuditEntry(actor.user_id, "task.viewed", instance.id,
                                                              {"task_id": task_id, "task": row.spec_name,
                                                               "title": row.title})],
                           ctx.clock.now())
        session.commit()
    ctx.live_cache.put(instance.id, cached)
    return _view(row), data


def _offered(session: Source, row: Any, actor: Actor) -> bool | None:
    if not row.restricted:
        return None
    return is_offered(session, row.id, actor.user_id)


def _check_open(session: Source, actor: Actor, row: Any) -> Any:
    """The task if this actor may see it and it is still open; NotFound hides other people's tasks."""
    if row is None or not may_see_task(actor, row.lane, row.site_id, row.assignee if row.status == "open" else None,
                                       _offered(session, row, actor)):
        raise NotFound("tâche introuvable")
    if row.status != "open":
        who = f" par {row.ended_by}" if row.ended_by else ""
        state = "déjà terminée" if row.status == "completed" else "annulée"
        raise Conflict(f"Cette tâche a été {state}{who}.")
    if row.assignee is not None and row.assignee != actor.user_id:
        # A colleague's task: say who has it, show nothing of its data.
        raise Conflict(f"Cette tâche a été prise par {row.assignee}.")
    return row


def _locked_open_task(session: Session, actor: Actor, task_id: str) -> tuple[Any, InstanceRow]:
    found = lock_task_and_case(session, task_id)
    row = _check_open(session, actor, found[0] if found else None)
    assert found is not None
    return row, found[1]


def claim_task(ctx: EngineContext, actor: Actor, task_id: str) -> TaskView:
    with ctx.write() as session:
        row, instance = _locked_open_task(session, actor, task_id)
        if row.assignee == actor.user_id:
            return _view(row)
        session.connection().execute(_TASK.update().where(_TASK.c.id == task_id).values(assignee=actor.user_id))
        append_case_events(session, instance, [audit.AuditEntry(actor.user_id, "task.claimed", instance.id,
                                                                {"task_id": task_id, "task": row.spec_name})],
                           ctx.clock.now())
        session.commit()
        return _view(row, assignee=actor.user_id)


def unclaim_task(ctx: EngineContext, actor: Actor, task_id: str) -> TaskView:
    with ctx.write() as session:
        row, instance = _locked_open_task(session, actor, task_id)
        if row.assignee != actor.user_id:
            raise Forbidden("Seule la personne qui a pris la tâche peut la libérer.")
        session.connection().execute(_TASK.update().where(_TASK.c.id == task_id).values(assignee=None))
        append_case_events(session, instance, [audit.AuditEntry(actor.user_id, "task.unclaimed", instance.id,
                                                                {"task_id": task_id, "task": row.spec_name})],
                           ctx.clock.now())
        session.commit()
        return _view(row, assignee=None)


_COMPLETE_ATTEMPTS = 3
# PostgreSQL: deadlock detected, serialization failure. Two savers of one case can deadlock on its task rows;
# the one PostgreSQL aborts is simply tried again.
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def complete_task(ctx: EngineContext, actor: Actor, task_id: str, data: dict[str, Any],
                  back_entry: dict[str, Any] | None = None) -> int:
    """Validate the form, run the task and every engine step after it, save everything atomically.

    Returns the instance id. Raises NotFound, Conflict (lost race, claimed by someone else) or
    FormValidationError; nothing is written unless everything succeeds. `back_entry` (a step handled by phone or
    on paper during an incident, entered afterwards: engine.services.incident_backentry) is kept in the step's
    ``task.completed`` event.

    Optimistic: the checks, the engine steps and the encoding of the new state run on a read of the task and
    its case; the write transaction then locks both and saves if the case's workflow is still at the version
    that was read (every change to a workflow, its tasks' status or offers moves it). If only the case's
    audit chain grew meanwhile (a view, a message, a claim), the locked task is checked again and the events
    are chained after the new head. Otherwise the work is thrown away and done again on a fresh read. The
    write lock (SQLite: one writer at a time) is so held for the statements alone, not for the engine.
    """
    _check_field_names(data)
    unready_at: int | None = None
    for _attempt in range(_COMPLETE_ATTEMPTS):
        with ctx.driver_read() as reader:
            row = _check_open(reader, actor, read_task(reader, task_id))
            _check_may_complete(reader, actor, row)
            check_engine_owned(ctx, row.form_key, data)
            if row.form_key:
                data = ctx.forms.validate(row.form_key, data)
            instance = case_of_task_row(row)
            cached = load_workflow(ctx, reader, instance)
        if not _ready_in(cached.live, task_id):
            if unready_at == instance.version:  # the same case twice: not a race but a task row out of step
                LOG.error("task %s reads open but case %s (version %s) has it done", task_id, instance.id,
                          instance.version)
                raise NotFound("Cette tâche n’est plus ouverte.")
            unready_at = instance.version
            continue  # another completion committed between the task's read and the case's: read both again
        _check_case_rules(ctx, actor, cached, task_id, row, data)
        try:
            with using_clock(ctx.clock):
                cached.live.complete_user_task(task_id, data, actor.user_id)
            prepared = _prepare_completion(ctx, instance, cached, actor, task_id, row, data, back_entry)
        except CharterRefused as refused:
            record_refusal(ctx, instance.id, actor, refused, row.spec_name)
            _replace_unfit_radiologist(ctx, instance.id, refused)
            raise
        try:
            with ctx.write() as session:
                found = lock_task_and_case(session, task_id)
                if found is None or found[1].version != instance.version:
                    continue  # the workflow changed since the read: the changed copy is dropped, not cached
                if found[1].audit_seq != instance.audit_seq:
                    _check_may_complete(session, actor, _check_open(session, actor, found[0]))
                    prepared = rechain(prepared, found[1])
                entry = write_save(ctx, session, prepared, actor, completed_task_id=task_id)
                session.commit()
        except Exception as err:  # noqa: BLE001 - only a retryable database error is kept from propagating
            if _sqlstate(err) not in _RETRYABLE_SQLSTATES:
                raise
            continue
        ctx.live_cache.put(instance.id, entry)
        return instance.id
    raise Conflict("Le dossier a été modifié plusieurs fois pendant l'enregistrement ; réessayez.")


def _ready_in(live: Any, task_id: str) -> bool:
    try:
        live.ready_user_task(task_id)
    except NotFound:
        return False
    return True


def _check_case_rules(ctx: EngineContext, actor: Actor, cached: Any, task_id: str, row: Any,
                      data: dict[str, Any]) -> None:
    """What only the case and the directory can tell: charter data checks and the form's own service checks
    (FormValidationError), and a radiologist's credentials for his steps (CharterRefused, traced)."""
    problems = task_data_problems(ctx, row.form_key, row.site_id, data, cached.live.latest_data())
    if problems:
        case_id = case_of_task_row(row).id
        ctx.live_cache.put(case_id, cached)
        record_refusal(ctx, case_id, actor, CharterRefused("", as_refusals(problems)), row.spec_name)
        raise FormValidationError(problems)
    try:
        check_radiologist_step(ctx, actor, cached.live.task_role(task_id), cached.live.latest_data(), row.site_id)
    except CharterRefused as refused:
        case_id = case_of_task_row(row).id
        ctx.live_cache.put(case_id, cached)
        record_refusal(ctx, case_id, actor, refused, row.spec_name)
        if cached.live.latest_data().get("radiologist_id") == actor.user_id:
            # He is the case's radiologist: the case is offered again to those who may take it (CH-3.1).
            replace_radiologist(ctx, Actor.system(), case_id, "; ".join(reason for _, reason in refused.refusals))
            raise CharterRefused(f"{refused} Le dossier a été proposé à nouveau aux radiologues éligibles.",
                                 refused.refusals) from refused
        raise


def _replace_unfit_radiologist(ctx: EngineContext, case_id: int, refused: CharterRefused) -> None:
    """A step refused because the case's radiologist no longer holds his authorization or insurance (checked before
    any exposure, CH-3.2) would leave the case waiting for him: it is offered again through routing."""
    from engine.services.charter_gates import radiologist_problems
    from engine.services.instances import case_data

    if not radiologist_problems(ctx, case_data(ctx, case_id)):
        return
    replace_radiologist(ctx, Actor.system(), case_id, "; ".join(reason for _, reason in refused.refusals))
    raise CharterRefused(f"{refused} Le dossier a été proposé à nouveau aux radiologues éligibles.",
                         refused.refusals) from refused


def _prepare_completion(ctx: EngineContext, instance: InstanceRow, cached: Any, actor: Actor, task_id: str,
                        row: Any, data: dict[str, Any], back_entry: dict[str, Any] | None = None) -> Any:
    detail: dict[str, Any] = {"task_id": task_id, "task": row.spec_name, "title": row.title, "fields": sorted(data)}
    if back_entry:
        detail["back_entry"] = back_entry
    return prepare_save(ctx, instance, cached.live, cached.snapshot, actor, [
        audit.AuditEntry(actor.user_id, "task.completed", instance.id, detail)])


def _sqlstate(err: Exception) -> str | None:
    """The SQLSTATE of a database error: raised by psycopg itself on the driver's cursor (engine.store.driver),
    or wrapped by SQLAlchemy (DBAPIError.orig)."""
    origin = err.orig if isinstance(err, DBAPIError) else err
    state = getattr(origin, "sqlstate", None)
    return state if isinstance(state, str) else None


def _check_may_complete(session: Source, actor: Actor, row: Any) -> None:
    if not may_complete_task(actor, row.lane, row.site_id, row.assignee, _offered(session, row, actor)):
        raise Conflict(f"Cette tâche a été prise par {row.assignee}.")


def _check_field_names(data: Any) -> None:
    if not isinstance(data, dict):
        raise Forbidden("Les réponses d’une tâche forment un objet (champ : valeur).")
    bad = [k for k in data if not isinstance(k, str) or not _FIELD_NAME.fullmatch(k)]
    if bad:
        raise FormValidationError({str(k): "Nom de champ non autorisé." for k in bad})
