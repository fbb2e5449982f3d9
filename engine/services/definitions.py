"""Deploy diagram bundles as immutable, versioned definitions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.errors import DefinitionRefused
from engine.runtime import Bundle, bundles_from_library
from engine.runtime.charter_paths import check_charter
from engine.runtime.definitions import read_library
from engine.services.context import EngineContext
from engine.store import audit
from engine.store.models import ProcessDefinition


@dataclass(frozen=True)
class Deployed:
    process_id: str
    version: int
    definition_id: int
    created: bool


@enforces("CH-9.1")
def deploy_definition(ctx: EngineContext, actor: Actor, bundle: Bundle) -> Deployed:
    """Validate and store a bundle; the same content deployed twice gives back the existing version.

    Raises DefinitionRefused with every finding: the parse and safety checks, and for a charter family the
    charter path analysis (a diagram that defeats an invariant is never deployed)."""
    charter = check_charter(bundle.files, bundle.process_id, ctx.runtime.operations, ctx.forms.schema).errors
    try:
        ctx.runtime.definition(bundle)
    except DefinitionRefused as err:
        raise DefinitionRefused([*err.findings, *charter]) from err
    if charter:
        raise DefinitionRefused(charter)
    with ctx.write() as session:
        deployed = store_definition(ctx, session, actor, bundle)
        session.commit()
        return deployed


def store_definition(ctx: EngineContext, session: Session, actor: Actor, bundle: Bundle) -> Deployed:
    """The deployment itself, inside the caller's transaction (the bundle must already have parsed)."""
    parsed = ctx.runtime.definition(bundle)
    existing = session.execute(
        select(ProcessDefinition).where(ProcessDefinition.process_id == bundle.process_id,
                                        ProcessDefinition.content_hash == bundle.content_hash)
    ).scalar_one_or_none()
    if existing is not None:
        return Deployed(existing.process_id, existing.version, existing.id, False)
    latest = session.execute(
        select(func.max(ProcessDefinition.version)).where(ProcessDefinition.process_id == bundle.process_id)
    ).scalar()
    now = ctx.clock.now()
    definition = ProcessDefinition(
        process_id=bundle.process_id, version=(latest or 0) + 1, name=parsed.process_name[:256],
        content_hash=bundle.content_hash, source=bundle.to_json(), deployed_at=now, deployed_by=actor.user_id,
    )
    session.add(definition)
    session.flush()
    audit.append_global(session, [audit.AuditEntry(actor.user_id, "definition.deployed", None, {
        "process_id": definition.process_id, "version": definition.version,
        "content_hash": definition.content_hash, "files": sorted(bundle.files),
    })], now)
    return Deployed(definition.process_id, definition.version, definition.id, True)


def deploy_library(ctx: EngineContext, actor: Actor, directory: Path) -> list[Deployed]:
    """Deploy every top-level process of a folder of .bpmn/.dmn files whose content is new."""
    files = read_library(sorted([*directory.glob("*.bpmn"), *directory.glob("*.dmn")]))
    return [deploy_definition(ctx, actor, bundle) for bundle in bundles_from_library(files)]
