"""Deliver messages (e.g. images_received) to the instances waiting for them, routed by our own index."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.runtime import correlation_key, using_clock
from engine.services.context import CachedWorkflow, EngineContext
from engine.services.persistence import load_workflow, lock_instance, save_workflow
from engine.store import audit
from engine.store.models import InboundMessage, MessageSubscription

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    message_id: int
    delivered_to: tuple[int, ...]

    @property
    def delivered(self) -> bool:
        return bool(self.delivered_to)


def deliver_message(ctx: EngineContext, name: str, correlation: dict[str, Any], payload: dict[str, Any],
                    source: str = "internal", actor: Actor | None = None) -> Delivery:
    """Store the message, then hand it to every instance subscribed with the same correlation values.

    A message nobody waits for is kept with status 'undelivered' and reported, never dropped.
    """
    actor = actor or Actor.system()
    key = correlation_key(correlation)
    now = ctx.clock.now()
    with ctx.write() as session:
        message = InboundMessage(message_name=name, correlation_key=key, payload=json.dumps(payload, default=str),
                                 source=source, status="undelivered", received_at=now)
        session.add(message)
        session.flush()
        subscriptions = session.execute(
            select(MessageSubscription.instance_id, MessageSubscription.id)
            .where(MessageSubscription.message_name == name, MessageSubscription.correlation_key == key)
            .order_by(MessageSubscription.instance_id)
        ).all()
        delivered: list[int] = []
        new_entries: dict[int, CachedWorkflow] = {}
        for instance_id, task_id in subscriptions:
            instance = lock_instance(session, instance_id)
            cached = load_workflow(ctx, session, instance)
            with using_clock(ctx.clock):
                caught = cached.live.catch_message(task_id, correlation, payload)
            if not caught:
                continue
            new_entries[instance_id] = save_workflow(ctx, session, instance, cached.live, cached.snapshot, actor, [
                audit.AuditEntry(actor.user_id, "message.delivered", instance_id,
                                 {"message": name, "message_id": message.id, "source": source}),
            ])
            delivered.append(instance_id)
        if delivered:
            message.status = "delivered"
            message.delivered_to = json.dumps(delivered)
        else:
            log.warning("message %s %s from %s matched no waiting case; kept as #%s", name, key, source, message.id)
            audit.append_global(session, [audit.AuditEntry(actor.user_id, "message.undelivered", None,
                                                    {"message": name, "message_id": message.id,
                                                     "correlation": key, "source": source})], now)
        session.commit()
    for instance_id, entry in new_entries.items():
        ctx.live_cache.put(instance_id, entry)
    return Delivery(message.id, tuple(delivered))


def waiting_for_message(session: Session, case_id: int, name: str, correlation: dict[str, Any]) -> bool:
    """Whether the case waits for message `name` with these correlation values (e.g. its acquisition step waits
    for images_received with its accession number), read in the caller's transaction."""
    return session.execute(select(MessageSubscription.id).where(
        MessageSubscription.instance_id == case_id, MessageSubscription.message_name == name,
        MessageSubscription.correlation_key == correlation_key(correlation)).limit(1)).first() is not None
