"""API tokens expire (90 days by default, 1 to 365 at issue) and are renewed with the same value; a "read" token
may only read: every call that writes gets 403 JSON and changes nothing (issue 16, item 1)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.errors import Forbidden
from engine.services.accounts import AccountError, issue_api_token, profile_for_token, revoke_api_token
from engine.services.accounts_tokens import list_api_tokens
from engine.services.token_access import renew_api_token
from engine.store.directory_models import ApiToken
from engine.store.models import Task
from tests import demo_app
from tests.demo_app import case_of, login, open_task

app, demo_ctx = demo_app.app, demo_app.demo_ctx  # the web app on the demo data (fixtures)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def stored_token(ctx, username, name):
    with ctx.read() as session:
        return session.execute(select(ApiToken).where(ApiToken.username == username, ApiToken.name == name)).scalar()


def test_a_token_expires_90_days_after_its_issue_by_default_and_acts(demo_ctx, clock):
    issue_api_token(demo_ctx, "dr.legall", "ris")
    issue_api_token(demo_ctx, "dr.legall", "tableau", days=7, scope="read")
    default, short = stored_token(demo_ctx, "dr.legall", "ris"), stored_token(demo_ctx, "dr.legall", "tableau")
    assert default.expires_at == clock.now() + timedelta(days=90) and default.scope == "act"
    assert short.expires_at == clock.now() + timedelta(days=7) and short.scope == "read"


@pytest.mark.parametrize("days, scope", [(0, "act"), (366, "act"), (90, "write"), (True, "read")])
def test_a_token_is_refused_outside_1_to_365_days_or_with_an_unknown_scope(demo_ctx, days, scope):
    with pytest.raises(AccountError):
        issue_api_token(demo_ctx, "dr.legall", "ris", days=days, scope=scope)
    assert stored_token(demo_ctx, "dr.legall", "ris") is None


@pytest.mark.charter("CH-8.1", negative=True)
def test_an_expired_token_gets_a_json_401_in_french(app, demo_ctx, clock):
    client = app.test_client()
    token = issue_api_token(demo_ctx, "dr.legall", "ris", days=1)
    assert client.get("/api/v1/tasks", headers=bearer(token)).status_code == 200
    clock.advance(days=1)
    response = client.get("/api/v1/tasks", headers=bearer(token))
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json() == {"error": "token_expired", "message": "Jeton d'accès expiré : renouvelez-le "
                                   "(page « Mes sessions ») ou demandez-en un nouveau."}
    assert profile_for_token(demo_ctx, token) is None  # the other users of tokens refuse it too


@pytest.mark.charter("CH-8.1", negative=True)
def test_a_read_token_reads_and_is_refused_every_write(app, demo_ctx):
    client = app.test_client()
    reader = issue_api_token(demo_ctx, "dr.legall", "tableau", scope="read")
    case_id = case_of(demo_ctx, patient_name="KERMARREC YANN")
    task_id = open_task(demo_ctx, case_id, "accept_case")
    assert task_id in [t["id"] for t in client.get("/api/v1/tasks", headers=bearer(reader)).get_json()["tasks"]]
    assert client.get(f"/api/v1/tasks/{task_id}", headers=bearer(reader)).status_code == 200
    assert client.get(f"/api/v1/cases/{case_id}", headers=bearer(reader)).status_code == 200
    writes = [(f"/api/v1/tasks/{task_id}/claim", None), (f"/api/v1/tasks/{task_id}/unclaim", None),
              (f"/api/v1/tasks/{task_id}/complete", {"acceptance": "accept"}),
              (f"/api/v1/cases/{case_id}/messages", {"body": "Bonjour"}),
              ("/api/v1/cases", {"process": "telediagnosis", "site_id": "ch-brest", "request": {}})]
    for url, body in writes:
        response = client.post(url, json=body, headers=bearer(reader))
        assert response.status_code == 403, url
        assert response.get_json()["error"] == "read_only_token" and "lecture seule" in response.get_json()["message"]
    with demo_ctx.read() as session:
        task = session.get(Task, task_id)
        assert task.status == "open" and task.assignee is None


def test_an_act_token_may_write(app, demo_ctx):
    client = app.test_client()
    actor = issue_api_token(demo_ctx, "dr.legall", "ris", scope="act")
    task_id = open_task(demo_ctx, case_of(demo_ctx, patient_name="KERMARREC YANN"), "accept_case")
    assert client.post(f"/api/v1/tasks/{task_id}/claim", headers=bearer(actor)).status_code == 200


def test_renewal_keeps_the_value_and_sets_a_new_expiry(app, demo_ctx, clock):
    client = app.test_client()
    token = issue_api_token(demo_ctx, "dr.legall", "ris", days=1)
    clock.advance(days=2)
    assert client.get("/api/v1/tasks", headers=bearer(token)).status_code == 401
    expires = renew_api_token(demo_ctx, Actor("dr.legall", frozenset({"radiologist"})), "dr.legall", "ris", days=30)
    assert expires == clock.now() + timedelta(days=30) == stored_token(demo_ctx, "dr.legall", "ris").expires_at
    assert client.get("/api/v1/tasks", headers=bearer(token)).status_code == 200
    revoke_api_token(demo_ctx, "dr.legall", "ris")
    with pytest.raises(AccountError):
        renew_api_token(demo_ctx, Actor("dr.legall"), "dr.legall", "ris")


@pytest.mark.charter("CH-8.1", negative=True)
def test_only_the_holder_or_an_administrator_renews_a_token(demo_ctx):
    issue_api_token(demo_ctx, "dr.legall", "ris")
    with pytest.raises(Forbidden):
        renew_api_token(demo_ctx, Actor("dr.martin", frozenset({"requester"})), "dr.legall", "ris")
    renew_api_token(demo_ctx, Actor("admin", frozenset({"administrator"})), "dr.legall", "ris", days=10)


def test_my_sessions_page_shows_and_renews_my_tokens(app, demo_ctx, clock):
    issue_api_token(demo_ctx, "dr.legall", "ris", days=1)
    issue_api_token(demo_ctx, "dr.legall", "tableau", scope="read")
    client = login(app, demo_ctx, clock, "dr.legall")
    clock.advance(seconds=1)
    page = client.get("/account/sessions").get_data(as_text=True)
    assert "Mes jetons d’API" in page and "ris" in page and "Lecture seule" in page and "Lecture et actions" in page
    renewed = client.post("/account/tokens/renew", data={"name": "ris", "days": "120"}, follow_redirects=True)
    assert "Jeton « ris » renouvelé" in renewed.get_data(as_text=True)
    assert stored_token(demo_ctx, "dr.legall", "ris").expires_at == clock.now() + timedelta(days=120)
    refused = client.post("/account/tokens/renew", data={"name": "ris", "days": "400"}, follow_redirects=True)
    assert "De 1 à 365 jours." in refused.get_data(as_text=True)


@pytest.mark.charter("CH-8.1", negative=True)
def test_renewing_someone_elses_token_from_my_page_is_refused(app, demo_ctx, clock):
    issue_api_token(demo_ctx, "dr.legall", "ris", days=1)
    intruder = login(app, demo_ctx, clock, "dr.martin")
    assert intruder.post("/account/tokens/renew", data={"name": "ris", "days": "365"}).status_code == 404
    assert stored_token(demo_ctx, "dr.legall", "ris").expires_at == clock.now() + timedelta(days=1)


def test_an_administrator_sees_and_renews_a_users_tokens(app, demo_ctx, clock):
    issue_api_token(demo_ctx, "dr.legall", "ris", days=1)
    admin = login(app, demo_ctx, clock, "admin")
    page = admin.get("/admin/users/dr.legall").get_data(as_text=True)
    assert "Jetons d’API" in page and "ris" in page
    admin.post("/admin/users/dr.legall/tokens/renew", data={"name": "ris", "days": "90"})
    assert [t.expires_at for t in list_api_tokens(demo_ctx, "dr.legall")] == [clock.now() + timedelta(days=90)]
