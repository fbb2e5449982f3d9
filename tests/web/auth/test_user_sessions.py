"""Sessions kept one by one on the server (issue 16, item 1): "Mes sessions" lists them and ends one or the others,
an administrator sees and ends a user's, a session has an absolute lifetime besides the idle timeout, and a copy
of an ended session's cookie opens nothing."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlalchemy import select

from engine.store.directory_models import UserSession
from engine.store.models import AuditEvent
from tests import demo_app
from tests.demo_app import login
from web.app import create_app
from web.config import Settings
from web.shared.formatting import PARIS

app, demo_ctx = demo_app.app, demo_app.demo_ctx  # the web app on the demo data (fixtures)
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"


def copy_of(app, client):
    """A second browser holding a copy of the first one's session cookie."""
    thief = app.test_client()
    thief.set_cookie("telerad_session", client.get_cookie("telerad_session").value)
    return thief


def signed_in(client) -> bool:
    return client.get("/inbox").status_code == 200


def sessions_of(ctx, username):
    with ctx.read() as session:
        return list(session.execute(select(UserSession).where(UserSession.username == username)
                                    .order_by(UserSession.id)).scalars())


def audit_actions(ctx, action):
    with ctx.read() as session:
        events = session.execute(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
        return [(e.actor, json.loads(e.detail)) for e in events.scalars()]


def second_device(app, ctx, clock, username):
    clock.advance(seconds=30)  # a TOTP code is good once only
    browser = app.test_client()
    browser.environ_base["HTTP_USER_AGENT"] = FIREFOX
    return login(app, ctx, clock, username, client=browser)


def test_a_session_row_keeps_only_a_hash_of_the_cookie_secret(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    [row] = sessions_of(demo_ctx, "dr.legall")
    cookie = client.get_cookie("telerad_session").value
    assert len(row.secret_hash) == 64 and row.secret_hash not in cookie
    assert row.created_at == clock.now() and row.ended_at is None and row.client_address == "127.0.0.1"


def test_my_sessions_page_lists_the_sessions_and_marks_this_one(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    second_device(app, demo_ctx, clock, "dr.legall")
    page = client.get("/account/sessions")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Mes sessions" in html
    assert html.count('id="session-') == 2 and html.count("cette session") == 1
    assert "Firefox — Windows" in html and "127.0.0.1" in html
    assert clock.now().astimezone(PARIS).strftime("%d/%m/%Y %H:%M") in html
    assert "Terminer toutes mes autres sessions" in html


@pytest.mark.charter("CH-8.1", negative=True)
def test_a_session_ended_from_my_sessions_refuses_a_copy_of_its_cookie(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    laptop = second_device(app, demo_ctx, clock, "dr.legall")
    thief = copy_of(app, laptop)
    laptop_session = sessions_of(demo_ctx, "dr.legall")[1].id
    assert signed_in(thief)
    response = client.post(f"/account/sessions/{laptop_session}/end")
    assert response.status_code == 302
    assert not signed_in(laptop) and not signed_in(thief) and signed_in(client)
    assert audit_actions(demo_ctx, "auth.session_ended") == [
        ("dr.legall", {"username": "dr.legall", "session_id": laptop_session})]


def test_ending_this_session_from_my_sessions_logs_out(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    thief = copy_of(app, client)
    own = sessions_of(demo_ctx, "dr.legall")[0].id
    response = client.post(f"/account/sessions/{own}/end")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "vous êtes déconnecté" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert not signed_in(client) and not signed_in(thief)


@pytest.mark.charter("CH-8.1", negative=True)
def test_ending_all_other_sessions_keeps_this_one(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    others = [second_device(app, demo_ctx, clock, "dr.legall") for _ in range(2)]
    client.post("/account/sessions/end-others")
    assert signed_in(client) and not any(signed_in(other) for other in others)
    assert [row.end_reason for row in sessions_of(demo_ctx, "dr.legall")] == [None, "ended_by_user", "ended_by_user"]


@pytest.mark.charter("CH-8.1", negative=True)
def test_ending_someone_elses_session_by_its_url_is_refused(app, demo_ctx, clock):
    victim = login(app, demo_ctx, clock, "dr.legall")
    victim_session = sessions_of(demo_ctx, "dr.legall")[0].id
    intruder = login(app, demo_ctx, clock, "dr.martin")
    assert intruder.post(f"/account/sessions/{victim_session}/end").status_code == 404
    assert intruder.post("/account/sessions/99999999/end").status_code == 404
    assert intruder.post(f"/admin/users/dr.legall/sessions/{victim_session}/end").status_code == 403
    assert intruder.post("/admin/users/dr.legall/sessions/end-all").status_code == 403
    assert signed_in(victim) and "dr.legall" not in intruder.get("/account/sessions").get_data(as_text=True)


@pytest.mark.charter("CH-8.1", negative=True)
def test_ending_a_session_needs_the_csrf_token(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    own = sessions_of(demo_ctx, "dr.legall")[0].id
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.post(f"/account/sessions/{own}/end").status_code == 400
    assert client.post("/account/sessions/end-others").status_code == 400
    app.config["WTF_CSRF_ENABLED"] = False
    assert signed_in(client)


@pytest.mark.charter("CH-8.1", negative=True)
def test_an_administrator_sees_and_ends_a_users_sessions(app, demo_ctx, clock):
    phone = login(app, demo_ctx, clock, "dr.legall")
    laptop = second_device(app, demo_ctx, clock, "dr.legall")
    admin = login(app, demo_ctx, clock, "admin")
    first, second = (row.id for row in sessions_of(demo_ctx, "dr.legall"))
    page = admin.get("/admin/users/dr.legall").get_data(as_text=True)
    assert "Sessions ouvertes" in page and f'id="session-{first}"' in page and f'id="session-{second}"' in page
    assert admin.post(f"/admin/users/dr.legall/sessions/{first}/end").status_code == 302
    assert not signed_in(phone) and signed_in(laptop)
    assert admin.post(f"/admin/users/dr.legall/sessions/{first}/end").status_code == 404  # already ended
    assert admin.post(f"/admin/users/dr.martin/sessions/{second}/end").status_code == 404  # not dr.martin's
    admin.post("/admin/users/dr.legall/sessions/end-all")
    assert not signed_in(laptop) and signed_in(admin)
    assert audit_actions(demo_ctx, "auth.session_ended") == [
        ("admin", {"username": "dr.legall", "session_id": first})]
    assert audit_actions(demo_ctx, "auth.sessions_ended") == [
        ("admin", {"username": "dr.legall", "sessions": [second]})]
    assert 'id="session-' not in admin.get("/admin/users/dr.legall").get_data(as_text=True)


@pytest.mark.charter("CH-8.1", negative=True)
def test_a_session_ends_after_its_absolute_lifetime_whatever_the_activity(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    thief = copy_of(app, client)
    for _ in range(35):  # active every 20 minutes: the idle timeout never ends it
        clock.advance(minutes=20)
        assert signed_in(client)
    clock.advance(minutes=20)  # 12 hours since the login
    response = client.get("/inbox")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Votre session a atteint sa durée maximale de 12 heures" in page
    assert not signed_in(thief)
    [row] = sessions_of(demo_ctx, "dr.legall")
    assert row.end_reason == "lifetime" and row.ended_at == clock.now()
    assert signed_in(login(app, demo_ctx, clock, "dr.legall"))


def test_the_absolute_lifetime_follows_the_setting(demo_ctx, database_url, tmp_path, clock):
    settings = replace(Settings.from_env({"TELERAD_INSTANCE_PATH": str(tmp_path / "instance"),
                                          "TELERAD_SESSION_MAX_HOURS": "1"}), database_url=database_url)
    application = create_app(settings, demo_ctx)
    application.config["WTF_CSRF_ENABLED"] = False
    client = login(application, demo_ctx, clock, "dr.legall")
    for _ in range(2):
        clock.advance(minutes=25)  # within the idle timeout (30 minutes) and the hour
        assert signed_in(client)
    clock.advance(minutes=11)
    response = client.get("/inbox")
    assert response.status_code == 302
    assert "durée maximale de 1 heures" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_last_activity_is_written_at_most_once_a_minute(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    opened = clock.now()
    clock.advance(seconds=50)
    assert signed_in(client)
    assert sessions_of(demo_ctx, "dr.legall")[0].last_seen_at == opened
    clock.advance(seconds=20)
    assert signed_in(client)
    assert sessions_of(demo_ctx, "dr.legall")[0].last_seen_at == clock.now()


@pytest.mark.charter("CH-8.1", negative=True)
def test_an_idle_session_is_ended_on_the_server(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    thief = copy_of(app, client)
    clock.advance(minutes=32)
    response = thief.get("/inbox")
    assert response.status_code == 302
    assert "inactivité" in thief.get(response.headers["Location"]).get_data(as_text=True)
    assert not signed_in(client)
    assert sessions_of(demo_ctx, "dr.legall")[0].end_reason == "idle"


def test_sessions_older_than_30_days_are_deleted_at_the_next_login(app, demo_ctx, clock):
    login(app, demo_ctx, clock, "dr.legall")
    clock.advance(days=29)
    login(app, demo_ctx, clock, "dr.legall")
    assert len(sessions_of(demo_ctx, "dr.legall")) == 2
    clock.advance(days=2)
    login(app, demo_ctx, clock, "dr.legall")
    assert [row.created_at for row in sessions_of(demo_ctx, "dr.legall")][-1] == clock.now()
    assert len(sessions_of(demo_ctx, "dr.legall")) == 2  # the first one, 31 days old, is gone
