"""A radiologist who no longer holds his authorization or insurance (CH-3.1, CH-3.2) is replaced through routing:
the case goes back to the routing step (charter role ``routing``), is offered again to the eligible radiologists
of the proximity tiers, and the steps that named him (patient information, justification, protocol...) are done
again with the new one. The replacement is on the case's audit chain."""

from __future__ import annotations

from typing import Any

from engine.domain.actors import Actor
from engine.errors import Conflict
from engine.runtime import using_clock
from engine.services.context import EngineContext
from engine.services.persistence import load_workflow, lock_instance, save_workflow
from engine.store import audit

ROUTING_ROLE = "routing"


def replace_radiologist(ctx: EngineContext, actor: Actor, case_id: int, reason: str) -> None:
    """Offer the case again to the eligible radiologists; raise Conflict when the case has no routing step."""
    with ctx.write() as session:
        instance = lock_instance(session, case_id)
        if instance.status != "running":
            raise Conflict("Le dossier est clos : il ne peut plus être confié à un autre radiologue.")
        cached = load_workflow(ctx, session, instance)
        before: Any = cached.live.latest_data().get("radiologist_id")
        with using_clock(ctx.clock):
            if not cached.live.reset_to_role(ROUTING_ROLE):
                raise Conflict("Ce dossier n'a pas d'étape d'attribution : il ne peut pas être réattribué.")
        saved = save_workflow(ctx, session, instance, cached.live, cached.snapshot, actor, [
            audit.AuditEntry(actor.user_id, "case.rerouted", case_id, {"radiologist": before, "reason": reason})])
        session.commit()
    ctx.live_cache.put(case_id, saved)
