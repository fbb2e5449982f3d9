"""Move running cases from one version of a process to another, when safe (see engine.runtime.migration).

``plan_migration`` is the dry run: every running case of the old version with what blocks it, if anything.
``migrate_cases`` moves the cases asked for, one transaction per case: the case is locked and checked again
on its locked state, so a case that moved on since the dry run (or ended, or was migrated by someone else)
is reported with its blockers and left untouched. A migrated case keeps its task ids, data, claims and timer
due times; its index rows are re-synced, its open task rows take the new titles, and ``instance.migrated``
is recorded on its audit chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.errors import Conflict, Forbidden, NotFound
from engine.runtime import Snapshot
from engine.runtime.definitions import ParsedDefinition
from engine.runtime.migration import Blocker, MigrationBlocked, migrate_workflow, migration_blockers
from engine.services.context import EngineContext
from engine.services.persistence import bundle_of, load_workflow, lock_instance, save_workflow
from engine.store import audit
from engine.store.models import ProcessDefinition, ProcessInstance, Task, table_of

MIGRATION_ROLES = frozenset({"process_designer", "administrator"})
_INSTANCE = table_of(ProcessInstance)
_TASK = table_of(Task)


@dataclass(frozen=True)
class CaseMigration:
    """One case and the move asked for; ``blockers`` empty means safe (dry run) or done (migration)."""

    case_id: int
    version_from: int
    version_to: int
    blockers: tuple[Blocker, ...] = ()

    @property
    def safe(self) -> bool:
        return not self.blockers


@dataclass(frozen=True)
class _Versions:
    source_id: int
    target_id: int
    version_from: int
    version_to: int
    old: ParsedDefinition
    new: ParsedDefinition


def plan_migration(ctx: EngineContext, from_definition_id: int, to_definition_id: int) -> list[CaseMigration]:
    """Dry run: every running case of the first version, with what keeps it from moving to the second."""
    with ctx.read() as session:
        versions = _versions(ctx, session, from_definition_id, to_definition_id)
        rows = session.execute(
            select(_INSTANCE.c.id, _INSTANCE.c.state)
            .where(_INSTANCE.c.definition_id == from_definition_id, _INSTANCE.c.status == "running")
            .order_by(_INSTANCE.c.id)).all()
    return [_result(versions, row.id, migration_blockers(row.state, versions.old, versions.new, ctx.runtime))
            for row in rows]


def migrate_cases(ctx: EngineContext, actor: Actor, from_definition_id: int, to_definition_id: int,
                  case_ids: Sequence[int]) -> list[CaseMigration]:
    """Move the given cases, each in its own transaction; a case that may not move is reported, not changed."""
    if not actor.roles & MIGRATION_ROLES:
        raise Forbidden("Seuls les concepteurs de processus et les administrateurs peuvent migrer des dossiers.")
    with ctx.read() as session:
        versions = _versions(ctx, session, from_definition_id, to_definition_id)
    return [_migrate_case(ctx, actor, versions, case_id) for case_id in dict.fromkeys(case_ids)]


def _migrate_case(ctx: EngineContext, actor: Actor, versions: _Versions, case_id: int) -> CaseMigration:
    with ctx.write() as session:
        try:
            instance = lock_instance(session, case_id)
        except NotFound:
            return _result(versions, case_id, [Blocker("", f"Le dossier {case_id} n'existe pas.")])
        if instance.status != "running":
            return _result(versions, case_id, [Blocker("", f"Le dossier {case_id} n'est plus en cours.")])
        if instance.definition_id != versions.source_id:
            return _result(versions, case_id, [Blocker("", f"Le dossier {case_id} n'est pas sur la version "
                                                           f"{versions.version_from} de ce processus.")])
        cached = load_workflow(ctx, session, instance)
        state = session.execute(select(_INSTANCE.c.state).where(_INSTANCE.c.id == case_id)).scalar_one()
        try:
            live = migrate_workflow(state, versions.old, versions.new, ctx.runtime)
        except MigrationBlocked as blocked:
            ctx.live_cache.put(case_id, cached)  # unchanged: still valid
            return _result(versions, case_id, blocked.blockers)
        session.execute(update(_INSTANCE).where(_INSTANCE.c.id == case_id)
                        .values(definition_id=versions.target_id))
        moved = replace(instance, definition_id=versions.target_id)
        saved = save_workflow(ctx, session, moved, live, cached.snapshot, actor, [
            audit.AuditEntry(actor.user_id, "instance.migrated", case_id, {
                "from_version": versions.version_from, "to_version": versions.version_to,
                "definition_id": versions.target_id})])
        _retitle_open_tasks(session, cached.snapshot, saved.snapshot)
        session.commit()
    ctx.live_cache.take(case_id, -1)  # drops any entry: the next use reloads the case on its new version
    return _result(versions, case_id, [])


def _retitle_open_tasks(session: Session, before: Snapshot, after: Snapshot) -> None:
    """Open tasks keep their id across a migration, so the index only learns their new title, lane or form
    here (the save adds and ends rows, it does not rewrite them)."""
    old = {t.task_id: (t.title[:256], t.lane, t.form_key) for t in before.user_tasks}
    for task in after.user_tasks:
        values = (task.title[:256], task.lane, task.form_key)
        if task.task_id in old and old[task.task_id] != values:
            session.execute(update(_TASK).where(_TASK.c.id == task.task_id)
                            .values(title=values[0], lane=values[1], form_key=values[2]))


def _versions(ctx: EngineContext, session: Session, from_definition_id: int, to_definition_id: int) -> _Versions:
    rows = {row.id: row for row in session.execute(
        select(ProcessDefinition.id, ProcessDefinition.process_id, ProcessDefinition.version)
        .where(ProcessDefinition.id.in_([from_definition_id, to_definition_id])))}
    for definition_id in (from_definition_id, to_definition_id):
        if definition_id not in rows:
            raise NotFound(f"La version de processus {definition_id} n'existe pas.")
    source, target = rows[from_definition_id], rows[to_definition_id]
    if source.process_id != target.process_id:
        raise Conflict(f"Les dossiers du processus « {source.process_id} » ne peuvent pas passer sur une version "
                       f"du processus « {target.process_id} ».")
    if source.id == target.id:
        raise Conflict("Choisissez deux versions différentes du processus.")
    return _Versions(source.id, target.id, source.version, target.version,
                     ctx.runtime.definition(bundle_of(ctx, session, source.id)),
                     ctx.runtime.definition(bundle_of(ctx, session, target.id)))


def _result(versions: _Versions, case_id: int, blockers: Sequence[Blocker]) -> CaseMigration:
    return CaseMigration(case_id, versions.version_from, versions.version_to, tuple(blockers))
