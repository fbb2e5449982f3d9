"""Urgency levels of a request (CH-4.1.12): they order inboxes and choose report delays."""

from __future__ import annotations

VITAL, URGENT, SCHEDULED = "vital", "urgent", "scheduled"
LEVELS = (VITAL, URGENT, SCHEDULED)
_RANK = {VITAL: 0, URGENT: 1, SCHEDULED: 2}
UNKNOWN_RANK = 9


def rank(level: object) -> int:
    """Sort key: vital emergency first, unknown last."""
    return _RANK.get(level, UNKNOWN_RANK) if isinstance(level, str) else UNKNOWN_RANK
