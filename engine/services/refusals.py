"""Trace refused attempts: a change a charter gate refused is not written, but the attempt is, on the case's audit
chain (or the global one for a case that does not exist yet), in a transaction of its own."""

from __future__ import annotations

import logging

from engine.domain.actors import Actor
from engine.errors import CharterRefused
from engine.services.context import EngineContext
from engine.services.persistence import append_case_events, lock_instance
from engine.store import audit

log = logging.getLogger(__name__)


def record_refusal(ctx: EngineContext, instance_id: int | None, actor: Actor, err: CharterRefused,
                   step: str | None = None) -> None:
    """Trace a refused attempt in its own transaction (the refused change itself was not written)."""
    detail = {"refusals": [{"rule": rule, "reason": reason} for rule, reason in err.refusals], "step": step}
    entry = audit.AuditEntry(actor.user_id, "charter.refused", instance_id, detail)
    try:
        with ctx.write() as session:
            if instance_id is None:
                audit.append_global(session, [entry], ctx.clock.now())
            else:
                append_case_events(session, lock_instance(session, instance_id), [entry], ctx.clock.now())
            session.commit()
    except Exception:  # noqa: BLE001 - the refusal itself must reach the user even if tracing it failed
        log.exception("could not record a charter refusal on case %s", instance_id)
