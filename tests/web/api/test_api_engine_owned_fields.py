"""CH-9.1 / CH-4.1: a task completion cannot write the case data the engine's operations own. A buggy or hurried
client that sends the offer (its charter pack, its tier) or the radiologist's profile with an answer is refused
with a French 422, and the task stays open."""

from __future__ import annotations

import pytest

from engine.services.accounts import issue_api_token
from engine.store.models import Task
from tests.demo_app import app, case_of, demo_ctx, open_task  # noqa: F401  (fixtures)


@pytest.mark.parametrize("forged", [{"offer": {"pack": "2020", "tier": 1}}, {"radiologist": {"username": "x"}},
                                    {"release": True}])
def test_an_answer_carrying_engine_owned_data_is_refused(app, demo_ctx, forged):  # noqa: F811
    client = app.test_client()
    headers = {"Authorization": f"Bearer {issue_api_token(demo_ctx, 'dr.legall', 'tests')}"}
    task_id = open_task(demo_ctx, case_of(demo_ctx, patient_name="KERMARREC YANN"), "accept_case")
    refused = client.post(f"/api/v1/tasks/{task_id}/complete", json={"acceptance": "accept", **forged},
                          headers=headers)
    assert refused.status_code == 422, refused.get_data(as_text=True)
    assert "écrite par le moteur" in next(iter(refused.get_json()["fields"].values()))
    with demo_ctx.read() as session:
        assert session.get(Task, task_id).status == "open"
    done = client.post(f"/api/v1/tasks/{task_id}/complete", json={"acceptance": "accept"}, headers=headers)
    assert done.status_code == 200


def test_a_request_carrying_the_offer_creates_no_case(app, demo_ctx):  # noqa: F811
    from engine.store.models import ProcessInstance
    from web.cli.demo_data import demo_request

    token = issue_api_token(demo_ctx, "dr.martin", "tests")
    with demo_ctx.read() as session:
        before = session.query(ProcessInstance).count()
    forged = {**demo_request(), "offer": {"pack": "2020", "tier": 4, "candidates": ["dr.legall"]}}
    refused = app.test_client().post("/api/v1/cases", json={
        "process": "telediagnosis", "site_id": "ch-brest", "request": forged},
        headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 422 and "offer" in refused.get_json()["fields"]
    with demo_ctx.read() as session:
        assert session.query(ProcessInstance).count() == before
