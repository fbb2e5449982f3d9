"""CH-4.1.13 through the services: a poor-prognosis report is readable only by the reporting radiologist and the
requester until the requester confirms the announcement plan; the case record, the case search, a direct call of
the redaction and the HL7 report all hold it back from everyone else until then."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.domain.report_visibility import announcement_pending, report_readers
from engine.services.cases import case_record, list_cases
from engine.services.instances import case_data
from engine.services.report_visibility import WITHHELD_KEY, WITHHELD_MESSAGE, redact_report, report_embargoed
from engine.services.tasks import complete_task, list_tasks
from engine.store.models import AuditEvent, Task
from integrations.hl7.models import Hl7Outbox
from integrations.hl7.outbox import install
from integrations.hl7.senders import set_endpoint
from tests import demo_app
from tests.signing import signed

demo_ctx = demo_app.demo_ctx  # the demo directory, accounts and cases (fixture)

REQUESTER = Actor("dr.martin", frozenset({"requester"}), frozenset({"ch-brest"}))
TECHNOLOGIST = Actor("merm.leroy", frozenset({"technologist"}), frozenset({"ch-brest"}))
RADIOLOGIST = Actor("dr.legall", frozenset({"radiologist", "tele_expert"}), frozenset())
SITE_LEAD = Actor("dr.guillou", frozenset({"site_lead"}), frozenset({"ch-brest"}))
COLLEAGUE = Actor("dr.colleague", frozenset({"requester"}), frozenset({"ch-brest"}))  # another physician
SITE_ADMIN = Actor("admin.brest", frozenset({"administrator"}), frozenset({"ch-brest"}))
OTHERS = (TECHNOLOGIST, SITE_LEAD, COLLEAGUE, SITE_ADMIN)
FINDINGS = "Masse lobaire supérieure droite de 45 mm, adénopathies médiastinales."
CONCLUSION = "Aspect de carcinome bronchique métastatique."
REPORT = {"outcome": "report", "technique": "Acquisition sans injection, coupes fines.", "findings": FINDINGS,
          "conclusion": CONCLUSION, "certainty": "uncertain", "complementary_strategy": "Biopsie sous scanner.",
          "urgent_finding": False, "poor_prognosis": True}
PLAN = {"plan_confirmed": True, "announcer": "Dr Martin", "planned_at": "2026-01-06T10:00"}


def complete(ctx, case_id: int, spec: str, actor: Actor, data: dict[str, Any]) -> None:
    task = next(t for t in list_tasks(ctx, actor) if t.instance_id == case_id and t.spec_name == spec)
    complete_task(ctx, actor, task.id, data)


def open_specs(ctx, case_id: int) -> list[str]:
    with ctx.read() as session:
        return sorted(session.execute(select(Task.spec_name).where(Task.instance_id == case_id,
                                                                   Task.status == "open")).scalars())


def reported_case(ctx, **report: Any) -> int:
    """The demo's wrist X-ray case (at acquisition), acquired and reported by dr.legall."""
    with ctx.read() as session:
        case_id = session.execute(select(Task.instance_id).where(Task.spec_name == "acquire_images",
                                                                 Task.status == "open")).scalar_one()
    complete(ctx, case_id, "acquire_images", TECHNOLOGIST, {"images_sent": True, "protocol_followed": True,
                                                            "technical_difficulty": False})
    complete(ctx, case_id, "interpret", RADIOLOGIST, signed(ctx, "dr.legall", {**REPORT, **report}))
    return case_id


def announce(ctx, case_id: int) -> None:
    complete(ctx, case_id, "propose_announcement", RADIOLOGIST,
             {"announcement_proposal": "Annonce en consultation par le Dr Martin, avec l'infirmière."})
    complete(ctx, case_id, "confirm_announcement_plan", REQUESTER, PLAN)


def assert_withheld(data: dict[str, Any]) -> None:
    for name in ("findings", "conclusion", "technique", "complementary_strategy", "announcement_proposal"):
        assert name not in data, name
    assert data[WITHHELD_KEY] == WITHHELD_MESSAGE
    assert CONCLUSION not in repr(data) and FINDINGS not in repr(data)


def assert_readable(data: dict[str, Any]) -> None:
    assert data["findings"] == FINDINGS and data["conclusion"] == CONCLUSION
    assert WITHHELD_KEY not in data


@pytest.mark.charter("CH-4.1.13", negative=True)
def test_other_site_members_do_not_read_the_report_before_the_plan_is_confirmed(demo_ctx):
    case_id = reported_case(demo_ctx)
    assert open_specs(demo_ctx, case_id) == ["propose_announcement"]
    for other in OTHERS:
        assert_withheld(case_record(demo_ctx, other, case_id).data)
    for party in (REQUESTER, RADIOLOGIST):
        assert_readable(case_record(demo_ctx, party, case_id).data)
    complete(demo_ctx, case_id, "propose_announcement", RADIOLOGIST,
             {"announcement_proposal": "Annonce en consultation par le Dr Martin, avec l'infirmière."})
    for other in OTHERS:  # proposed is not confirmed
        assert_withheld(case_record(demo_ctx, other, case_id).data)
    complete(demo_ctx, case_id, "confirm_announcement_plan", REQUESTER, PLAN)
    for reader in (*OTHERS, REQUESTER, RADIOLOGIST):
        assert_readable(case_record(demo_ctx, reader, case_id).data)


