"""CH-9.1, CH-3.5.1, CH-3.5.2: the rule packs as pure rules (engine.domain.charter_packs)."""

from __future__ import annotations

from datetime import date

import pytest

from engine.domain import charter_packs as packs
from engine.domain.charter_packs import PackAssignment, ShareFacts, pack_in_force, screen_pool

FACTS = {"over": ShareFacts(30, 100), "within": ShareFacts(10, 500), "exclusive": ShareFacts(0, None),
         "no_local": ShareFacts(40, 40), "at_cap": ShareFacts(20, 100)}


@pytest.mark.charter("CH-9.1")
def test_the_pack_in_force_is_the_latest_started_and_2020_by_default():
    choices = [PackAssignment("2025", date(2026, 6, 1)), PackAssignment("2020", date(2026, 1, 1))]
    assert pack_in_force(choices, date(2025, 12, 31)).pack == "2020"
    assert pack_in_force((), date(2026, 1, 1)).pack == packs.DEFAULT_PACK
    assert pack_in_force(choices, date(2026, 5, 31)).pack == "2020"
    assert pack_in_force(choices, date(2026, 6, 1)).pack == "2025"
    same_day = [PackAssignment("2025", date(2026, 6, 1)), PackAssignment("2020", date(2026, 6, 1))]
    assert pack_in_force(same_day, date(2026, 6, 1)).pack == "2020"  # the one recorded last


@pytest.mark.charter("CH-9.1", negative=True)
def test_packs_are_versioned_and_an_unknown_one_is_refused_in_french():
    assert (packs.get_pack("2020").version, packs.get_pack("2025").version) == ("2020.1", "2025.1")
    with pytest.raises(packs.UnknownPack, match="Version de charte inconnue"):
        packs.get_pack("2031")
    catalogue = ["CH-3.3", "CH-3.5", "CH-3.5.1", "CH-3.5.2", "CH-10.1", "CH-9.1"]
    assert packs.get_pack("2020").rule_ids(catalogue) == ["CH-3.3", "CH-3.5", "CH-9.1"]
    assert packs.get_pack("2025").rule_ids(catalogue) == catalogue


@pytest.mark.charter("CH-3.5.1", negative=True)
@pytest.mark.charter("CH-3.5.2", negative=True)
def test_the_2025_pack_skips_over_the_cap_and_exclusive_keeps_order_2020_skips_nobody():
    pool = ["over", "within", "exclusive", "no_local", "at_cap"]
    screened = screen_pool(packs.get_pack("2025"), PackAssignment("2025", date.min), pool, FACTS)
    assert screened.kept == ["within", "at_cap"]  # exactly 20 % is within the cap
    assert [(s.radiologist, s.reason) for s in screened.skipped] == [
        ("over", packs.OVER_CAP), ("exclusive", packs.EXCLUSIVE), ("no_local", packs.EXCLUSIVE)]
    assert screen_pool(packs.get_pack("2020"), PackAssignment("2020", date.min), pool, FACTS).kept == pool
    warned = screen_pool(packs.get_pack("2025"), PackAssignment("2025", date.min, None, packs.WARN), pool, FACTS)
    assert warned.kept == pool and [s.radiologist for s in warned.warned] == ["over", "exclusive", "no_local"]
    lower = screen_pool(packs.get_pack("2025"), PackAssignment("2025", date.min, 5), ["within", "at_cap"], FACTS)
    assert lower.kept == ["within"]  # the organisation's own cap (5 %)


@pytest.mark.charter("CH-3.5")
def test_share_and_exclusive_flag():
    assert FACTS["over"].share == 0.3 and not FACTS["over"].exclusive
    assert FACTS["exclusive"].share is None and FACTS["exclusive"].exclusive
    assert ShareFacts(5, 2).share == 1.0 and ShareFacts(5, 2).exclusive  # declared less than counted
