"""CH-9.1 and CH-3.5 (2025 update): the same sequence of cases routed under the 2020 pack and the 2025 pack.

The directory of tests/workflows (Brest, Morlaix, Vannes; a local, a neighbour, a regional radiologist, a company),
with the pack routing of the database. Under the 2025 pack a radiologist over the teleradiology cap, or with no local
activity declared (exclusive), is never offered a case: not at the first offer, not after an escalation timer, not
on call, not through a direct call of the operation; his skip is on the case's timeline. Running cases keep the
pack they started under."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from engine.domain import charter_packs as packs
from engine.domain.actors import Actor
from engine.domain.oncall import OnCallSlot
from engine.errors import Forbidden
from engine.ports import InMemoryDirectory
from engine.runtime import OperationRegistry
from engine.services.charter_packs import PackError, assign_pack, case_pack
from engine.services.charter_routing import SKIPPED_EVENT, WARNED_EVENT, PackRouting
from engine.services.definitions import deploy_library
from engine.services.eligibility import check_expert, eligible_experts
from engine.services.instances import start_instance
from engine.services.operations import register_all
from engine.services.reassignment import replace_radiologist
from engine.services.teleradiology_share import ShareError, declare_activity, shares
from engine.services.timers import fire_due_timers
from engine.store.directory_models import SiteRow, TerritoryRow, User, UserRole
from engine.store.models import AuditEvent, ProcessDefinition, ProcessInstance, Task, TaskCandidate
from forms import default_registry
from tests.workflows.conftest import (
    CONVENTION,
    RADIOLOGISTS,
    REQUESTER,
    SITE,
    TERRITORIES,
    WORKFLOWS,
    Case,
    radiologist,
    request_form,
)

ADMIN = Actor("admin", frozenset({"administrator"}))
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning, Paris working hours


def _seed_directory(ctx) -> None:
    """The database rows the pack routing reads: territories, the site, the radiologists' accounts."""
    with ctx.write() as session:
        for t in TERRITORIES:
            session.add(TerritoryRow(id=t.id, name=t.name, department=t.department, region=t.region))
        session.flush()
        session.add(SiteRow(id=SITE.id, name=SITE.name, territory_id=SITE.territory_id))
        for r in RADIOLOGISTS:
            session.add(User(username=r.user_id, display_name=r.name, password_hash="x", totp_secret="x",
                             created_at=NOW, active=True))
            session.add(UserRole(username=r.user_id, role="radiologist"))
        session.commit()


def _acts(ctx, username: str, count: int, at: datetime) -> None:
    """`count` released reports signed by `username` (the `report.signed` events of a past case's chain)."""
    with ctx.write() as session:
        definition = session.execute(select(ProcessDefinition.id).limit(1)).scalar_one()
        case_id = session.execute(insert(ProcessInstance).values(
            definition_id=definition, process_id="telediagnosis", status="completed", site_id=SITE.id, state="",
            version=1, audit_seq=0, audit_hash="0" * 64, started_by="dr.requester", started_at=at,
            updated_at=at)).inserted_primary_key[0]
        session.execute(insert(AuditEvent), [{
            "chain": case_id, "seq": seq, "at": at, "actor": username, "action": "report.signed",
            "instance_id": case_id, "detail": "{}", "prev_hash": "0" * 64, "hash": "0" * 64}
            for seq in range(1, count + 1)])
        session.commit()


def _declare(ctx, username: str, total: int) -> None:
    declare_activity(ctx, ADMIN, username, date(2025, 6, 1), date(2026, 2, 28), total)


