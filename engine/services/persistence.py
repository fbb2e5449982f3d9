"""Load a workflow for change, and save it back with its index rows and audit events, in one transaction.

This is the hot path of every task completion, so it speaks SQLAlchemy Core with prebuilt statements:
one locking read, one guarded update of the case row (version counter and audit head together), and
only the index rows that changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.domain.cases import case_summary
from engine.domain.urgency import rank
from engine.errors import Conflict, NotFound
from engine.runtime import Bundle, LiveWorkflow, Snapshot
from engine.services.charter_gates import check_save
from engine.services.context import CachedWorkflow, EngineContext
from engine.services.keyring import KeyRing
from engine.services.notices import NoticeChanges, notice_changes, write_notices
from engine.services.report_signature import signed_events
from engine.store import audit
from engine.store.driver import DriverQuery, DriverStatement, Source
from engine.store.models import (
    MessageSubscription,
    ProcessDefinition,
    ProcessInstance,
    Task,
    TaskCandidate,
    Timer,
    table_of,
)

# A session made by a context bound with engine.services.audit.bind_keys MACs its audit events with that context's
# ring; any other session with the ring of a context built without keys: the public development ring.
audit.set_fallback_keys(KeyRing.development())

_INSTANCE = table_of(ProcessInstance)
_TASK = table_of(Task)
_INSTANCE_COLUMNS = (_INSTANCE.c.id, _INSTANCE.c.definition_id, _INSTANCE.c.process_id, _INSTANCE.c.status,
                     _INSTANCE.c.site_id, _INSTANCE.c.version, _INSTANCE.c.audit_seq, _INSTANCE.c.audit_hash)
_LOCK_INSTANCE = select(*_INSTANCE_COLUMNS).where(_INSTANCE.c.id == bindparam("id")).with_for_update()
# The version is read with the state: on PostgreSQL (READ COMMITTED) the row a use case read before may be
# older than the state read here, and a cache entry must carry the version of its own state.
_STATE = DriverQuery(select(_INSTANCE.c.state, _INSTANCE.c.version).where(_INSTANCE.c.id == bindparam("id")))
_DEFINITION_SOURCE = DriverQuery(select(ProcessDefinition.source).where(ProcessDefinition.id == bindparam("id")))
_SAVE = DriverStatement(
    update(_INSTANCE).where(_INSTANCE.c.id == bindparam("b_id"), _INSTANCE.c.version == bindparam("b_version"),
                            _INSTANCE.c.audit_seq == bindparam("b_audit_seq"))
    .values(state=bindparam("state"), status=bindparam("status"), updated_at=bindparam("updated_at"),
            ended_at=bindparam("ended_at"), version=bindparam("new_version"),
            audit_seq=bindparam("audit_seq"), audit_hash=bindparam("audit_hash"),
            patient_name=bindparam("patient_name"), patient_birth_date=bindparam("patient_birth_date"),
            urgency=bindparam("urgency"), accession_number=bindparam("accession_number"),
            summary=bindparam("summary"), patient_ref=bindparam("patient_ref")))
_TASK_COLUMNS = ["id", "instance_id", "spec_name", "title", "lane", "form_key", "site_id", "status", "restricted",
                 "assignee", "urgency", "due_at", "created_at", "ended_at", "ended_by"]
_INSERT_TASK = DriverStatement(insert(_TASK), _TASK_COLUMNS)
_INSERT_CANDIDATE = DriverStatement(insert(table_of(TaskCandidate)), ["task_id", "user_id"])
_INSERT_TIMER = DriverStatement(insert(table_of(Timer)),
                                ["id", "instance_id", "spec_name", "expression", "setting", "armed_at", "due_at"])
_INSERT_SUBSCRIPTION = DriverStatement(insert(table_of(MessageSubscription)),
                                       ["id", "instance_id", "message_name", "correlation_key"])
_MOVE_DUE = DriverStatement(update(_TASK).where(_TASK.c.id == bindparam("b_id")).values(due_at=bindparam("due_at")))
_END_TASK = DriverStatement(
    update(_TASK).where(_TASK.c.id == bindparam("b_id"))
    .values(status=bindparam("status"), ended_at=bindparam("ended_at"), ended_by=bindparam("ended_by")))

@dataclass(frozen=True)
class InstanceRow:
    """What a use case needs of a case row (its state blob is read only on a cache miss)."""

    id: int
    definition_id: int
    process_id: str
    status: str
    site_id: str | None
    version: int
    audit_seq: int
    audit_hash: str

    @property
    def audit_head(self) -> audit.ChainHead:
        return audit.ChainHead(self.audit_seq, self.audit_hash)


def instance_row(row: object) -> InstanceRow:
    return InstanceRow(*(getattr(row, c.name) for c in _INSTANCE_COLUMNS))


def bundle_of(ctx: EngineContext, session: Source, definition_id: int) -> Bundle:
    """Definitions are immutable, so their bundles are cached by id for the life of the context."""
    bundle = ctx.bundles.get(definition_id)
    if bundle is None:
        row = _DEFINITION_SOURCE.one_or_none(session, {"id": definition_id})
        if row is None:
            raise NotFound(f"definition {definition_id} not found")
        bundle = ctx.bundles.setdefault(definition_id, Bundle.from_json(row.source))
    return bundle


def lock_instance(session: Session, instance_id: int) -> InstanceRow:
    row = session.connection().execute(_LOCK_INSTANCE, {"id": instance_id}).one_or_none()
    if row is None:
        raise NotFound(f"case {instance_id} not found")
    return instance_row(row)


def load_workflow(ctx: EngineContext, session: Source, instance: InstanceRow) -> CachedWorkflow:
    cached = ctx.live_cache.take(instance.id, instance.version)
    if cached is not None:
        return cached
    row = _STATE.one_or_none(session, {"id": instance.id})
    if row is None:
        raise NotFound(f"case {instance.id} not found")
    live = ctx.runtime.load(row.state, bundle_of(ctx, session, instance.definition_id))
    return CachedWorkflow(row.version, live, live.snapshot())


@dataclass(frozen=True)
class PreparedSave:
    """Everything a save writes that can be computed before taking the write lock: the new state, the case
    columns and the audit rows, for an instance row as read (`write_save` refuses if it changed since)."""

    instance: InstanceRow
    live: LiveWorkflow
    before: Snapshot | None
    after: Snapshot
    columns: dict[str, Any]
    events: list[audit.AuditEntry]
    audit_rows: list[dict[str, Any]]
    saved: InstanceRow
    notices: NoticeChanges = NoticeChanges()
    audit_keys: audit.AuditKeys = field(default_factory=KeyRing.development)  # the ring that MACed audit_rows


def prepare_save(ctx: EngineContext, instance: InstanceRow, live: LiveWorkflow, before: Snapshot | None,
                 actor: Actor, events: Iterable[audit.AuditEntry], end_as: str | None = None,
                 state: str | None = None) -> PreparedSave:
    """`state`: the workflow already encoded by the caller (ctx.runtime.dump), if it was."""
    now = ctx.clock.now()
    after = live.snapshot()
    recorded = check_save(ctx, instance.process_id, live, before, after) if end_as is None else set()
    events = [*events, *signed_events(instance.id, live, recorded)]  # the signature on the case's own chain
    status, ended_at = instance.status, None
    if end_as is not None:
        status, ended_at = end_as, now
    elif after.completed and status == "running":
        status, ended_at = "completed", now
        events.append(audit.AuditEntry(actor.user_id, "instance.completed", instance.id))
    rows, head = audit.build_rows(instance.id, instance.audit_head, events, now, ctx.keys)
    columns = {
        "b_id": instance.id, "b_version": instance.version, "b_audit_seq": instance.audit_seq,
        "state": ctx.runtime.dump(live) if state is None else state, "status": status, "updated_at": now,
        "ended_at": ended_at,
        "new_version": instance.version + 1, "audit_seq": head.seq, "audit_hash": head.hash,
        **asdict(case_summary(live.latest_data())),
    }
    saved = replace(instance, status=status, version=instance.version + 1, audit_seq=head.seq, audit_hash=head.hash)
    notices = notice_changes(ctx, instance.site_id, live, before, after)
    if end_as is not None:
        notices = NoticeChanges(notices.new, ("report_overdue", "no_radiologist"))
    return PreparedSave(instance, live, before, after, columns, events, rows, saved, notices, ctx.keys)


def rechain(prepared: PreparedSave, locked: InstanceRow) -> PreparedSave:
    """The same save with its audit events chained after `locked`'s audit head: for a case whose chain grew
    (a view, a message, a claim) while its workflow stayed at the version the save was prepared from."""
    if locked.version != prepared.instance.version:
        raise ValueError("the workflow changed: prepare the save again")
    at = prepared.columns["updated_at"]
    rows, head = audit.build_rows(locked.id, locked.audit_head, prepared.events, at, prepared.audit_keys)
    columns = {**prepared.columns, "b_audit_seq": locked.audit_seq, "audit_seq": head.seq, "audit_hash": head.hash}
    saved = replace(prepared.saved, audit_seq=head.seq, audit_hash=head.hash)
    return replace(prepared, instance=locked, columns=columns, audit_rows=rows, saved=saved)


def write_save(ctx: EngineContext, session: Session, prepared: PreparedSave, actor: Actor,
               completed_task_id: str | None = None) -> CachedWorkflow:
    """Write a prepared save; raise Conflict if the case was saved, or its audit chain extended, meanwhile."""
    if _SAVE.execute(session, [prepared.columns]) != 1:
        raise Conflict("Le dossier a été modifié en même temps ; rechargez la page.")
    saved = prepared.saved
    sync_index(session, saved, prepared.before, prepared.after, prepared.columns["updated_at"], actor,
               completed_task_id)
    audit.insert_rows(session, prepared.audit_rows)
    if prepared.notices:
        write_notices(session, saved.id, prepared.notices, prepared.columns["updated_at"])
    if ctx.save_hooks:
        for hook in ctx.save_hooks:
            hook(session, saved, prepared.live.latest_data())
    return CachedWorkflow(saved.version, prepared.live, prepared.after)


def save_workflow(ctx: EngineContext, session: Session, instance: InstanceRow, live: LiveWorkflow,
                  before: Snapshot | None, actor: Actor, events: Iterable[audit.AuditEntry],
                  completed_task_id: str | None = None, end_as: str | None = None) -> CachedWorkflow:
    """Write state, index rows and audit events; raise Conflict if someone saved this case meanwhile.
    `end_as` ends the case with that status (e.g. "cancelled") whatever the workflow says."""
    prepared = prepare_save(ctx, instance, live, before, actor, events, end_as)
    return write_save(ctx, session, prepared, actor, completed_task_id)


def sync_index(session: Session, instance: InstanceRow, before: Snapshot | None, after: Snapshot,
               now: datetime, actor: Actor, completed_task_id: str | None) -> None:
    old_tasks = {t.task_id for t in before.user_tasks} if before else set()
    new_tasks = {t.task_id: t for t in after.user_tasks}
    ended = old_tasks - new_tasks.keys()
    if ended:
        _END_TASK.execute(session, [
            {"b_id": task_id, "status": "completed" if task_id == completed_task_id else "cancelled",
             "ended_at": now, "ended_by": actor.user_id} for task_id in ended
        ])
    added = [t for task_id, t in new_tasks.items() if task_id not in old_tasks]
    if added:
        _INSERT_TASK.execute(session, [
            {"id": t.task_id, "instance_id": instance.id, "spec_name": t.spec_name, "title": t.title[:256],
             "lane": t.lane, "form_key": t.form_key, "site_id": instance.site_id, "status": "open",
             "restricted": t.candidates is not None, "assignee": t.assignee, "urgency": rank(t.urgency),
             "due_at": t.due_at, "created_at": now, "ended_at": None, "ended_by": None}
            for t in added
        ])
        offers = [{"task_id": t.task_id, "user_id": user} for t in added for user in sorted(set(t.candidates or ()))]
        _INSERT_CANDIDATE.execute(session, offers)
    if before is not None:
        old_due = {t.task_id: t.due_at for t in before.user_tasks}
        moved = [{"b_id": t.task_id, "due_at": t.due_at} for t in after.user_tasks
                 if t.task_id in old_due and old_due[t.task_id] != t.due_at]
        _MOVE_DUE.execute(session, moved)
    _sync_timers(session, instance.id, before, after, now)
    _sync_subscriptions(session, instance.id, before, after)


def _sync_timers(session: Session, instance_id: int, before: Snapshot | None, after: Snapshot,
                 now: datetime) -> None:
    old = {(t.task_id, t.due_at) for t in before.timers} if before else set()
    new = {(t.task_id, t.due_at): t for t in after.timers}
    gone = {task_id for task_id, _ in old - new.keys()}
    armed: dict[str, datetime] = {}
    if gone:
        # A timer re-armed by an administrator keeps the moment it was first armed.
        armed = {row.id: row.armed_at for row in session.connection().execute(
            select(Timer.id, Timer.armed_at).where(Timer.id.in_(gone)))}
        session.connection().execute(delete(Timer).where(Timer.id.in_(gone)))
    added = [t for key, t in new.items() if key not in old]
    if added:
        _INSERT_TIMER.execute(session, [
            {"id": t.task_id, "instance_id": instance_id, "spec_name": t.spec_name, "expression": t.expression,
             "setting": t.setting, "armed_at": armed.get(t.task_id, now), "due_at": t.due_at} for t in added
        ])


def _sync_subscriptions(session: Session, instance_id: int, before: Snapshot | None, after: Snapshot) -> None:
    old = {(s.task_id, s.message_name, s.correlation_key) for s in before.subscriptions} if before else set()
    new = {(s.task_id, s.message_name, s.correlation_key) for s in after.subscriptions}
    gone = {task_id for task_id, _, _ in old - new}
    if gone:
        session.connection().execute(delete(MessageSubscription).where(MessageSubscription.id.in_(gone)))
    added = new - old
    if added:
        _INSERT_SUBSCRIPTION.execute(session, [
            {"id": task_id, "instance_id": instance_id, "message_name": name, "correlation_key": key}
            for task_id, name, key in sorted(added)
        ])


def append_case_events(session: Session, instance: InstanceRow, events: Iterable[audit.AuditEntry], at: datetime,
                       **changes: object) -> InstanceRow:
    """Record events in a locked case's chain (and optional column changes) without touching its state."""
    rows, head = audit.build_rows(instance.id, instance.audit_head, events, at, audit.keys_of(session))
    session.connection().execute(update(_INSTANCE).where(_INSTANCE.c.id == instance.id)
                    .values(audit_seq=head.seq, audit_hash=head.hash, **changes))
    audit.insert_rows(session, rows)
    return replace(instance, audit_seq=head.seq, audit_hash=head.hash)


