"""The audit chain as the use cases and the adapters see it: check it, and record events in a transaction.

Adapters (HL7, DICOM) write their own tables and record what they did in the SAME transaction: they call
`record_global_event` with the session of their write, never engine.store.audit directly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.services.context import EngineContext
from engine.store import audit


def bind_keys(ctx: EngineContext) -> None:
    """Make every session of `ctx` MAC its audit events with `ctx.keys` (engine.store.audit.keys_of reads the
    ring from Session.info): called once by build_context, and again after replacing ctx.keys."""
    for factory in (ctx.writer, ctx.reader):
        info = dict(factory.kw.get("info") or {})
        info[audit.KEYS_INFO] = ctx.keys
        factory.configure(info=info)


def verify_audit(ctx: EngineContext) -> tuple[int, list[audit.ChainProblem]]:
    report = chain_report(ctx)
    return report.checked, report.problems


def chain_report(ctx: EngineContext) -> audit.ChainReport:
    """Every chain recomputed with the keys of ctx.keys (events name their key: rotation keeps them valid)."""
    with ctx.read() as session:
        return audit.verify_chains(session, ctx.keys, keyed_since=keys_made_at(ctx))


def keys_made_at(ctx: EngineContext) -> datetime | None:
    """When the oldest audit key of the ring was made: no unkeyed event can be younger."""
    try:
        made = datetime.fromisoformat(ctx.keys.audit[-1].created)
    except ValueError:
        return None
    return made if made.tzinfo else made.replace(tzinfo=UTC)


def record_global_event(session: Session, actor: str, action: str, detail: dict[str, Any], at: datetime,
                        case_id: int | None = None) -> None:
    """One event on the global audit chain, in the caller's transaction (committed with the change it records).
    `case_id` names the case the event is about, if any (e.g. an HL7 message of that case was read)."""
    audit.append_global(session, [audit.AuditEntry(actor, action, case_id, detail)], at)