@pytest.fixture
def pack_ctx(make_ctx, clock):
    """Same directory as tests/workflows, an on-call slot for Saturday night; the routing applies the case's pack."""
    clock.set(NOW)
    slot = OnCallSlot("brest", "rad.local", datetime(2026, 3, 6, 17, 30, tzinfo=UTC),
                      datetime(2026, 3, 9, 7, 0, tzinfo=UTC))
    directory = InMemoryDirectory([SITE], TERRITORIES, [CONVENTION], RADIOLOGISTS, [slot])
    built: list[Any] = []
    registry = OperationRegistry()
    register_all(registry, directory, clock, pack_routing=PackRouting(lambda: built[0].reader()))  # type: ignore[arg-type]
    ctx = make_ctx(operations=registry, forms=default_registry(), escalation=None, directory=directory)
    built.append(ctx)
    deploy_library(ctx, Actor("designer"), WORKFLOWS)
    _seed_directory(ctx)
    # rad.local: 30 teleradiology acts of 100 declared (30 % > 20 %); rad.region: 5 of 10 (50 %);
    # rad.neighbour: 10 of 500 (2 %); rad.abroad.ok and rad.company: nothing declared (exclusive).
    _acts(ctx, "rad.local", 30, NOW - timedelta(days=40))
    _acts(ctx, "rad.local", 50, NOW - timedelta(days=400))  # older than the rolling 12 months: not counted
    _acts(ctx, "rad.region", 5, NOW - timedelta(days=10))
    _acts(ctx, "rad.neighbour", 10, NOW - timedelta(days=10))
    _declare(ctx, "rad.local", 100)
    _declare(ctx, "rad.region", 10)
    _declare(ctx, "rad.neighbour", 500)
    return ctx


def _start(ctx, **request: Any) -> Case:
    return Case(ctx, start_instance(ctx, REQUESTER, "telediagnosis", {}, site_id=SITE.id,
                                    first_task=request_form(**request)))


def _ever_offered(ctx, case: Case) -> set[str]:
    with ctx.read() as session:
        return set(session.execute(select(TaskCandidate.user_id).join(Task, Task.id == TaskCandidate.task_id)
                                   .where(Task.instance_id == case.id)).scalars())


def _timeline(ctx, case: Case, action: str) -> list[dict[str, Any]]:
    import json

    with ctx.read() as session:
        rows = session.execute(select(AuditEvent.detail).where(AuditEvent.instance_id == case.id,
                                                               AuditEvent.action == action)).scalars()
        return [json.loads(r) for r in rows]


def _switch_to_2025(ctx, mode: str = packs.SKIP) -> None:
    assign_pack(ctx, ADMIN, "territory:brest", "2025", NOW.date(), over_cap_mode=mode)


def _escalate(ctx, clock, minutes: int) -> None:
    clock.advance(minutes=minutes)
    fire_due_timers(ctx)


@pytest.mark.charter("CH-9.1")
@pytest.mark.charter("CH-3.5.1", negative=True)
@pytest.mark.charter("CH-3.5.2", negative=True)
def test_the_same_cases_under_2020_then_2025_first_offer_and_escalation_timers(pack_ctx, clock):
    ctx = pack_ctx
    under_2020 = _start(ctx)
    assert under_2020.data["offer"]["candidates"] == ["rad.local"] and under_2020.data["offer"]["pack"] == "2020"
    assert case_pack(ctx, under_2020.id) == "2020"
    _switch_to_2025(ctx)
    under_2025 = _start(ctx)
    # Tier 1 (Brest): rad.local is over the cap, skipped; tier 2 at once: rad.neighbour, not rad.abroad.ok
    # (exclusive: nothing declared).
    offer = under_2025.data["offer"]
    assert (offer["tier"], offer["candidates"], offer["pack"]) == (2, ["rad.neighbour"], "2025")
    assert case_pack(ctx, under_2025.id) == "2025"
    skipped = _timeline(ctx, under_2025, SKIPPED_EVENT)
    assert {(s["radiologist"], s["reason"]) for s in skipped} == {("rad.local", "over_cap"),
                                                                 ("rad.abroad.ok", "exclusive")}
    assert next(s for s in skipped if s["radiologist"] == "rad.local")["share"] == 0.3
    # Escalation timers: tier 3 (rad.region, 50 %) and tier 4 (the company, exclusive) are skipped too.
    for _ in range(3):
        _escalate(ctx, clock, 31)
    assert under_2025.open_tasks() == ["no_radiologist_alert"]
    assert _ever_offered(ctx, under_2025) == {"rad.neighbour"}
    assert {s["radiologist"] for s in _timeline(ctx, under_2025, SKIPPED_EVENT)} == {
        "rad.local", "rad.abroad.ok", "rad.region", "rad.company"}
    # The case started under 2020 keeps its pack: its escalations offer everyone, as before the switch.
    assert _ever_offered(ctx, under_2020) >= {"rad.local", "rad.neighbour", "rad.abroad.ok", "rad.region",
                                                "rad.company"}
    assert _timeline(ctx, under_2020, SKIPPED_EVENT) == []


