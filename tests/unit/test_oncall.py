"""On-call duty (CH-5.5): out-of-hours periods, who is on duty, gaps in H24 coverage."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from engine.domain.oncall import OnCallSlot, coverage_gaps, easter, is_out_of_hours, on_call_at, public_holidays


def paris(*args: int) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(*args, tzinfo=ZoneInfo("Europe/Paris"))


def test_easter_and_moving_holidays():
    assert easter(2026) == date(2026, 4, 5) and easter(2027) == date(2027, 3, 28)
    holidays = public_holidays(2026)
    assert {date(2026, 4, 6), date(2026, 5, 14), date(2026, 5, 25), date(2026, 7, 14)} <= holidays


@pytest.mark.charter("CH-5.5")
@pytest.mark.parametrize(("moment", "out"), [
    (paris(2026, 1, 5, 9, 0), False),  # Monday morning
    (paris(2026, 1, 5, 18, 29), False),
    (paris(2026, 1, 5, 18, 30), True),  # evening
    (paris(2026, 1, 6, 7, 59), True),  # night
    (paris(2026, 1, 10, 12, 0), True),  # Saturday
    (paris(2026, 7, 14, 11, 0), True),  # Bastille Day, a Tuesday
])
def test_CH5_5_out_of_hours_in_paris_time(moment, out):
    assert is_out_of_hours(moment) is out
    assert is_out_of_hours(moment.astimezone(UTC)) is out


@pytest.mark.charter("CH-5.5")
def test_CH5_5_who_is_on_call_and_latest_slot_wins():
    night = OnCallSlot("brest", "dr.a", paris(2026, 1, 5, 18, 30), paris(2026, 1, 6, 8, 0))
    swap = OnCallSlot("brest", "dr.b", paris(2026, 1, 6, 0, 0), paris(2026, 1, 6, 8, 0))
    assert on_call_at([night, swap], "brest", paris(2026, 1, 5, 23, 0)) == "dr.a"
    assert on_call_at([night, swap], "brest", paris(2026, 1, 6, 2, 0)) == "dr.b"
    assert on_call_at([night, swap], "brest", paris(2026, 1, 6, 8, 0)) is None
    assert on_call_at([night], "morlaix", paris(2026, 1, 5, 23, 0)) is None


@pytest.mark.charter("CH-5.5")
def test_CH5_5_coverage_gaps_are_the_uncovered_out_of_hours_periods():
    slots = [OnCallSlot("brest", "dr.a", paris(2026, 1, 5, 18, 30), paris(2026, 1, 6, 8, 0))]
    gaps = coverage_gaps(slots, "brest", paris(2026, 1, 5, 8, 0), paris(2026, 1, 7, 8, 0))
    assert gaps == [(paris(2026, 1, 6, 18, 30), paris(2026, 1, 7, 8, 0))]
    full_week = coverage_gaps([], "brest", paris(2026, 1, 5, 0, 0), paris(2026, 1, 5, 0, 0) + timedelta(days=7))
    assert full_week[0][0] == paris(2026, 1, 5, 0, 0)


@pytest.mark.charter("CH-5.5")
def test_CH5_5_gaps_are_exact_intervals_whatever_the_minute_they_are_computed_from():
    night = [(paris(2026, 1, 6, 18, 30), paris(2026, 1, 7, 8, 0))]
    assert coverage_gaps([], "brest", paris(2026, 1, 6, 12, 0), paris(2026, 1, 7, 12, 0)) == night
    assert coverage_gaps([], "brest", paris(2026, 1, 6, 12, 7), paris(2026, 1, 7, 12, 23)) == night
    late = coverage_gaps([], "brest", paris(2026, 1, 6, 18, 53), paris(2026, 1, 7, 12, 0))
    assert late == [(paris(2026, 1, 6, 18, 53), paris(2026, 1, 7, 8, 0))]  # clipped, never shifted


@pytest.mark.charter("CH-5.5")
def test_CH5_5_a_partial_slot_leaves_exactly_the_uncovered_parts_and_a_weekend_is_one_period():
    slot = OnCallSlot("brest", "dr.a", paris(2026, 1, 6, 20, 0), paris(2026, 1, 7, 2, 0))
    assert coverage_gaps([slot], "brest", paris(2026, 1, 6, 12, 0), paris(2026, 1, 7, 12, 0)) == [
        (paris(2026, 1, 6, 18, 30), paris(2026, 1, 6, 20, 0)), (paris(2026, 1, 7, 2, 0), paris(2026, 1, 7, 8, 0))]
    # Friday 18:30 to Monday 08:00 across the change to summer time (29 March 2026): one gap, one hour shorter.
    weekend = coverage_gaps([], "brest", paris(2026, 3, 27, 12, 0), paris(2026, 3, 30, 12, 0))
    assert weekend == [(paris(2026, 3, 27, 18, 30), paris(2026, 3, 30, 8, 0))]
    assert weekend[0][1] - weekend[0][0] == timedelta(hours=60, minutes=30)
