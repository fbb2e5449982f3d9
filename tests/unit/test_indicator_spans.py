"""engine.domain.indicators.uncovered_spans: the on-call gaps of the indicators in one sweep, equal to
engine.domain.oncall.coverage_gaps (CH-5.5) on the same slots, including overlapping, touching and outside ones."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from engine.domain.indicators import uncovered_spans
from engine.domain.oncall import OnCallSlot, coverage_gaps, out_of_hours_intervals

START, END = datetime(2026, 3, 23, tzinfo=UTC), datetime(2026, 4, 20, tzinfo=UTC)  # across the switch to summer time


@pytest.mark.charter("CH-6.3")
@pytest.mark.parametrize("seed", range(20))
def test_CH6_3_the_sweep_finds_the_same_gaps_as_the_on_call_page(seed):
    rng = random.Random(seed)
    slots = []
    for _ in range(rng.randrange(0, 40)):
        starts = START - timedelta(days=2) + timedelta(minutes=rng.randrange(0, 60 * 24 * 32))
        slots.append(OnCallSlot("brest", "dr.legall", starts, starts + timedelta(minutes=rng.randrange(30, 3000))))
    expected = coverage_gaps(slots, "brest", START, END)
    assert uncovered_spans(out_of_hours_intervals(START, END), [(s.starts_at, s.ends_at) for s in slots]) == expected


def test_no_slot_leaves_every_period_uncovered_and_a_full_cover_none():
    periods = out_of_hours_intervals(START, END)
    assert uncovered_spans(periods, []) == periods
    assert uncovered_spans(periods, [(START - timedelta(days=1), END + timedelta(days=1))]) == []
