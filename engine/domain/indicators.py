"""Quality and organisation indicators (CH-6.3, CH-3.5) and periodic site visits (CH-5.6)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

DEFAULT_SITE_VISIT_INTERVAL = timedelta(days=365)


def turnaround_minutes(requested_at: datetime, released_at: datetime) -> float:
    """Minutes from request to released report; the basic turnaround indicator."""
    if released_at < requested_at:
        raise ValueError("a report cannot be released before it was requested")
    return (released_at - requested_at).total_seconds() / 60


def share_within_delay(turnarounds_minutes: Sequence[float], delay_minutes: float) -> float | None:
    """Share of reports released within the delay of their urgency level (None when there is none)."""
    if not turnarounds_minutes:
        return None
    return sum(1 for t in turnarounds_minutes if t <= delay_minutes) / len(turnarounds_minutes)


def teleradiology_share(teleradiology_acts: int, all_acts: int) -> float | None:
    """Share of a radiologist's acts done by teleradiology, shown to administrators (teleradiology must
    stay a complement to local practice)."""
    if teleradiology_acts < 0 or all_acts < 0 or teleradiology_acts > all_acts:
        raise ValueError("acts must be counts, teleradiology acts being part of all acts")
    return None if all_acts == 0 else teleradiology_acts / all_acts


def next_site_visit(last_visit: date | None, today: date,
                    interval: timedelta = DEFAULT_SITE_VISIT_INTERVAL) -> date:
    """When the radiologist must next visit the requesting site (at once if never visited)."""
    return today if last_visit is None else last_visit + interval


def site_visit_overdue(last_visit: date | None, today: date,
                       interval: timedelta = DEFAULT_SITE_VISIT_INTERVAL) -> bool:
    return next_site_visit(last_visit, today, interval) < today or last_visit is None


Interval = tuple[datetime, datetime]


def uncovered_spans(periods: Sequence[Interval], covers: Sequence[Interval]) -> list[Interval]:
    """The parts of `periods` (sorted, disjoint) that no interval of `covers` covers, in one sweep over both sorted
    lists: linear in their lengths (a year of nights against a year of on-call slots)."""
    merged: list[Interval] = []
    for begin, finish in sorted(covers):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], finish))
        else:
            merged.append((begin, finish))
    remaining: list[Interval] = []
    index = 0
    for begin, finish in periods:
        while index < len(merged) and merged[index][1] <= begin:
            index += 1
        cursor, probe = begin, index
        while probe < len(merged) and merged[probe][0] < finish:
            cover_start, cover_end = merged[probe]
            if cover_start > cursor:
                remaining.append((cursor, cover_start))
            cursor = max(cursor, cover_end)
            probe += 1
        if cursor < finish:
            remaining.append((cursor, finish))
    return remaining
