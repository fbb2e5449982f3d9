"""Proximity-first routing (CH-3.3) among radiologists bound by an active convention (CH-3.4) with valid
credentials (CH-3.1, CH-3.2).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from engine.domain.credentials import RadiologistCredentials
from engine.domain.routing import (
    EXTERNAL,
    LOCAL,
    MAX_TIER,
    NEIGHBOURS,
    REGIONAL,
    Convention,
    Radiologist,
    Site,
    Territory,
    active_conventions,
    candidate_pool,
    last_tier,
    tier_of,
)

TODAY = date(2026, 1, 5)
VALID = RadiologistCredentials("10003456786", date(2030, 1, 1), date(2030, 1, 1))

TERRITORIES = {t.id: t for t in [
    Territory("brest", "Brest", "29", "BRE", frozenset({"morlaix"})),
    Territory("morlaix", "Morlaix", "29", "BRE", frozenset({"brest"})),
    Territory("landerneau", "Landerneau", "29", "BRE", frozenset({"brest"})),  # neighbour declared on one side
    Territory("quimper", "Quimper", "29", "BRE"),
    Territory("vannes", "Vannes", "56", "BRE"),
    Territory("paris", "Paris", "75", "IDF"),
]}
SITE = Site("ch-brest", "CH de Brest", "brest")

LOCAL_B = Radiologist("rad.local.b", "Dr Le Gall", "brest", VALID)
LOCAL_A = Radiologist("rad.local.a", "Dr Abalain", "brest", VALID)
NEIGHBOUR = Radiologist("rad.morlaix", "Dr Morvan", "morlaix", VALID)
ONE_SIDED_NEIGHBOUR = Radiologist("rad.landerneau", "Dr Landais", "landerneau", VALID)
DEPARTMENT = Radiologist("rad.quimper", "Dr Quéré", "quimper", VALID)
REGION = Radiologist("rad.vannes", "Dr Abgrall", "vannes", VALID)  # sorts before Dr Quéré by name
FAR = Radiologist("rad.paris", "Dr Durand", "paris", VALID)
COMPANY = Radiologist("rad.company", "Dr Société", None, VALID, external_company="TéléRadio SAS")
COMPANY_IN_BREST = Radiologist("rad.company.brest", "Dr Société Brest", "brest", VALID,
                               external_company="TéléRadio SAS")
EVERYONE = [LOCAL_B, LOCAL_A, NEIGHBOUR, ONE_SIDED_NEIGHBOUR, DEPARTMENT, REGION, FAR, COMPANY, COMPANY_IN_BREST]


def convention(radiologists=EVERYONE, **options) -> Convention:
    values = {"cme_validated": True, "approved_by_g4": True, "approved_by_council": True, **options}
    return Convention(SITE.id, frozenset(r.user_id for r in radiologists), **values)


def pool(tier: int, conventions, radiologists=EVERYONE, on: date = TODAY) -> list[str]:
    return candidate_pool(SITE, tier, radiologists, conventions, TERRITORIES, on)


# --------------------------------------------------------------------------------------------------
# CH-3.4 only an active convention (CME, regional G4 and departmental Medical Council) offers anyone
# --------------------------------------------------------------------------------------------------


@pytest.mark.charter("CH-3.4")
@pytest.mark.parametrize("missing", ["cme_validated", "approved_by_g4", "approved_by_council"])
def test_CH3_4_a_convention_missing_one_approval_offers_nobody(missing):
    inactive = convention(external_allowed=True, **{missing: False})
    assert not inactive.active
    assert active_conventions(SITE.id, [inactive]) == []
    for tier in range(LOCAL, MAX_TIER + 1):
        assert pool(tier, [inactive]) == [], tier
    assert last_tier(SITE.id, [inactive]) == LOCAL  # nothing beyond tier 1 is open: the site is alerted


@pytest.mark.charter("CH-3.4")
def test_CH3_4_a_new_convention_is_inactive_until_all_three_approvals():
    assert not Convention(SITE.id, frozenset({LOCAL_A.user_id})).active
    assert pool(LOCAL, [Convention(SITE.id, frozenset({LOCAL_A.user_id}))]) == []


@pytest.mark.charter("CH-3.4")
def test_CH3_4_only_the_active_conventions_of_this_site_count():
    other_site = replace(convention(), site_id="ch-quimper")
    inactive = convention([LOCAL_A], approved_by_council=False)
    active = convention([LOCAL_B])
    assert active_conventions(SITE.id, [other_site, inactive, active]) == [active]
    assert pool(LOCAL, [other_site]) == []
    assert pool(LOCAL, [other_site, inactive, active]) == ["rad.local.b"]


@pytest.mark.charter("CH-3.4")
def test_CH3_4_radiologists_outside_every_convention_are_never_offered():
    contract = convention([LOCAL_A, NEIGHBOUR])
    assert pool(LOCAL, [contract]) == ["rad.local.a"]  # not Dr Le Gall, though local and valid
    assert pool(NEIGHBOURS, [contract]) == ["rad.morlaix"]


# --------------------------------------------------------------------------------------------------
# CH-3.3 tiers: local territory, neighbours, department then region, external company if allowed
# --------------------------------------------------------------------------------------------------


@pytest.mark.charter("CH-3.3")
@pytest.mark.parametrize(
    ("radiologist", "tier"),
    [
        (LOCAL_A, LOCAL),
        (NEIGHBOUR, NEIGHBOURS),
        (ONE_SIDED_NEIGHBOUR, NEIGHBOURS),
        (DEPARTMENT, REGIONAL),
        (REGION, REGIONAL),
        (FAR, None),
        (COMPANY, EXTERNAL),
        (COMPANY_IN_BREST, EXTERNAL),  # a company's radiologist is never tier 1, even next door
        (Radiologist("rad.nowhere", "Dr Nulle-Part", None, VALID), None),
        (Radiologist("rad.unknown", "Dr Inconnu", "atlantis", VALID), None),
    ],
    ids=lambda value: value.user_id if isinstance(value, Radiologist) else str(value),
)
def test_CH3_3_tier_of_each_radiologist(radiologist, tier):
    assert tier_of(radiologist, SITE, TERRITORIES) == tier


@pytest.mark.charter("CH-3.3")
def test_CH3_3_a_site_in_an_unknown_territory_only_reaches_external_companies():
    lost = Site("ch-lost", "CH perdu", "atlantis")
    assert tier_of(LOCAL_A, lost, TERRITORIES) is None
    assert tier_of(COMPANY, lost, TERRITORIES) == EXTERNAL


@pytest.mark.charter("CH-3.3")
def test_CH3_3_each_tier_offers_its_own_radiologists_nearest_first():
    contracts = [convention(external_allowed=True)]
    assert pool(LOCAL, contracts) == ["rad.local.a", "rad.local.b"]  # Abalain, Le Gall
    assert pool(NEIGHBOURS, contracts) == ["rad.landerneau", "rad.morlaix"]
    # Same department before same region, whatever the names (Dr Abgrall would come first by name).
    assert pool(REGIONAL, contracts) == ["rad.quimper", "rad.vannes"]
    assert pool(EXTERNAL, contracts) == ["rad.company.brest", "rad.company"]  # a company doctor in the department first
    offered = [user for tier in range(LOCAL, MAX_TIER + 1) for user in pool(tier, contracts)]
    assert "rad.paris" not in offered  # another region is in no tier
    assert len(offered) == len(set(offered))  # nobody is offered at two tiers


@pytest.mark.charter("CH-3.3")
def test_CH3_3_pool_order_does_not_depend_on_the_directory_order():
    contracts = [convention(external_allowed=True)]
    assert pool(REGIONAL, contracts, list(reversed(EVERYONE))) == ["rad.quimper", "rad.vannes"]
    assert pool(LOCAL, contracts, list(reversed(EVERYONE))) == ["rad.local.a", "rad.local.b"]


@pytest.mark.charter("CH-3.3")
def test_CH3_3_external_company_only_where_the_convention_allows_it():
    assert pool(EXTERNAL, [convention()]) == []
    assert last_tier(SITE.id, [convention()]) == REGIONAL
    assert pool(EXTERNAL, [convention(external_allowed=True)]) == ["rad.company.brest", "rad.company"]
    assert last_tier(SITE.id, [convention(external_allowed=True)]) == EXTERNAL
    # Listing tier 4 is not enough: the convention must allow an external company.
    listed = convention(tiers=frozenset({LOCAL, NEIGHBOURS, REGIONAL, EXTERNAL}))
    assert pool(EXTERNAL, [listed]) == []
    assert last_tier(SITE.id, [listed]) == REGIONAL


@pytest.mark.charter("CH-3.3")
def test_CH3_3_external_company_is_offered_only_through_a_convention_that_allows_it():
    without = convention([COMPANY])
    allowing = convention([LOCAL_A], external_allowed=True)
    assert pool(EXTERNAL, [without, allowing]) == []  # the company signed the convention that forbids tier 4


@pytest.mark.charter("CH-3.3")
@pytest.mark.parametrize(
    ("tiers", "external_allowed", "offered", "last"),
    [
        (frozenset({LOCAL}), False, {LOCAL}, LOCAL),
        (frozenset({LOCAL, NEIGHBOURS}), False, {LOCAL, NEIGHBOURS}, NEIGHBOURS),
        (frozenset({LOCAL, NEIGHBOURS}), True, {LOCAL, NEIGHBOURS, EXTERNAL}, EXTERNAL),
        (frozenset({LOCAL, REGIONAL}), False, {LOCAL, REGIONAL}, REGIONAL),
        (frozenset(), False, set(), LOCAL),
    ],
)
def test_CH3_3_tiers_outside_the_convention_offer_nobody(tiers, external_allowed, offered, last):
    contracts = [convention(tiers=tiers, external_allowed=external_allowed)]
    for tier in range(LOCAL, MAX_TIER + 1):
        assert bool(pool(tier, contracts)) == (tier in offered), tier
    assert last_tier(SITE.id, contracts) == last


@pytest.mark.charter("CH-3.3")
def test_CH3_3_last_tier_is_the_farthest_allowed_by_any_active_convention():
    near = convention([LOCAL_A], tiers=frozenset({LOCAL}))
    far = convention([REGION], tiers=frozenset({LOCAL, NEIGHBOURS, REGIONAL}))
    assert last_tier(SITE.id, [near, far]) == REGIONAL
    assert last_tier(SITE.id, [near, replace(far, approved_by_g4=False)]) == LOCAL
    assert last_tier(SITE.id, []) == LOCAL
    assert last_tier("ch-quimper", [near, far]) == LOCAL


@pytest.mark.charter("CH-3.3")
def test_CH3_3_a_radiologist_is_offered_only_at_the_tiers_of_his_own_convention():
    local_only = convention([NEIGHBOUR], tiers=frozenset({LOCAL}))
    wider = convention([LOCAL_A], tiers=frozenset({LOCAL, NEIGHBOURS}))
    assert pool(NEIGHBOURS, [local_only, wider]) == []


# --------------------------------------------------------------------------------------------------
# CH-3.1 / CH-3.2 credentials: authorization, insurance, documents of radiologists established abroad
# --------------------------------------------------------------------------------------------------


def with_credentials(credentials: RadiologistCredentials) -> Radiologist:
    return Radiologist("rad.checked", "Dr Vérifié", "brest", credentials)


def offered(credentials: RadiologistCredentials, on: date = TODAY) -> bool:
    candidate = with_credentials(credentials)
    return candidate.user_id in pool(LOCAL, [convention([candidate])], [candidate], on)


@pytest.mark.charter("CH-3.1")
@pytest.mark.parametrize(
    "credentials",
    [
        replace(VALID, authorization_expires=TODAY - timedelta(days=1)),
        replace(VALID, insurance_expires=TODAY - timedelta(days=1)),
        replace(VALID, authorization_expires=None),
        replace(VALID, insurance_expires=None),
        replace(VALID, rpps=None),
        replace(VALID, rpps="10003456787"),  # wrong check digit
    ],
    ids=["authorization-expired", "insurance-expired", "no-authorization", "no-insurance", "no-rpps", "bad-rpps"],
)
def test_CH3_1_radiologist_without_valid_authorization_or_insurance_is_never_offered(credentials):
    assert offered(VALID)
    assert not offered(credentials)


@pytest.mark.charter("CH-3.1")
def test_CH3_1_validity_is_checked_on_the_day_of_the_offer():
    expiring = replace(VALID, insurance_expires=TODAY)
    assert offered(expiring, TODAY)  # the last day printed on the certificate is still valid
    assert not offered(expiring, TODAY + timedelta(days=1))


@pytest.mark.charter("CH-3.1")
def test_CH3_1_invalid_colleagues_are_dropped_and_valid_ones_kept_at_every_tier():
    expired = replace(VALID, insurance_expires=date(2025, 12, 31))
    people = [replace(r, credentials=expired) if r in (LOCAL_B, DEPARTMENT, COMPANY) else r for r in EVERYONE]
    contracts = [convention(external_allowed=True)]
    assert pool(LOCAL, contracts, people) == ["rad.local.a"]
    assert pool(REGIONAL, contracts, people) == ["rad.vannes"]
    assert pool(EXTERNAL, contracts, people) == ["rad.company.brest"]


@pytest.mark.charter("CH-3.2")
@pytest.mark.parametrize(
    ("authorization_on_file", "insurance_on_file", "expected"),
    [(False, False, False), (True, False, False), (False, True, False), (True, True, True)],
)
def test_CH3_2_radiologist_abroad_is_offered_only_with_both_documents_on_file(
        authorization_on_file, insurance_on_file, expected):
    abroad = RadiologistCredentials(None, date(2030, 1, 1), date(2030, 1, 1), extraterritorial=True,
                                    foreign_authorization_on_file=authorization_on_file,
                                    foreign_insurance_on_file=insurance_on_file)
    assert offered(abroad) is expected
