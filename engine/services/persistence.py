"""Load a workflow for change, and save it back with its index rows and audit events, in one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.domain.urgency import rank
from engine.errors import NotFound
from engine.runtime import Bundle, LiveWorkflow, Snapshot
from engine.services.context import CachedWorkflow, EngineContext
from engine.store import audit
from engine.store.models import (
    MessageSubscription,
    ProcessDefinition,
    ProcessInstance,
    Task,
    TaskCandidate,
    Timer,
)

_bundles: dict[int, Bundle] = {}


def bundle_of(session: Session, definition_id: int) -> Bundle:
    """Definitions are immutable, so their bundles are cached by id for the life of the process."""
    bundle = _bundles.get(definition_id)
    if bundle is None:
        source = session.execute(
            select(ProcessDefinition.source).where(ProcessDefinition.id == definition_id)
        ).scalar_one()
        bundle = _bundles.setdefault(definition_id, Bundle.from_json(source))
    return bundle


def lock_instance(session: Session, instance_id: int) -> ProcessInstance:
    instance = session.execute(
        select(ProcessInstance).where(ProcessInstance.id == instance_id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if instance is None:
        raise NotFound(f"case {instance_id} not found")
    return instance


def load_workflow(ctx: EngineContext, session: Session, instance: ProcessInstance) -> CachedWorkflow:
    cached = ctx.live_cache.take(instance.id, instance.version)
    if cached is not None:
        return cached
    live = ctx.runtime.load(instance.state, bundle_of(session, instance.definition_id))
    return CachedWorkflow(instance.version, live, live.snapshot())


def save_workflow(ctx: EngineContext, session: Session, instance: ProcessInstance, live: LiveWorkflow,
                  before: Snapshot | None, actor: Actor, events: Iterable[audit.AuditEntry],
                  completed_task_id: str | None = None) -> CachedWorkflow:
    now = ctx.clock.now()
    after = live.snapshot()
    instance.state = ctx.runtime.dump(live)
    instance.updated_at = now
    events = list(events)
    if after.completed and instance.status == "running":
        instance.status = "completed"
        instance.ended_at = now
        events.append(audit.AuditEntry(actor.user_id, "instance.completed", instance.id))
    session.flush()  # assigns the id of a new instance and bumps the version counter
    sync_index(session, instance, before, after, now, actor, completed_task_id)
    audit.append(session, events, now)
    return CachedWorkflow(instance.version, live, after)


def sync_index(session: Session, instance: ProcessInstance, before: Snapshot | None, after: Snapshot,
               now: datetime, actor: Actor, completed_task_id: str | None) -> None:
    old_tasks = {t.task_id for t in before.user_tasks} if before else set()
    new_tasks = {t.task_id: t for t in after.user_tasks}
    ended = old_tasks - new_tasks.keys()
    if completed_task_id in ended:
        session.execute(update(Task).where(Task.id == completed_task_id)
                        .values(status="completed", ended_at=now, ended_by=actor.user_id))
        ended.discard(completed_task_id)
    if ended:
        session.execute(update(Task).where(Task.id.in_(ended))
                        .values(status="cancelled", ended_at=now, ended_by=actor.user_id))
    added = [t for task_id, t in new_tasks.items() if task_id not in old_tasks]
    if added:
        session.execute(insert(Task), [
            {"id": t.task_id, "instance_id": instance.id, "spec_name": t.spec_name, "title": t.title[:256],
             "lane": t.lane, "form_key": t.form_key, "site_id": instance.site_id, "status": "open",
             "restricted": t.candidates is not None, "assignee": t.assignee, "urgency": rank(t.urgency),
             "due_at": None, "created_at": now}
            for t in added
        ])
        offers = [{"task_id": t.task_id, "user_id": user} for t in added for user in set(t.candidates or ())]
        if offers:
            session.execute(insert(TaskCandidate), offers)
    _sync_timers(session, instance.id, before, after, now)
    _sync_subscriptions(session, instance.id, before, after)


def _sync_timers(session: Session, instance_id: int, before: Snapshot | None, after: Snapshot,
                 now: datetime) -> None:
    old = {(t.task_id, t.due_at) for t in before.timers} if before else set()
    new = {(t.task_id, t.due_at): t for t in after.timers}
    gone = {task_id for task_id, _ in old - new.keys()}
    if gone:
        session.execute(delete(Timer).where(Timer.id.in_(gone)))
    added = [t for key, t in new.items() if key not in old]
    if added:
        session.execute(insert(Timer), [
            {"id": t.task_id, "instance_id": instance_id, "spec_name": t.spec_name, "expression": t.expression,
             "armed_at": now, "due_at": t.due_at} for t in added
        ])


def _sync_subscriptions(session: Session, instance_id: int, before: Snapshot | None, after: Snapshot) -> None:
    old = {(s.task_id, s.message_name, s.correlation_key) for s in before.subscriptions} if before else set()
    new = {(s.task_id, s.message_name, s.correlation_key) for s in after.subscriptions}
    gone = {task_id for task_id, _, _ in old - new}
    if gone:
        session.execute(delete(MessageSubscription).where(MessageSubscription.id.in_(gone)))
    added = new - old
    if added:
        session.execute(insert(MessageSubscription), [
            {"id": task_id, "instance_id": instance_id, "message_name": name, "correlation_key": key}
            for task_id, name, key in added
        ])
