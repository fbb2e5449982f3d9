"""The audit chain as the use cases and the adapters see it: check it, and record events in a transaction.

Adapters (HL7, DICOM) write their own tables and record what they did in the SAME transaction: they call
`record_global_event` with the session of their write, never engine.store.audit directly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.services.context import EngineContext
from engine.store import audit


def verify_audit(ctx: EngineContext) -> tuple[int, list[audit.ChainProblem]]:
    with ctx.read() as session:
        return audit.verify(session)


def record_global_event(session: Session, actor: str, action: str, detail: dict[str, Any], at: datetime,
                        case_id: int | None = None) -> None:
    """One event on the global audit chain, in the caller's transaction (committed with the change it records).
    `case_id` names the case the event is about, if any (e.g. an HL7 message of that case was read)."""
    audit.append_global(session, [audit.AuditEntry(actor, action, case_id, detail)], at)
