"""The engine's charter gates reached through the pages and the JSON API: the refusal comes back in the right
protocol (French message on the page, 409/422 JSON on the API), nothing of the step is written, and the attempt is
traced."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select, update

from engine.domain.actors import Actor
from engine.services.accounts import issue_api_token
from engine.services.instances import case_data
from engine.services.tasks import complete_task, list_tasks
from engine.store.directory_models import User
from engine.store.models import AuditEvent, ProcessInstance, Task
from tests.demo_app import app, demo_ctx, login  # noqa: F401  (fixtures)
from web.cli.demo_data import _actor as demo_actor


def _actor(ctx, username: str) -> Actor:
    return demo_actor(username)


def _task(ctx, username: str, spec: str) -> tuple[int, str]:
    task = next(t for t in list_tasks(ctx, _actor(ctx, username)) if t.spec_name == spec)
    return task.instance_id, task.id


def _to_justify(ctx) -> tuple[int, str]:
    """The demo's second case (accepted by dr.legall): informed and identified, waiting for the justification."""
    case_id, task_id = _task(ctx, "dr.martin", "inform_patient")
    complete_task(ctx, _actor(ctx, "dr.martin"), task_id, {"patient_informed": True, "consent": "given"})
    _, task_id = _task(ctx, "merm.leroy", "check_identity")
    complete_task(ctx, _actor(ctx, "merm.leroy"), task_id, {
        "identity_checked": True, "identity_status": "qualified", "identity_document": "id_card"})
    return _task(ctx, "dr.legall", "justify")


def _open_steps(ctx, case_id: int) -> list[str]:
    with ctx.read() as session:
        return sorted(session.execute(select(Task.spec_name).where(Task.instance_id == case_id,
                                                                    Task.status == "open")).scalars())


def _refusals(ctx, case_id: int) -> list[dict]:
    with ctx.read() as session:
        return [json.loads(d) for d in session.execute(select(AuditEvent.detail).where(
            AuditEvent.chain == case_id, AuditEvent.action == "charter.refused")).scalars()]


def _lapse_insurance(ctx, username: str) -> None:
    with ctx.write() as session:
        session.execute(update(User).where(User.username == username).values(insurance_expires=date(2020, 1, 1)))
        session.commit()


@pytest.mark.charter("CH-3.1", negative=True)
def test_CH3_1_lapsed_radiologist_is_refused_through_the_api(app, demo_ctx):  # noqa: F811
    case_id, task_id = _to_justify(demo_ctx)
    _lapse_insurance(demo_ctx, "dr.legall")
    token = issue_api_token(demo_ctx, "dr.legall", "tests")
    response = app.test_client().post(f"/api/v1/tasks/{task_id}/complete", json={"justification": "validate"},
                                      headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 409
    body = response.get_json()
    assert body["error"] == "charter_refused" and "Assurance RCP expirée" in body["message"]
    assert [r["rule"] for r in body["refusals"]] == ["CH-3.1"]
    assert _refusals(demo_ctx, case_id)[0]["refusals"][0]["rule"] == "CH-3.1"
    with demo_ctx.read() as session:  # nothing of his step written; the case is offered again through routing
        assert session.get(Task, task_id).status == "cancelled"
        assert session.get(ProcessInstance, case_id).status == "running"
    assert "justification" not in case_data(demo_ctx, case_id)
    assert _open_steps(demo_ctx, case_id) == ["accept_case"]


@pytest.mark.charter("CH-3.1", negative=True)
def test_CH3_1_lapsed_radiologist_sees_the_reason_on_the_task_page(app, demo_ctx, clock):  # noqa: F811
    case_id, task_id = _to_justify(demo_ctx)
    _lapse_insurance(demo_ctx, "dr.legall")
    client = login(app, demo_ctx, clock, "dr.legall")
    response = client.post(f"/tasks/{task_id}", data={"justification": "validate"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "charte de téléradiologie" in page and "CH-3.1" in page
    assert "proposé à nouveau" in page
    with demo_ctx.read() as session:
        assert session.get(ProcessInstance, case_id).status == "running"
    assert _open_steps(demo_ctx, case_id) == ["accept_case"]
    # The requester reads on the case why it went back to the offer, in words, with no internal code.
    timeline = login(app, demo_ctx, clock, "dr.martin").get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Dossier proposé à nouveau aux radiologues : Assurance RCP expirée" in timeline
    assert "Refusé au titre de la charte" in timeline
    assert "case.rerouted" not in timeline and "charter.refused" not in timeline


@pytest.mark.charter("CH-4.1.9", negative=True)
def test_CH4_1_9_protocol_of_another_modality_refused_through_the_api(app, demo_ctx):  # noqa: F811
    case_id, task_id = _to_justify(demo_ctx)
    complete_task(demo_ctx, _actor(demo_ctx, "dr.legall"), task_id, {"justification": "validate"})
    _, task_id = _task(demo_ctx, "dr.legall", "choose_protocol")
    token = issue_api_token(demo_ctx, "dr.legall", "tests")
    response = app.test_client().post(f"/api/v1/tasks/{task_id}/complete", json={"protocol": "mr_brain"},
                                      headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422 and "protocol" in response.get_json()["fields"]
    response = app.test_client().post(f"/api/v1/tasks/{task_id}/complete", json={"protocol": "ct_chest_angio"},
                                      headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200  # the CT angiography goes to the contrast checks
    assert {t.spec_name for t in list_tasks(demo_ctx, _actor(demo_ctx, "dr.legall"))
            if t.instance_id == case_id} == {"check_contraindications_radiologist"}


@pytest.mark.charter("CH-4.1.1", negative=True)
@pytest.mark.charter("CH-4.1.6", negative=True)
def test_CH4_1_1_future_exam_date_and_wrong_ins_key_refused_through_the_api(app, demo_ctx):  # noqa: F811
    from web.cli.demo_data import demo_request

    token = issue_api_token(demo_ctx, "dr.martin", "tests")
    headers = {"Authorization": f"Bearer {token}"}
    with demo_ctx.read() as session:
        before = session.execute(select(ProcessInstance.id)).scalars().all()
    future = demo_request(clinical_exam_date="2099-01-01")
    response = app.test_client().post("/api/v1/cases", json={"process": "telediagnosis", "site_id": "ch-brest",
                                                             "request": future}, headers=headers)
    assert response.status_code == 422, response.get_json()
    bad_ins = demo_request(patient={**demo_request()["patient"], "ins": "150032912345678"})
    response = app.test_client().post("/api/v1/cases", json={"process": "telediagnosis", "site_id": "ch-brest",
                                                             "request": bad_ins}, headers=headers)
    assert response.status_code == 422, response.get_json()
    with demo_ctx.read() as session:
        assert session.execute(select(ProcessInstance.id)).scalars().all() == before
