"""Charter violations tried through the engine services (the direct call a buggy client or a script would make):
each one is refused, and nothing of it is written (the case stays at the same step, no row is added)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from engine.domain.actors import Actor
from engine.domain.oncall import OnCallSlot
from engine.errors import NotFound
from engine.ports import InMemoryDirectory
from engine.services.bootstrap import default_operations
from engine.services.cases import post_message
from engine.services.definitions import deploy_library
from engine.services.instances import start_instance
from engine.services.tasks import complete_task, list_tasks
from engine.services.timers import fire_due_timers
from engine.store.directory_models import CaseMessage
from engine.store.models import ProcessInstance
from forms import FormValidationError, default_registry
from tests.workflows.conftest import (
    CONVENTION,
    RADIOLOGISTS,
    REQUESTER,
    SITE,
    SITE_LEAD,
    TECHNOLOGIST,
    TERRITORIES,
    WORKFLOWS,
    Case,
    accept,
    consent_and_identity,
    radiologist,
    request_form,
)

REPORT = {"outcome": "report", "findings": "Hématome sous-dural aigu.", "conclusion": "Hématome sous-dural.",
          "certainty": "certain", "urgent_finding": True, "poor_prognosis": False}
OUTSIDER_REQUESTER = Actor("dr.morlaix", frozenset({"requester"}), frozenset({"ch-morlaix"}))


def case_count(ctx) -> int:
    with ctx.read() as session:
        return session.execute(select(func.count()).select_from(ProcessInstance)).scalar_one()


def message_count(ctx, case_id: int) -> int:
    with ctx.read() as session:
        return session.execute(select(func.count()).select_from(CaseMessage)
                               .where(CaseMessage.instance_id == case_id)).scalar_one()


def to_interpret(case: Case) -> Actor:
    rad = accept(case)
    consent_and_identity(case)
    case.complete("justify", rad, justification="validate")
    case.complete("choose_protocol", rad, protocol="ct_head_plain")
    case.complete("acquire_images", TECHNOLOGIST, images_sent=True, protocol_followed=True,
                  technical_difficulty=False)
    assert case.open_tasks() == ["interpret"]
    return rad


@pytest.mark.charter("CH-1.1")
def test_CH1_1_an_unknown_process_cannot_be_started_as_a_case(charter_ctx):
    before = case_count(charter_ctx)
    with pytest.raises(NotFound):
        start_instance(charter_ctx, REQUESTER, "teleconsultation", {}, site_id="ch-brest",
                       first_task=request_form())
    assert case_count(charter_ctx) == before


@pytest.mark.charter("CH-1.1", negative=True)
def test_a_support_process_cannot_be_started_as_a_case_by_a_direct_call(charter_ctx):
    before = case_count(charter_ctx)
    with pytest.raises((NotFound, FormValidationError)):
        start_instance(charter_ctx, TECHNOLOGIST, "image_identity_check", {}, site_id="ch-brest",
                       first_task={"decision": "attach", "comment": "Vérifié avec la modalité."})
    assert case_count(charter_ctx) == before


@pytest.mark.charter("CH-3.3", negative=True)
def test_CH3_3_a_tier_2_radiologist_cannot_see_or_accept_before_tier_1_has_run_out_of_time(
        new_case, charter_ctx, clock):
    case = new_case()
    neighbour = radiologist("rad.neighbour")  # tier 2 (Morlaix) for a Brest site
    task_id = case.task_id("accept_case", radiologist("rad.local"))
    clock.advance(minutes=14)  # shipped accept_tier1: PT15M, not yet run out
    assert fire_due_timers(charter_ctx).fired == 0
    assert [t for t in list_tasks(charter_ctx, neighbour) if t.instance_id == case.id] == []
    with pytest.raises(NotFound):
        complete_task(charter_ctx, neighbour, task_id, {"acceptance": "accept"})
    assert case.data["offer"]["tier"] == 1 and case.data["offer"]["candidates"] == ["rad.local"]
    assert "radiologist_id" not in case.data
    assert case.open_tasks() == ["accept_case"]


@pytest.mark.charter("CH-5.5", negative=True)
@pytest.mark.charter("CH-3.3", negative=True)
def test_CH5_5_out_of_hours_a_radiologist_not_on_call_cannot_take_the_case_ahead_of_the_on_call_one(
        make_ctx, clock):
    clock.set(datetime(2026, 1, 10, 1, 10, tzinfo=UTC))  # Saturday night, Paris time
    slot = OnCallSlot("brest", "rad.neighbour", datetime(2026, 1, 9, 17, 30, tzinfo=UTC),
                      datetime(2026, 1, 12, 7, 0, tzinfo=UTC))
    directory = InMemoryDirectory([SITE], TERRITORIES, [CONVENTION], RADIOLOGISTS, [slot])
    ctx = make_ctx(operations=default_operations(directory, clock), forms=default_registry(), escalation=None)
    deploy_library(ctx, Actor("designer"), WORKFLOWS)
    case = Case(ctx, start_instance(ctx, REQUESTER, "telediagnosis", {}, site_id="ch-brest",
                                    first_task=request_form(urgency="vital")))
    task_id = case.task_id("accept_case", radiologist("rad.neighbour"))
    local = radiologist("rad.local")  # tier 1 by day, but not on call tonight
    assert [t for t in list_tasks(ctx, local) if t.instance_id == case.id] == []
    with pytest.raises(NotFound):
        complete_task(ctx, local, task_id, {"acceptance": "accept"})
    assert case.data["offer"]["candidates"] == ["rad.neighbour"] and "radiologist_id" not in case.data


@pytest.mark.charter("CH-5.5", negative=True)
@pytest.mark.charter("CH-3.3", negative=True)
def test_CH5_5_the_no_radiologist_alert_cannot_be_closed_without_what_was_done(new_case, charter_ctx, clock):
    case = new_case()
    for minutes in (16, 16, 31, 31):  # every tier runs out of time
        clock.advance(minutes=minutes)
        fire_due_timers(charter_ctx)
    assert case.open_tasks() == ["no_radiologist_alert"]
    for data in ({"alert_outcome": "handled_locally"}, {"alert_outcome": "handled_locally", "action_taken": ""},
                 {"action_taken": "Patient transféré au CHU."}):
        with pytest.raises(FormValidationError):
            case.complete("no_radiologist_alert", SITE_LEAD, **data)
    assert case.status == "running" and case.open_tasks() == ["no_radiologist_alert"]


@pytest.mark.charter("CH-4.1.5", negative=True)
def test_CH4_1_5_someone_outside_the_case_cannot_post_in_its_dialogue(new_case, charter_ctx):
    case = new_case()
    before = message_count(charter_ctx, case.id)
    for outsider in (OUTSIDER_REQUESTER, radiologist("rad.region")):  # another site; a tier-3 radiologist
        with pytest.raises(NotFound):
            post_message(charter_ctx, outsider, case.id, "Je donne mon avis sur ce dossier.")
    assert message_count(charter_ctx, case.id) == before
    post_message(charter_ctx, REQUESTER, case.id, "Patient sous apixaban.")  # a member of the case may
    assert message_count(charter_ctx, case.id) == before + 1


@pytest.mark.charter("CH-4.1.12", negative=True)
def test_CH4_1_12_an_urgent_finding_is_not_released_without_the_recorded_phone_call(new_case):
    case = new_case(urgency="urgent")
    rad = to_interpret(case)
    case.complete("interpret", rad, **REPORT)
    assert case.open_tasks() == ["record_phone_call"]
    for missing in ("caller", "callee", "called_at", "summary"):
        call = {"caller": "Dr Le Gall", "callee": "Dr Requester", "called_at": "2026-01-05T12:05",
                "summary": "Hématome sous-dural aigu, avis neurochirurgical."}
        del call[missing]
        with pytest.raises(FormValidationError) as refused:
            case.complete("record_phone_call", rad, **call)
        assert missing in refused.value.errors
    assert case.open_tasks() == ["record_phone_call"]
    assert "release" not in case.data  # the report is not released to the requester
    assert [t for t in list_tasks(case.ctx, REQUESTER) if t.instance_id == case.id] == []


@pytest.mark.charter("CH-4.1.14", negative=True)
def test_CH4_1_14_a_refusal_without_its_reason_is_refused(new_case):
    case = new_case()
    rad = to_interpret(case)
    case.complete("interpret", rad, outcome="refuse")
    assert case.open_tasks() == ["state_refusal"]
    complete = {"refusal_reason": "insufficient_quality", "refusal_detail": "Artéfacts de mouvement majeurs.",
                "refusal_follow_up": "convention_fallback"}
    for missing in complete:
        with pytest.raises(FormValidationError) as refused:
            case.complete("state_refusal", rad, **{k: v for k, v in complete.items() if k != missing})
        assert missing in refused.value.errors
    with pytest.raises(FormValidationError):
        case.complete("state_refusal", rad, **{**complete, "refusal_detail": ""})
    assert case.status == "running" and case.open_tasks() == ["state_refusal"]
    assert "refusal_reason" not in case.data
