"""Check the audit chain."""

from __future__ import annotations

from engine.services.context import EngineContext
from engine.store import audit


def verify_audit(ctx: EngineContext) -> tuple[int, list[audit.ChainProblem]]:
    with ctx.read() as session:
        return audit.verify(session)
