"""Marks which code enforces which charter rule, for the conformance matrix (`telerad conformance`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

ENFORCED_BY: dict[str, list[str]] = {}


def enforces(*rule_ids: str) -> Callable[[F], F]:
    """Decorator: record that the decorated function enforces these rule ids (e.g. "CH-3.1")."""

    def mark(function: F) -> F:
        name = f"{function.__module__}.{function.__qualname__}"
        for rule_id in rule_ids:
            ENFORCED_BY.setdefault(rule_id, []).append(name)
        return function

    return mark
