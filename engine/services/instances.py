"""Start process instances."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.errors import NotFound
from engine.runtime import Bundle, using_clock
from engine.services.context import EngineContext
from engine.services.persistence import bundle_of, save_workflow
from engine.store import audit
from engine.store.models import ProcessDefinition, ProcessInstance


def start_instance(ctx: EngineContext, actor: Actor, process_id: str, data: dict[str, Any] | None = None,
                   site_id: str | None = None) -> int:
    """Start the latest version of a process; return the new instance id."""
    with ctx.write() as session:
        definition_id = _latest_definition_id(session, process_id)
        bundle: Bundle = bundle_of(session, definition_id)
        with using_clock(ctx.clock):
            live = ctx.runtime.start(bundle, dict(data or {}))
        now = ctx.clock.now()
        instance = ProcessInstance(
            definition_id=definition_id, process_id=process_id, status="running", site_id=site_id,
            state="", started_by=actor.user_id, started_at=now, updated_at=now,
        )
        session.add(instance)
        session.flush()
        cached = save_workflow(ctx, session, instance, live, None, actor, [
            audit.AuditEntry(actor.user_id, "instance.started", instance.id,
                             {"process_id": process_id, "definition_id": definition_id, "site_id": site_id}),
        ])
        session.commit()
        ctx.live_cache.put(instance.id, cached)
        return instance.id


def _latest_definition_id(session: Session, process_id: str) -> int:
    definition_id = session.execute(
        select(ProcessDefinition.id).where(ProcessDefinition.process_id == process_id)
        .order_by(ProcessDefinition.version.desc()).limit(1)
    ).scalar_one_or_none()
    if definition_id is None:
        raise NotFound(f"no deployed process named {process_id!r}")
    return definition_id
