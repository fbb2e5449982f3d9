"""On-call duty (permanence des soins, CH-5.5, CH-7.5): who is on duty, when the day service ends, and the
gaps in H24 coverage."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from engine.domain.charter import enforces

PARIS = ZoneInfo("Europe/Paris")
DAY_STARTS, DAY_ENDS = time(8, 0), time(18, 30)


@dataclass(frozen=True)
class OnCallSlot:
    territory_id: str
    user_id: str
    starts_at: datetime  # aware
    ends_at: datetime  # aware, exclusive


def easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741 - the algorithm's own name
    m = (a + 11 * h + 22 * l) // 451
    month = (h + l - 7 * m + 114) // 31
    day = ((h + l - 7 * m + 114) % 31) + 1
    return date(year, month, day)


def public_holidays(year: int) -> set[date]:
    """French public holidays (metropolitan France)."""
    sunday = easter(year)
    fixed = {(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)}
    return {date(year, m, d) for m, d in fixed} | {sunday + timedelta(days=1), sunday + timedelta(days=39),
                                                    sunday + timedelta(days=50)}


@enforces("CH-5.5")
def is_out_of_hours(moment: datetime) -> bool:
    """Nights, weekends and public holidays, in Paris time: the on-call service answers then."""
    local = moment.astimezone(PARIS)
    if local.weekday() >= 5 or local.date() in public_holidays(local.year):
        return True
    return not (DAY_STARTS <= local.time() < DAY_ENDS)


@enforces("CH-5.5")
def on_call_at(slots: Iterable[OnCallSlot], territory_id: str, moment: datetime) -> str | None:
    """The radiologist on duty for a territory at a moment (the latest-starting slot wins on overlap)."""
    current = [s for s in slots if s.territory_id == territory_id and s.starts_at <= moment < s.ends_at]
    return max(current, key=lambda s: s.starts_at).user_id if current else None


@enforces("CH-5.5")
def coverage_gaps(slots: Iterable[OnCallSlot], territory_id: str, start: datetime,
                  end: datetime) -> list[tuple[datetime, datetime]]:
    """Out-of-hours periods between start and end that no on-call slot of the territory covers."""
    covered = sorted((s.starts_at, s.ends_at) for s in slots if s.territory_id == territory_id)
    gaps: list[tuple[datetime, datetime]] = []
    step = timedelta(minutes=30)
    moment, gap_start = start, None
    while moment < end:
        uncovered = is_out_of_hours(moment) and not any(a <= moment < b for a, b in covered)
        if uncovered and gap_start is None:
            gap_start = moment
        elif not uncovered and gap_start is not None:
            gaps.append((gap_start, moment))
            gap_start = None
        moment += step
    if gap_start is not None:
        gaps.append((gap_start, end))
    return gaps
