"""The report is signed with its author's current TOTP code (issue 17, item 5), checked by the charter gate on every
entry point: the page, the JSON API and the service. A missing, wrong or replayed code refuses the report and writes
nothing of it; the right code signs it (who, when: case data, global audit chain), then it is released as before."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from engine.errors import CharterRefused
from engine.services.instances import case_data
from engine.services.tasks import complete_task
from engine.store.directory_models import User
from engine.store.models import AuditEvent, Task
from engine.store.report_models import ReportAddendum
from tests import demo_app
from tests.demo_app import login, open_task
from tests.signing import signature_code
from tests.web.clinical.test_charter_negative_pages import Api, open_steps, xr_case_at_interpretation
from web.cli.demo_data import _actor as demo_actor

app, demo_ctx = demo_app.app, demo_app.demo_ctx

REPORT = {"outcome": "report", "technique": "Radiographie face et profil.", "findings": "Pas de fracture visible.",
          "conclusion": "Radiographie normale.", "certainty": "certain", "urgent_finding": False,
          "poor_prognosis": False}
RADIOLOGIST = "dr.legall"


def failures(ctx, username: str = RADIOLOGIST) -> int:
    with ctx.read() as session:
        return session.get(User, username).failed_logins


def signed_events(ctx) -> list[Any]:
    with ctx.read() as session:
        return list(session.execute(select(AuditEvent).where(AuditEvent.action == "report.signed")).scalars())


def used_code(ctx) -> str:
    """A code whose step the radiologist has just used (for the replay tests)."""
    code = signature_code(ctx, RADIOLOGIST)
    with ctx.write() as session:
        user = session.get(User, RADIOLOGIST)
        user.totp_last_step = int(ctx.clock.now().timestamp()) // 30
        session.commit()
    return code


def assert_nothing_written(ctx, case_id: int) -> None:
    assert open_steps(ctx, case_id) == ["interpret"]
    assert "conclusion" not in case_data(ctx, case_id)
    assert signed_events(ctx) == []


@pytest.mark.charter("CH-5.3", negative=True)
@pytest.mark.parametrize("code", [None, "", "000000", "replayed"])
def test_the_service_refuses_a_report_without_a_valid_signature(demo_ctx, code):
    case_id = xr_case_at_interpretation(demo_ctx)
    data = dict(REPORT)
    if code is not None:
        data["signature_code"] = used_code(demo_ctx) if code == "replayed" else code
    with pytest.raises(CharterRefused) as refused:
        complete_task(demo_ctx, demo_actor(RADIOLOGIST), open_task(demo_ctx, case_id, "interpret"), data)
    assert "Signature refusée" in str(refused.value) and "CH-5.3" in str(refused.value)
    assert_nothing_written(demo_ctx, case_id)
    # A wrong or replayed code is a failed authentication (toward the lock-out); a missing one is not.
    assert failures(demo_ctx) == (1 if code in ("000000", "replayed") else 0)


@pytest.mark.charter("CH-5.3", negative=True)
def test_the_api_refuses_a_report_without_a_valid_signature(app, demo_ctx):
    case_id = xr_case_at_interpretation(demo_ctx)
    api = Api(app, demo_ctx, RADIOLOGIST)
    task_id = open_task(demo_ctx, case_id, "interpret")
    for body in (REPORT, {**REPORT, "signature_code": "123456"}, {**REPORT, "signature_code": used_code(demo_ctx)}):
        response = api.post(f"/tasks/{task_id}/complete", body)
        assert response.status_code == 409, response.get_json()
        assert "Signature refusée" in response.get_json()["message"]
    assert_nothing_written(demo_ctx, case_id)
    response = api.post(f"/tasks/{task_id}/complete", {**REPORT, "signature_code": "12345x"})
    assert response.status_code == 422 and "signature_code" in response.get_json()["fields"]


def form_of(code: str) -> dict[str, str]:
    return {"outcome": "report", "technique": REPORT["technique"], "findings": REPORT["findings"],
            "conclusion": REPORT["conclusion"], "certainty": "certain", "signature_code": code}


@pytest.mark.charter("CH-5.3", negative=True)
def test_the_task_page_refuses_a_report_without_a_valid_signature(app, demo_ctx, clock):
    case_id = xr_case_at_interpretation(demo_ctx)
    client = login(app, demo_ctx, clock, RADIOLOGIST)
    task_id = open_task(demo_ctx, case_id, "interpret")
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "Code de signature (6 chiffres)" in page
    for code in ("", "000000", used_code(demo_ctx)):
        response = client.post(f"/tasks/{task_id}", data=form_of(code))
        assert response.status_code == 200  # the task page again, with what was typed, not the inbox
        answer = response.get_data(as_text=True)
        assert "Signature refusée" in answer and REPORT["conclusion"] in answer
    assert_nothing_written(demo_ctx, case_id)


@pytest.mark.charter("CH-5.3")
@pytest.mark.charter("CH-4.1.12")
def test_the_right_code_signs_releases_and_shows_the_report(app, demo_ctx, clock):
    case_id = xr_case_at_interpretation(demo_ctx)
    client = login(app, demo_ctx, clock, RADIOLOGIST)
    task_id = open_task(demo_ctx, case_id, "interpret")
    response = client.post(f"/tasks/{task_id}", data=form_of(signature_code(demo_ctx, RADIOLOGIST)))
    assert response.status_code == 302
    assert open_steps(demo_ctx, case_id) == ["acknowledge_report"]  # released to the requester
    data = case_data(demo_ctx, case_id)
    assert "signature_code" not in data and "signature_code" not in repr(data)
    assert data["report_signed"]["by"] == RADIOLOGIST and data["report_signed"]["role"] == "report"
    assert data["conclusion"] == REPORT["conclusion"]
    [event] = signed_events(demo_ctx)
    assert event.actor == RADIOLOGIST and json.loads(event.detail)["role"] == "report"
    assert failures(demo_ctx) == 0
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Signé électroniquement par" in page
    with demo_ctx.read() as session:
        assert session.get(Task, task_id).status == "completed"


def signed_and_released(app, demo_ctx, clock) -> tuple[int, Any]:
    case_id = xr_case_at_interpretation(demo_ctx)
    client = login(app, demo_ctx, clock, RADIOLOGIST)
    client.post(f"/tasks/{open_task(demo_ctx, case_id, 'interpret')}", data=form_of(signature_code(demo_ctx,
                                                                                                  RADIOLOGIST)))
    assert open_steps(demo_ctx, case_id) == ["acknowledge_report"]
    return case_id, client


def addenda(ctx, case_id: int) -> list[ReportAddendum]:
    with ctx.read() as session:
        return list(session.execute(select(ReportAddendum).where(ReportAddendum.instance_id == case_id)).scalars())


def case_events(ctx, case_id: int, action: str) -> list[Any]:
    with ctx.read() as session:
        return list(session.execute(select(AuditEvent).where(AuditEvent.instance_id == case_id,
                                                             AuditEvent.action == action)).scalars())


@pytest.mark.charter("CH-5.3")
def test_a_signed_addendum_keeps_the_original_and_is_shown_and_audited(app, demo_ctx, clock):
    case_id, client = signed_and_released(app, demo_ctx, clock)
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Signer et ajouter" in page
    text = "Addendum : fissure de la styloïde ulnaire visible sur le profil."
    response = client.post(f"/cases/{case_id}/addenda", data={"text": text,
                                                             "signature_code": signature_code(demo_ctx, RADIOLOGIST)})
    assert response.status_code == 302
    [row] = addenda(demo_ctx, case_id)
    assert row.author == RADIOLOGIST and row.text == text
    assert case_data(demo_ctx, case_id)["conclusion"] == REPORT["conclusion"]  # the original is unchanged
    assert len(case_events(demo_ctx, case_id, "report.addendum")) == 1
    requester = login(app, demo_ctx, clock, "dr.martin")
    page = requester.get(f"/cases/{case_id}").get_data(as_text=True)
    assert text in page and "Addendum signé électroniquement par" in page
    assert "Signer et ajouter" not in page  # the requester reads it, does not add one


@pytest.mark.charter("CH-5.3", negative=True)
def test_an_addendum_is_refused_without_a_valid_code_or_from_someone_not_allowed(app, demo_ctx, clock):
    case_id, client = signed_and_released(app, demo_ctx, clock)
    for code in ("", "000000"):
        response = client.post(f"/cases/{case_id}/addenda", data={"text": "Complément.", "signature_code": code},
                               follow_redirects=True)
        assert response.status_code == 200 and "Signature refusée" in response.get_data(as_text=True)
    response = client.post(f"/cases/{case_id}/addenda", data={"text": "  ", "signature_code": "123456"})
    assert response.status_code == 302
    requester = login(app, demo_ctx, clock, "dr.martin")
    response = requester.post(f"/cases/{case_id}/addenda", data={
        "text": "Complément.", "signature_code": signature_code(demo_ctx, "dr.martin")})
    assert response.status_code == 403
    other = login(app, demo_ctx, clock, "dr.morvan")
    response = other.post(f"/cases/{case_id}/addenda", data={
        "text": "Complément.", "signature_code": signature_code(demo_ctx, "dr.morvan")})
    assert response.status_code in (403, 404)
    assert addenda(demo_ctx, case_id) == [] and case_events(demo_ctx, case_id, "report.addendum") == []


@pytest.mark.charter("CH-4.1.13", negative=True)
def test_addenda_are_withheld_with_a_poor_prognosis_report_until_the_plan_is_confirmed(demo_ctx):
    from engine.services.cases import case_record
    from engine.services.report_addenda import list_addenda

    case_id = xr_case_at_interpretation(demo_ctx)
    radiologist = demo_actor(RADIOLOGIST)
    complete_task(demo_ctx, radiologist, open_task(demo_ctx, case_id, "interpret"),
                  {**REPORT, "poor_prognosis": True, "signature_code": signature_code(demo_ctx, RADIOLOGIST)})
    with demo_ctx.write() as session:  # an addendum already there (written as the service would)
        session.add(ReportAddendum(instance_id=case_id, author=RADIOLOGIST, text="Complément.",
                                   signed_at=demo_ctx.clock.now()))
        session.commit()
    technologist = demo_actor("merm.leroy")
    shown = case_record(demo_ctx, technologist, case_id).data
    assert list_addenda(demo_ctx, technologist, case_id, shown) == []
    mine = case_record(demo_ctx, radiologist, case_id).data
    assert [a.text for a in list_addenda(demo_ctx, radiologist, case_id, mine)] == ["Complément."]


@pytest.mark.charter("CH-5.3", negative=True)
@pytest.mark.charter("CH-4.2.3")
def test_the_tele_experts_opinion_is_signed_too(app, demo_ctx):
    from tests.web.clinical.test_charter_negative_pages import TE_REQUEST, step

    local, expert = Api(app, demo_ctx, "dr.kerbrat"), Api(app, demo_ctx, RADIOLOGIST)
    response = local.post("/cases", {"process": "teleexpertise", "site_id": "ch-morlaix", "request": TE_REQUEST})
    case_id = response.get_json()["id"]
    step(demo_ctx, case_id, "te_consent", "dr.kerbrat", {"patient_informed": True, "consent": "given"})
    assert expert.post(f"/tasks/{open_task(demo_ctx, case_id, 'te_check')}/complete",
                       {"file_complete": True}).status_code == 200
    task_id = open_task(demo_ctx, case_id, "te_report")
    opinion = {"opinion": "Kyste Bosniak II.", "conclusion": "Surveillance à 6 mois.", "send_to_requester": False,
               "patient_requested": False}
    response = expert.post(f"/tasks/{task_id}/complete", opinion)
    assert response.status_code == 409 and "CH-5.3" in response.get_json()["message"]
    assert open_task(demo_ctx, case_id, "te_report") == task_id and "opinion" not in case_data(demo_ctx, case_id)
    response = expert.post(f"/tasks/{task_id}/complete",
                           {**opinion, "signature_code": signature_code(demo_ctx, RADIOLOGIST)})
    assert response.status_code == 200, response.get_json()
    signed = case_data(demo_ctx, case_id)["report_signed"]
    assert signed["by"] == RADIOLOGIST and signed["role"] == "expert_opinion"


def test_the_signed_event_of_the_case_chain_is_built_only_for_a_newly_signed_report():
    from engine.services.report_signature import signed_events

    class Live:
        def __init__(self, data):
            self.data = data

        def latest_data(self):
            return self.data

    signed = {"by": RADIOLOGIST, "at": "2026-01-05T08:00:00+00:00", "role": "report", "task": "interpret"}
    [event] = signed_events(7, Live({"report_signed": signed}), {"report"})
    assert (event.actor, event.action, event.instance_id, event.detail) == (RADIOLOGIST, "report.signed", 7, signed)
    assert signed_events(7, Live({"report_signed": signed}), {"acquisition"}) == []
    assert signed_events(7, Live({}), {"report"}) == []
