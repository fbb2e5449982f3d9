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
    assert "Champ inconnu" in refused.get_data(as_text=True)
    with demo_ctx.read() as session:
        assert session.get(Task, task_id).status == "open"
    done = client.post(f"/api/v1/tasks/{task_id}/complete", json={"acceptance": "accept"}, headers=headers)
    assert done.status_code == 200