@pytest.mark.charter("CH-4.1.13", negative=True)
@pytest.mark.charter("CH-5.3")
def test_a_withheld_read_is_audited_as_such(demo_ctx):
    case_id = reported_case(demo_ctx)
    assert_withheld(case_record(demo_ctx, TECHNOLOGIST, case_id).data)
    assert_readable(case_record(demo_ctx, REQUESTER, case_id).data)
    with demo_ctx.read() as session:
        reads = session.execute(select(AuditEvent.actor, AuditEvent.detail).where(
            AuditEvent.instance_id == case_id, AuditEvent.action == "case.viewed").order_by(AuditEvent.id)).all()
    assert [(actor, json.loads(detail)) for actor, detail in reads] == [
        ("merm.leroy", {"report_withheld": True}), ("dr.martin", {})]


@pytest.mark.charter("CH-4.1.13", negative=True)
def test_the_case_search_neither_matches_nor_shows_report_text(demo_ctx):
    case_id = reported_case(demo_ctx)
    for actor in (*OTHERS, REQUESTER):
        assert list_cases(demo_ctx, actor, query="carcinome") == []
        assert list_cases(demo_ctx, actor, query=CONCLUSION) == []
    lines = [line for line in list_cases(demo_ctx, TECHNOLOGIST, query="QUÉRÉ") if line.id == case_id]
    assert len(lines) == 1
    assert CONCLUSION not in repr(lines[0]) and "carcinome" not in repr(lines[0]).lower()


@pytest.mark.charter("CH-4.1.13", negative=True)
def test_direct_service_call_redacts_for_everyone_but_the_two_physicians(demo_ctx):
    case_id = reported_case(demo_ctx)
    data = case_data(demo_ctx, case_id)
    assert report_embargoed(data)
    assert report_readers(data) == frozenset({"dr.martin", "dr.legall"})
    for other in OTHERS:
        assert_withheld(redact_report(other, data))
    assert_readable(redact_report(REQUESTER, data))
    assert_readable(redact_report(RADIOLOGIST, data))
    assert_readable(redact_report(Actor.system(), data))
    announce(demo_ctx, case_id)
    data = case_data(demo_ctx, case_id)
    assert not report_embargoed(data)
    assert_readable(redact_report(TECHNOLOGIST, data))


@pytest.mark.charter("CH-4.1.13")
def test_a_report_without_poor_prognosis_is_read_by_every_site_member(demo_ctx):
    case_id = reported_case(demo_ctx, poor_prognosis=False)
    for reader in OTHERS:
        assert_readable(case_record(demo_ctx, reader, case_id).data)


@pytest.mark.charter("CH-4.1.13", negative=True)
def test_no_hl7_report_leaves_before_the_plan_is_confirmed(demo_ctx):
    install(demo_ctx)  # the save hook that queues the ORU^R01 of a released report
    set_endpoint(demo_ctx, Actor.system(), "ch-brest", "127.0.0.1", 1)  # the site takes its reports over HL7

    def queued() -> int:
        with demo_ctx.read() as session:
            return len(session.execute(select(Hl7Outbox.id).where(Hl7Outbox.kind == "ORU")).all())

    case_id = reported_case(demo_ctx, urgent_finding=False)
    complete(demo_ctx, case_id, "propose_announcement", RADIOLOGIST,
             {"announcement_proposal": "Annonce en consultation."})
    assert queued() == 0 and "release" not in case_data(demo_ctx, case_id)
    complete(demo_ctx, case_id, "confirm_announcement_plan", REQUESTER, PLAN)
    assert "release" in case_data(demo_ctx, case_id) and queued() == 1


@pytest.mark.charter("CH-4.1.13", negative=True)
def test_charter_facts_decide_when_present_and_forms_cannot_forge_a_confirmation():
    report = {"role": "report", "seq": 4, "by": "dr.legall", "values": {"poor_prognosis": True}}
    forged = {"poor_prognosis": True, "plan_confirmed": True}  # a confirmation in the data, none in the facts
    assert announcement_pending(forged, {"roles": {"report": report}})
    confirmed = {"role": "announcement", "seq": 7, "values": {"plan_confirmed": True}}
    assert not announcement_pending({}, {"roles": {"report": report, "announcement": confirmed}})
    earlier = {**confirmed, "seq": 2}  # a plan confirmed for an earlier report does not cover a new one
    assert announcement_pending({}, {"roles": {"report": report, "announcement": earlier}})
    assert report_readers({"requester_id": "dr.martin"}, {"roles": {"report": report}}) == {"dr.martin",
                                                                                            "dr.legall"}
    # without facts (a diagram whose elements carry no charter role), the forms' data decide
    assert announcement_pending({"poor_prognosis": True}, None)
    assert not announcement_pending({"poor_prognosis": True, "plan_confirmed": True}, {"roles": {}})