_TASK_AND_INSTANCE = (
    select(_TASK, *(c.label(f"case_{c.name}") for c in _INSTANCE_COLUMNS), _INSTANCE.c.patient_name,
           _INSTANCE.c.summary.label("case_summary"))
    .join(_INSTANCE, _INSTANCE.c.id == _TASK.c.instance_id)
    .where(_TASK.c.id == bindparam("task_id"))
)
_TASK_AND_INSTANCE_LOCKED = DriverQuery(_TASK_AND_INSTANCE.with_for_update())
_TASK_AND_INSTANCE_ON_DRIVER = DriverQuery(_TASK_AND_INSTANCE)
_OFFERED = DriverQuery(select(TaskCandidate.task_id).where(TaskCandidate.task_id == bindparam("task_id"),
                                                           TaskCandidate.user_id == bindparam("user_id")))


def lock_task_and_case(session: Session, task_id: str) -> tuple[object, InstanceRow] | None:
    """One locking read of a task and its case (PostgreSQL re-reads both after waiting for a lock)."""
    row = _TASK_AND_INSTANCE_LOCKED.one_or_none(session, {"task_id": task_id})
    if row is None:
        return None
    return row, case_of_task_row(row)


def case_of_task_row(row: object) -> InstanceRow:
    """The case columns (`case_*`) of a row read by read_task or lock_task_and_case."""
    return InstanceRow(*(getattr(row, f"case_{c.name}") for c in _INSTANCE_COLUMNS))


def read_task(session: Source, task_id: str) -> object | None:
    return _TASK_AND_INSTANCE_ON_DRIVER.one_or_none(session, {"task_id": task_id})


def is_offered(session: Source, task_id: str, user_id: str) -> bool:
    """Whether a restricted task is offered to this user (task_candidate row)."""
    return _OFFERED.one_or_none(session, {"task_id": task_id, "user_id": user_id}) is not None
