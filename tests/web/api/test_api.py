"""The JSON API on the demo data: bearer tokens, the same checks as the pages, its OpenAPI description."""

from __future__ import annotations

import pytest

from engine.services.accounts import issue_api_token
from tests import demo_app
from tests.demo_app import case_of, open_task

app, demo_ctx = demo_app.app, demo_app.demo_ctx  # the web app on the demo data (fixtures)


@pytest.mark.charter("CH-5.3", negative=True)
def test_api_applies_the_same_checks_with_bearer_tokens(app, demo_ctx):
    client = app.test_client()
    token = issue_api_token(demo_ctx, "dr.legall", "tests")
    outsider = issue_api_token(demo_ctx, "dr.kerbrat", "tests")
    case_id = case_of(demo_ctx, patient_name="KERMARREC YANN")
    task_id = open_task(demo_ctx, case_id, "accept_case")
    assert client.get("/api/v1/tasks").status_code == 401
    tasks = client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"}).get_json()["tasks"]
    assert task_id in [t["id"] for t in tasks]
    detail = client.get(f"/api/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert detail["schema"]["title"] == "Acceptation du dossier"
    bad = client.post(f"/api/v1/tasks/{task_id}/complete", json={"acceptance": "maybe"},
                      headers={"Authorization": f"Bearer {token}"})
    assert bad.status_code == 422 and "acceptance" in bad.get_json()["fields"]
    for url in (f"/api/v1/cases/{case_id}", f"/api/v1/tasks/{task_id}", f"/api/v1/cases/{case_id}/messages"):
        assert client.get(url, headers={"Authorization": f"Bearer {outsider}"}).status_code == 404, url
    done = client.post(f"/api/v1/tasks/{task_id}/complete", json={"acceptance": "accept"},
                       headers={"Authorization": f"Bearer {token}"})
    assert done.status_code == 200
    again = client.post(f"/api/v1/tasks/{task_id}/complete", json={"acceptance": "accept"},
                        headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 409
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.") and "/tasks/{task_id}/complete" in spec["paths"]


def test_the_case_answer_carries_what_each_step_recorded_and_the_history_in_words(app, demo_ctx):
    """What the case page shows, the API gives (issue 17, item 1): each completed step's recorded fields with
    their French labels, who and when, and the history as sentences."""
    client = app.test_client()
    token = issue_api_token(demo_ctx, "dr.legall", "tests")
    case_id = case_of(demo_ctx, patient_name="KERMARREC YANN")
    headers = {"Authorization": f"Bearer {token}"}
    done = client.post(f"/api/v1/tasks/{open_task(demo_ctx, case_id, 'accept_case')}/complete",
                       json={"acceptance": "accept"}, headers=headers)
    assert done.status_code == 200
    body = client.get(f"/api/v1/cases/{case_id}", headers=headers).get_json()
    accepted = [step for step in body["steps"] if step["task"] == "accept_case"]
    assert accepted and accepted[-1]["by"] == "dr.legall" and accepted[-1]["by_name"] == "Dr Yann Le Gall (radiologue)"
    assert {"label": "Décision", "name": "acceptance", "value": "J'accepte ce dossier"} in accepted[-1]["fields"]
    texts = [entry["text"] for entry in body["history"]]
    assert texts and all(entry["action"] != entry["text"] for entry in body["history"])
    assert not any("dr.legall" in text for text in texts)


@pytest.mark.charter("CH-4.1.12", negative=True)
def test_an_urgent_request_without_a_callback_phone_is_refused_by_the_api(app, demo_ctx):
    from web.cli.demo_data import demo_request

    token = issue_api_token(demo_ctx, "dr.martin", "tests")
    request_data = {k: v for k, v in demo_request(urgency="vital").items() if k != "callback_phone"}
    refused = app.test_client().post("/api/v1/cases", json={
        "process": "telediagnosis", "site_id": "ch-brest", "request": request_data},
        headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 422 and "callback_phone" in refused.get_json()["fields"]
