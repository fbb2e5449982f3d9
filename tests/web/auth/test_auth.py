"""Login with a password and a TOTP second factor, lock-out, CSRF, idle timeout, safe redirects, security
headers, language switch, and the `users` command (CH-5.3, CH-8.1)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pyotp
import pytest
from click.testing import CliRunner
from flask import Blueprint, Flask, render_template_string, url_for
from flask_login import current_user, login_required

from engine.domain.actors import Actor
from engine.services.accounts import (
    authenticate_password,
    create_user,
    issue_api_token,
    load_profile,
    profile_for_token,
)
from engine.services.accounts_tokens import list_api_tokens
from engine.store.directory_models import User
from web.app import create_app
from web.cli.users import users
from web.config import Settings
from web.shared.redirects import safe_next

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
INBOX = "/inbox/"


def add_test_views(app: Flask) -> None:
    """A stand-in inbox when the real one is not there yet, and a probe telling who is logged in."""
    if "inbox.index" not in app.view_functions:
        inbox = Blueprint("inbox", __name__)
        inbox.add_url_rule(INBOX, "index", login_required(lambda: "boîte de réception"))
        app.register_blueprint(inbox)
    probe = Blueprint("probe", __name__)
    probe.add_url_rule("/_probe", "whoami", login_required(lambda: current_user.username))
    probe.add_url_rule("/_probe/page", "page", login_required(lambda: render_template_string(
        '{% extends "base.html" %}{% block content %}{{ current_user.username }}{% endblock %}')))
    app.register_blueprint(probe)


@pytest.fixture
def app(ctx, database_url, tmp_path):
    settings = replace(Settings.from_env({"TELERAD_INSTANCE_PATH": str(tmp_path / "instance")}),
                       database_url=database_url)
    application = create_app(settings, ctx)
    add_test_views(application)
    return application


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def inbox_url(app):
    with app.test_request_context():
        return url_for("inbox.index")


@pytest.fixture
def user(ctx):
    return create_user(ctx, Actor.system(), "jdupont", "Dr Jeanne Dupont", PASSWORD, ["radiologist"])


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def submit(client, url: str, **data: str):
    """GET the page, then POST its form with the CSRF token it carries (as a browser would)."""
    page = client.get(url)
    return client.post(url, data={"csrf_token": csrf_of(page.get_data(as_text=True)), **data})


def code_now(ctx, clock, steps: int = 0) -> str:
    with ctx.read() as session:
        secret = ctx.keys.decrypt_secret(session.get(User, "jdupont").totp_secret)
    return pyotp.TOTP(secret).at(clock.now() + timedelta(seconds=30 * steps))


def login(client, ctx, clock, url: str = "/login"):
    """Password then code (enrolling first when needed); returns the last response."""
    response = submit(client, url, username="jdupont", password=PASSWORD)
    assert response.status_code == 302, response.get_data(as_text=True)
    return submit(client, response.headers["Location"], code=code_now(ctx, clock))


def logout(client):
    """POST /logout with the token of the logout form of base.html, as the browser would."""
    page = client.get("/_probe/page")
    assert page.status_code == 200
    return client.post("/logout", data={"csrf_token": csrf_of(page.get_data(as_text=True))})


@pytest.mark.charter("CH-5.3")
def test_full_login_flow_password_enrolment_totp_logout(client, ctx, clock, user, inbox_url):
    page = client.get("/login")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and '<html lang="fr">' in html and "Connexion" in html
    assert 'autocomplete="current-password"' in html and "autofocus" in html
    response = submit(client, "/login", username="jdupont", password=PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/login/enrol"
    page = client.get("/login/enrol")
    html = page.get_data(as_text=True)
    assert re.search(r'<div class="qr-code"><svg [^>]*viewBox', html)
    with ctx.read() as session:
        secret = ctx.keys.decrypt_secret(session.get(User, "jdupont").totp_secret)
    assert " ".join(secret[i:i + 4] for i in range(0, 32, 4)) in html
    assert 'autocomplete="one-time-code"' in html and 'inputmode="numeric"' in html
    response = client.post("/login/enrol", data={"csrf_token": csrf_of(html), "code": code_now(ctx, clock)})
    assert response.status_code == 302 and response.headers["Location"] == inbox_url
    assert client.get("/_probe").get_data(as_text=True) == "jdupont"
    assert load_profile(ctx, "jdupont").totp_enrolled
    with client.session_transaction() as sess:
        assert "pending_user" not in sess and sess["seen_at"] == clock.now().timestamp()
    response = logout(client)
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert "Vous êtes déconnecté." in client.get("/login").get_data(as_text=True)
    assert client.get("/_probe").status_code == 302
    # next time: straight to the code page
    clock.advance(seconds=30)
    response = submit(client, "/login", username="jdupont", password=PASSWORD)
    assert response.headers["Location"] == "/login/totp"
    html = client.get("/login/totp").get_data(as_text=True)
    assert "Dr Jeanne Dupont" in html and 'autocomplete="one-time-code"' in html and "autofocus" in html
    response = client.post("/login/totp", data={"csrf_token": csrf_of(html), "code": code_now(ctx, clock)})
    assert response.headers["Location"] == inbox_url
    assert client.get("/_probe").get_data(as_text=True) == "jdupont"


@pytest.mark.charter("CH-5.3", negative=True)
def test_the_password_alone_opens_no_session_on_any_page(client, ctx, clock, user, inbox_url):
    login(client, ctx, clock)  # enrolled once
    logout(client)
    clock.advance(seconds=30)
    response = submit(client, "/login", username="jdupont", password=PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/login/totp"
    for url in ("/_probe", inbox_url, "/cases", "/admin/users"):  # second factor not given yet
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), url
    # The enrolment page does not let an enrolled user past the code check either.
    page = client.get("/login/enrol")  # no new secret shown: back to the code page
    assert page.status_code == 302 and page.headers["Location"] == "/login/totp"
    assert client.get("/_probe").status_code == 302
    wrong = "000000" if code_now(ctx, clock) != "000000" else "111111"
    assert submit(client, "/login/totp", code=wrong).status_code == 200
    assert client.get("/_probe").status_code == 302


@pytest.mark.charter("CH-8.1")
def test_wrong_password_and_unknown_user_get_the_same_message(client, user):
    for username, password in (("jdupont", "not the password"), ("nobody", PASSWORD)):
        response = submit(client, "/login", username=username, password=password)
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert "Identifiant ou mot de passe incorrect." in html
        assert f'value="{username}"' in html and password not in html  # typed name kept, password never echoed
    response = submit(client, "/login", username="", password="")
    html = response.get_data(as_text=True)
    assert "Saisissez votre identifiant." in html and "Saisissez votre mot de passe." in html
    assert 'aria-invalid="true"' in html and 'aria-describedby="username-error"' in html


@pytest.mark.charter("CH-5.3")
def test_five_failures_lock_the_account_until_a_stated_time_then_it_opens_again(client, ctx, clock, user):
    for attempt in range(4):
        html = submit(client, "/login", username="jdupont", password=f"wrong {attempt}").get_data(as_text=True)
        assert "Identifiant ou mot de passe incorrect." in html
    html = submit(client, "/login", username="jdupont", password="wrong 5").get_data(as_text=True)
    assert "Compte verrouillé après 5 échecs consécutifs, jusqu&#39;au 05/01/2026 à 09:15 (heure de Paris)" in html
    clock.advance(minutes=10)
    response = submit(client, "/login", username="jdupont", password=PASSWORD)
    assert response.status_code == 200 and "jusqu&#39;au 05/01/2026 à 09:15" in response.get_data(as_text=True)
    clock.advance(minutes=5)
    response = submit(client, "/login", username="jdupont", password=PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/login/enrol"


@pytest.mark.charter("CH-5.3", negative=True)
def test_a_used_code_is_refused(client, ctx, clock, user, inbox_url):
    assert login(client, ctx, clock).headers["Location"] == inbox_url
    used = code_now(ctx, clock)
    logout(client)
    response = submit(client, "/login", username="jdupont", password=PASSWORD)
    assert response.headers["Location"] == "/login/totp"
    response = submit(client, "/login/totp", code=used)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Ce code a déjà servi" in html and "is-invalid" in html
    assert client.get("/_probe").status_code == 302
    clock.advance(seconds=30)
    assert submit(client, "/login/totp", code=code_now(ctx, clock)).headers["Location"] == inbox_url


@pytest.mark.charter("CH-5.3", negative=True)
def test_wrong_codes_count_and_lock_the_account(client, ctx, clock, user):
    login(client, ctx, clock)  # enrolled
    logout(client)
    clock.advance(seconds=30)
    submit(client, "/login", username="jdupont", password=PASSWORD)
    good = code_now(ctx, clock)
    wrong = "000000" if good != "000000" else "111111"
    for _attempt in range(4):
        html = submit(client, "/login/totp", code=wrong).get_data(as_text=True)
        assert "Code incorrect ou expiré" in html
    response = submit(client, "/login/totp", code=wrong)
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert "Compte verrouillé" in client.get("/login").get_data(as_text=True)
    assert client.get("/login/totp").headers["Location"] == "/login"  # the pending login is gone


@pytest.mark.charter("CH-5.3")
def test_a_pending_login_expires_after_five_minutes(client, ctx, clock, user):
    submit(client, "/login", username="jdupont", password=PASSWORD)
    clock.advance(minutes=5, seconds=1)
    response = client.get("/login/enrol")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert "Le délai de saisie du code est dépassé" in client.get("/login").get_data(as_text=True)
    assert client.get("/login/totp").headers["Location"] == "/login"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:x",
                                    "/\r\nLocation: x", "/\tfoo", "http:/evil.example", "evil.example"])
def test_unsafe_next_targets_are_refused(target):
    assert safe_next(target) is None


def test_safe_next_keeps_local_paths():
    assert safe_next("/cases/12?tab=report") == "/cases/12?tab=report"
    assert safe_next("/inbox/?") == "/inbox/"
    assert safe_next("/login?next=/x") is None and safe_next(None) is None


@pytest.mark.charter("CH-8.1")
def test_next_is_followed_only_when_local(client, ctx, clock, user, inbox_url):
    response = login(client, ctx, clock, "/login?next=https://evil.example/")
    assert response.headers["Location"] == inbox_url
    logout(client)
    clock.advance(seconds=30)
    response = login(client, ctx, clock, "/login?next=/_probe?x=1")
    assert response.headers["Location"] == "/_probe?x=1"


@pytest.mark.charter("CH-8.1")
def test_csrf_is_enforced_on_login_and_logout(client, ctx, clock, user):
    assert client.application.config.get("WTF_CSRF_ENABLED", True) is True
    response = client.post("/login", data={"username": "jdupont", "password": PASSWORD})
    assert response.status_code == 400
    response = client.post("/login", data={"username": "jdupont", "password": PASSWORD, "csrf_token": "forged"})
    assert response.status_code == 400
    login(client, ctx, clock)
    assert client.post("/logout").status_code == 400
    assert client.get("/_probe").get_data(as_text=True) == "jdupont"  # still logged in
    assert client.post("/language", data={"language": "en"}).status_code == 400


@pytest.mark.charter("CH-5.3")
def test_an_idle_session_expires_with_a_french_message(client, ctx, clock, user):
    login(client, ctx, clock)
    assert client.get("/_probe").status_code == 200
    with client.session_transaction() as sess:
        sess["seen_at"] = clock.now().timestamp() - 31 * 60
    response = client.get("/_probe")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Votre session a expiré après une période d&#39;inactivité" in html
    assert client.get("/_probe").status_code == 302


@pytest.mark.charter("CH-8.1")
def test_security_headers_and_no_inline_script_or_style(client, ctx, clock, user):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    submit(client, "/login", username="jdupont", password=PASSWORD)
    enrol = client.get("/login/enrol")
    assert enrol.headers["Cache-Control"] == "no-store"  # the page shows the TOTP secret
    for html in (response.get_data(as_text=True), enrol.get_data(as_text=True)):
        assert " style=" not in html and "<style" not in html
        assert not re.search(r"<script(?![^>]*\bsrc=)", html)
        assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers


def test_pages_are_french_by_default_and_english_on_request(client):
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="fr">' in html and 'lang="en">English</button>' in html
    token = csrf_of(html)
    response = client.post("/language", data={"csrf_token": token, "language": "en", "next": "/login?"})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in html and 'lang="fr">Français</button>' in html
    response = client.post("/language", data={"csrf_token": token, "language": "fr",
                                              "next": "https://evil.example/"})
    assert response.headers["Location"] == "/login"
    assert client.post("/language", data={"csrf_token": token, "language": "de"}).status_code == 400


def test_the_language_choice_survives_login(client, ctx, clock, user):
    client.post("/language", data={"csrf_token": csrf_of(client.get("/login").get_data(as_text=True)),
                                   "language": "en"})
    login(client, ctx, clock)
    with client.session_transaction() as sess:
        assert sess["language"] == "en"


@pytest.mark.charter("CH-5.3")
def test_users_command_creates_accounts_and_tokens(ctx, clock, database_url, tmp_path):
    runner = CliRunner()
    env = {"TELERAD_DATABASE_URL": database_url, "TELERAD_INSTANCE_PATH": str(tmp_path / "instance")}
    result = runner.invoke(users, ["create", "jdupont", "--name", "Dr Jeanne Dupont", "--role", "radiologist",
                                   "--role", "tele_expert", "--password-stdin"], input=PASSWORD + "\n", env=env)
    assert result.exit_code == 0, result.output
    assert "Secret TOTP : " in result.output and "otpauth://totp/Telerad:jdupont?secret=" in result.output
    assert load_profile(ctx, "jdupont").roles == {"radiologist", "tele_expert"}
    assert authenticate_password(ctx, "jdupont", PASSWORD).username == "jdupont"
    result = runner.invoke(users, ["create", "pmartin", "--name", "P", "--role", "requester", "--password-stdin"],
                           input="short\n", env=env)
    assert result.exit_code == 1 and "au moins 12 caractères" in result.output
    result = runner.invoke(users, ["token", "jdupont", "--name", "RIS"], env=env)
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert profile_for_token(ctx, token).username == "jdupont"
    result = runner.invoke(users, ["token", "jdupont", "--name", "RIS", "--revoke"], env=env)
    assert result.exit_code == 0 and profile_for_token(ctx, token) is None
    result = runner.invoke(users, ["token", "jdupont", "--name", "PACS", "--days", "7", "--scope", "read"], env=env)
    assert result.exit_code == 0, result.output
    [pacs] = [t for t in list_api_tokens(ctx, "jdupont") if t.name == "PACS"]
    assert pacs.scope == "read" and timedelta(days=6) < pacs.expires_at - pacs.created_at <= timedelta(days=7)
    result = runner.invoke(users, ["token", "jdupont", "--name", "PACS", "--renew", "--days", "30"], env=env)
    assert result.exit_code == 0 and "renouvelé" in result.output, result.output
    [pacs] = [t for t in list_api_tokens(ctx, "jdupont") if t.name == "PACS"]
    assert pacs.expires_at - pacs.created_at > timedelta(days=29)
    assert runner.invoke(users, ["token", "jdupont", "--name", "X", "--days", "400"], env=env).exit_code == 2
    result = runner.invoke(users, ["reset-totp", "jdupont"], env=env)
    assert result.exit_code == 0 and not load_profile(ctx, "jdupont").totp_enrolled
    result = runner.invoke(users, ["reset-totp", "nobody"], env=env)
    assert result.exit_code == 1 and "Compte inconnu" in result.output
    result = runner.invoke(users, ["set-password", "jdupont", "--password-stdin"], input="another passphrase\n",
                           env=env)
    assert result.exit_code == 0 and authenticate_password(ctx, "jdupont", "another passphrase")
    assert runner.invoke(users, ["unlock", "jdupont"], env=env).exit_code == 0


def test_a_logged_in_browser_session_does_not_authenticate_api_calls_nor_is_rewritten_by_them(
        client, ctx, clock, user, inbox_url):
    login(client, ctx, clock)
    assert client.get(inbox_url).status_code == 200  # the session cookie works for pages
    refused = client.get("/api/v1/tasks")  # the same cookie jar, no bearer token
    assert refused.status_code == 401 and "Set-Cookie" not in refused.headers
    token = issue_api_token(ctx, "jdupont", "tests")
    answered = client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
    assert answered.status_code == 200 and "Set-Cookie" not in answered.headers
    assert client.get(inbox_url).status_code == 200  # still logged in


def test_api_requests_get_the_null_session_and_pages_the_signed_cookie_session(app):
    interface = app.session_interface
    with app.test_request_context("/api/v1/tasks"):
        from flask import request

        assert interface.is_null_session(interface.open_session(app, request))
    with app.test_request_context("/login"):
        from flask import request

        assert not interface.is_null_session(interface.open_session(app, request))