@pytest.mark.charter("CH-3.5.1", negative=True)
def test_over_cap_radiologist_is_not_offered_on_call_under_2025(pack_ctx, clock):
    ctx = pack_ctx
    clock.set(datetime(2026, 3, 7, 23, 0, tzinfo=UTC))  # Saturday night: rad.local is on call for Brest
    on_2020 = _start(ctx, urgency="vital")
    assert (on_2020.data["offer"]["tier"], on_2020.data["offer"]["candidates"]) == (0, ["rad.local"])
    assign_pack(ctx, ADMIN, "territory:brest", "2025", date(2026, 3, 8))
    on_2025 = _start(ctx, urgency="vital")
    assert "rad.local" not in _ever_offered(ctx, on_2025)
    assert on_2025.data["offer"]["candidates"] == ["rad.neighbour"]
    assert [s["radiologist"] for s in _timeline(ctx, on_2025, SKIPPED_EVENT)][:1] == ["rad.local"]


@pytest.mark.charter("CH-3.5.1", negative=True)
def test_a_direct_call_of_the_pool_operation_and_a_reassignment_skip_him_too(pack_ctx):
    ctx = pack_ctx
    _switch_to_2025(ctx)
    pool = ctx.runtime.operations.get("telerad.candidate_pool")
    offer = pool(SITE.id, 1)
    assert offer["candidates"] == [] and offer["pack"] == "2025"
    assert offer["screens"][-1]["skipped"] == [{"radiologist": "rad.local", "reason": "over_cap", "share": 0.3}]
    case = _start(ctx)
    case.complete("accept_case", radiologist("rad.neighbour"), acceptance="accept")
    replace_radiologist(ctx, Actor.system(), case.id, "Assurance expirée")
    assert "rad.local" not in _ever_offered(ctx, case)


@pytest.mark.charter("CH-3.5.1")
def test_warn_mode_offers_him_with_a_warning_on_the_timeline(pack_ctx):
    ctx = pack_ctx
    _switch_to_2025(ctx, packs.WARN)
    case = _start(ctx)
    assert case.data["offer"]["candidates"] == ["rad.local"]
    assert [w["radiologist"] for w in _timeline(ctx, case, WARNED_EVENT)] == ["rad.local"]
    assert _timeline(ctx, case, SKIPPED_EVENT) == []


@pytest.mark.charter("CH-3.5.2")
@pytest.mark.charter("CH-3.5")
def test_shares_and_the_exclusive_flag(pack_ctx):
    ctx = pack_ctx
    found = {s.username: s for s in shares(ctx, ADMIN)}
    assert (found["rad.local"].teleradiology_acts, found["rad.local"].declared_acts) == (30, 100)
    assert found["rad.local"].share == 0.3 and found["rad.local"].over_cap and not found["rad.local"].exclusive
    assert found["rad.neighbour"].share == 0.02 and not found["rad.neighbour"].over_cap
    assert found["rad.company"].exclusive and found["rad.company"].declared_acts is None
    mine = shares(ctx, radiologist("rad.region"))
    assert [s.username for s in mine] == ["rad.region"]


