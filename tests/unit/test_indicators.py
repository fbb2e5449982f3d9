"""Indicators (CH-6.3, CH-3.5), site visits (CH-5.6), pseudonymisation (CH-8.2), conventions (CH-6.1)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from engine.domain.indicators import (
    next_site_visit,
    share_within_delay,
    site_visit_overdue,
    teleradiology_share,
    turnaround_minutes,
)
from engine.domain.privacy import pseudonymise
from engine.domain.routing import Convention

SECRET = b"s" * 32


@pytest.mark.charter("CH-6.3")
def test_CH6_3_turnaround_and_share_within_delay():
    requested = datetime(2026, 1, 5, 2, 10, tzinfo=UTC)
    assert turnaround_minutes(requested, requested + timedelta(minutes=47)) == 47
    with pytest.raises(ValueError):
        turnaround_minutes(requested, requested - timedelta(minutes=1))
    assert share_within_delay([30, 60, 61, 240], 60) == 0.5
    assert share_within_delay([], 60) is None


@pytest.mark.charter("CH-3.5")
def test_CH3_5_teleradiology_share_of_a_radiologist():
    assert teleradiology_share(30, 120) == 0.25
    assert teleradiology_share(0, 0) is None
    with pytest.raises(ValueError):
        teleradiology_share(5, 3)


@pytest.mark.charter("CH-5.6")
def test_CH5_6_site_visit_due_after_the_interval_and_at_once_when_never_visited():
    today = date(2026, 6, 1)
    assert next_site_visit(date(2026, 1, 10), today) == date(2027, 1, 10)
    assert not site_visit_overdue(date(2026, 1, 10), today)
    assert site_visit_overdue(date(2025, 5, 1), today)
    assert site_visit_overdue(None, today) and next_site_visit(None, today) == today


@pytest.mark.charter("CH-8.2")
def test_CH8_2_pseudonyms_are_stable_per_secret_and_not_the_identifier():
    first = pseudonymise("150032912345678", SECRET)
    assert first == pseudonymise("150032912345678", SECRET)
    assert first != pseudonymise("150032912345679", SECRET)
    assert first != pseudonymise("150032912345678", b"t" * 32)
    assert "150032912345678" not in first
    with pytest.raises(ValueError):
        pseudonymise("x", b"short")


@pytest.mark.charter("CH-6.1")
@pytest.mark.charter("CH-3.4")
@pytest.mark.parametrize(("cme", "g4", "council", "active"), [
    (True, True, True, True), (False, True, True, False), (True, False, True, False), (True, True, False, False),
])
def test_CH6_1_convention_is_active_only_once_validated_and_approved(cme, g4, council, active):
    convention = Convention("site", frozenset({"rad"}), cme_validated=cme, approved_by_g4=g4,
                            approved_by_council=council)
    assert convention.active is active
