"""On-call duty (permanence des soins, CH-5.5, CH-7.5): who is on duty, when the day service ends, and the
gaps in H24 coverage."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
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


Interval = tuple[datetime, datetime]


def out_of_hours_intervals(start: datetime, end: datetime) -> list[Interval]:
    """The out-of-hours periods between start and end, exact to the second: each night from 18:30 to 08:00
    (Paris time, daylight saving included), and whole weekends and public holidays, merged and clipped."""
    periods: list[Interval] = []
    day = start.astimezone(PARIS).date() - timedelta(days=1)
    last = end.astimezone(PARIS).date()
    while day <= last:
        midnight, next_midnight = _local(day, time(0)), _local(day + timedelta(days=1), time(0))
        if day.weekday() >= 5 or day in public_holidays(day.year):
            periods.append((midnight, next_midnight))
        else:
            periods += [(midnight, _local(day, DAY_STARTS)), (_local(day, DAY_ENDS), next_midnight)]
        day += timedelta(days=1)
    return _clip(_merge(periods), start.astimezone(UTC), end.astimezone(UTC))


def uncovered(periods: Iterable[Interval], covers: Iterable[Interval]) -> list[Interval]:
    """The parts of `periods` that no interval of `covers` covers."""
    remaining: list[Interval] = []
    merged = _merge(covers)
    for begin, finish in periods:
        cursor = begin
        for cover_start, cover_end in merged:
            if cover_end <= cursor or cover_start >= finish:
                continue
            if cover_start > cursor:
                remaining.append((cursor, cover_start))
            cursor = max(cursor, cover_end)
            if cursor >= finish:
                break
        if cursor < finish:
            remaining.append((cursor, finish))
    return remaining


@enforces("CH-5.5")
def coverage_gaps(slots: Iterable[OnCallSlot], territory_id: str, start: datetime,
                  end: datetime) -> list[Interval]:
    """Out-of-hours periods between start and end that no on-call slot of the territory covers, as exact
    intervals (a service from 18:30 to 08:00 with nobody on duty is one gap from 18:30 to 08:00)."""
    covers = [(s.starts_at, s.ends_at) for s in slots if s.territory_id == territory_id]
    return uncovered(out_of_hours_intervals(start, end), covers)


def _local(day: date, moment: time) -> datetime:
    """A Paris wall-clock moment, in UTC: intervals compare and subtract exactly across daylight saving."""
    return datetime.combine(day, moment, tzinfo=PARIS).astimezone(UTC)


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for begin, finish in sorted(intervals):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], finish))
        elif begin < finish:
            merged.append((begin, finish))
    return merged


def _clip(intervals: list[Interval], start: datetime, end: datetime) -> list[Interval]:
    return [(max(begin, start), min(finish, end)) for begin, finish in intervals if finish > start and begin < end]