@pytest.mark.charter("CH-3.5", negative=True)
def test_a_radiologist_sees_and_declares_only_his_own_activity(pack_ctx):
    ctx = pack_ctx
    with pytest.raises(Forbidden):
        shares(ctx, radiologist("rad.region"), "rad.local")
    with pytest.raises(Forbidden):
        declare_activity(ctx, radiologist("rad.region"), "rad.local", date(2026, 1, 1), date(2026, 1, 31), 10)
    with pytest.raises(ShareError, match="fin de la période"):
        declare_activity(ctx, radiologist("rad.region"), "rad.region", date(2026, 1, 31), date(2026, 1, 1), 10)
    with pytest.raises(ShareError, match="entier positif"):
        declare_activity(ctx, radiologist("rad.region"), "rad.region", date(2026, 1, 1), date(2026, 1, 31), -1)
    # Declaring again a period already declared would count its acts twice (and lift him out of the cap): refused.
    with pytest.raises(ShareError, match="déjà déclarée du 01/06/2025 au 28/02/2026"):
        declare_activity(ctx, radiologist("rad.region"), "rad.region", date(2026, 1, 1), date(2026, 1, 31), 400)
    assert shares(ctx, radiologist("rad.region"))[0].declared_acts == 10
    declare_activity(ctx, radiologist("rad.region"), "rad.region", date(2025, 4, 1), date(2025, 5, 31), 40)
    assert shares(ctx, radiologist("rad.region"))[0].declared_acts == 50


@pytest.mark.charter("CH-9.1", negative=True)
def test_assignments_refused_in_french(pack_ctx):
    ctx = pack_ctx
    with pytest.raises(Forbidden):
        assign_pack(ctx, radiologist("rad.local"), "territory:brest", "2025", NOW.date())
    with pytest.raises(PackError, match="inconnue"):
        assign_pack(ctx, ADMIN, "territory:brest", "2031", NOW.date())
    with pytest.raises(PackError, match="passée"):
        assign_pack(ctx, ADMIN, "territory:brest", "2025", NOW.date() - timedelta(days=1))
    with pytest.raises(PackError, match="Territoire inconnu"):
        assign_pack(ctx, ADMIN, "territory:nulle-part", "2025", NOW.date())
    with pytest.raises(PackError, match="organisation"):
        assign_pack(ctx, ADMIN, "site:ch-brest", "2025", NOW.date())


@pytest.mark.charter("CH-3.5.1", negative=True)
def test_the_2025_pack_also_screens_the_tele_expert_a_teleexpertise_names(pack_ctx):
    """A teleexpertise names its expert instead of offering the case to a pool: the experts offered and the one
    chosen go through the same screen (engine.services.eligibility)."""
    ctx = pack_ctx
    assert {"rad.local", "rad.neighbour"} <= {e.user_id for e in eligible_experts(ctx, SITE.id)}  # 2020: no cap
    assert check_expert(ctx, SITE.id, {"expert_id": "rad.local"}, {}) == {}
    _switch_to_2025(ctx)
    offered = {e.user_id for e in eligible_experts(ctx, SITE.id)}
    assert "rad.local" not in offered and "rad.neighbour" in offered  # 30 % > 20 %; 2 % < 20 %
    refused = check_expert(ctx, SITE.id, {"expert_id": "rad.local"}, {})
    assert "dépasse le plafond de 20 % de la charte 2025" in refused["expert_id"]
    assert check_expert(ctx, SITE.id, {"expert_id": "rad.neighbour"}, {}) == {}
    _switch_to_2025(ctx, packs.WARN)  # the organisation only warns: he may be asked again
    assert "rad.local" in {e.user_id for e in eligible_experts(ctx, SITE.id)}
    assert check_expert(ctx, SITE.id, {"expert_id": "rad.local"}, {}) == {}
