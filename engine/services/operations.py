"""Python operations callable from service tasks, by name. Diagrams can call these and nothing else."""

from __future__ import annotations

from engine.domain.urgency import rank
from engine.runtime import OperationRegistry


def urgency_rank(urgency: str) -> dict[str, int]:
    return {"rank": rank(urgency)}


def register_all(registry: OperationRegistry) -> None:
    registry.register("telerad.urgency_rank", urgency_rank)
