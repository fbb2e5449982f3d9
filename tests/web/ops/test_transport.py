"""Behind a TLS reverse proxy (TELERAD_PUBLIC_URL https://..., TELERAD_TRUSTED_PROXIES): the session cookie is
Secure, browsers are told to keep to https (HSTS), and the proxy's forwarded headers are believed only when the
administrator says a proxy is there (issue 16: no Secure flag and no proxy handling behind TLS)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask import request

from web.app import create_app
from web.config import Settings, SettingsError


def make_app(ctx, database_url, tmp_path, **env):
    settings = replace(Settings.from_env({"TELERAD_INSTANCE_PATH": str(tmp_path / "instance"), **env}),
                       database_url=database_url)
    app = create_app(settings, ctx)

    @app.get("/_test/where")
    def where():  # what the views see of the client
        return {"scheme": request.scheme, "host": request.host, "remote_addr": request.remote_addr}

    return app


def session_cookie(response) -> str:
    return next(value for value in response.headers.getlist("Set-Cookie") if value.startswith("telerad_session="))


@pytest.mark.charter("CH-8.1")
def test_over_https_the_session_cookie_is_secure_and_hsts_is_sent(ctx, database_url, tmp_path):
    app = make_app(ctx, database_url, tmp_path, TELERAD_PUBLIC_URL="https://telerad.chu.example",
                   TELERAD_TRUSTED_PROXIES="1")
    response = app.test_client().get("/login", headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 200
    cookie = session_cookie(response)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


@pytest.mark.charter("CH-8.1", negative=True)
def test_without_a_public_https_address_nothing_claims_tls(ctx, database_url, tmp_path):
    response = make_app(ctx, database_url, tmp_path).test_client().get("/login")
    assert "Secure" not in session_cookie(response)
    assert "Strict-Transport-Security" not in response.headers


def test_forwarded_headers_are_believed_only_from_a_declared_proxy(ctx, database_url, tmp_path):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.1.2.3", "X-Forwarded-Host": "telerad.example"}
    behind = make_app(ctx, database_url, tmp_path, TELERAD_PUBLIC_URL="https://telerad.example",
                      TELERAD_TRUSTED_PROXIES="1").test_client().get("/_test/where", headers=forwarded).get_json()
    assert behind == {"scheme": "https", "host": "telerad.example", "remote_addr": "10.1.2.3"}
    direct = make_app(ctx, database_url, tmp_path / "direct").test_client().get(
        "/_test/where", headers=forwarded).get_json()
    assert direct["scheme"] == "http" and direct["remote_addr"] == "127.0.0.1" and direct["host"] == "localhost"


@pytest.mark.parametrize("value", ["telerad.example", "ftp://telerad.example", "https://", "https://x.example/?a=1"])
def test_a_malformed_public_address_is_refused_at_start_up(value, tmp_path):
    with pytest.raises(SettingsError, match="TELERAD_PUBLIC_URL"):
        Settings.from_env({"TELERAD_INSTANCE_PATH": str(tmp_path), "TELERAD_PUBLIC_URL": value})
