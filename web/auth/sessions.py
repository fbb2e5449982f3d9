"""Signed-cookie sessions for the pages; read-only ones for the JSON API, whose callers present a bearer token."""

from __future__ import annotations

from typing import Any

from flask import Flask, Request, request
from flask.sessions import SecureCookieSessionInterface, SessionMixin

API_PREFIX = "/api/"


class PagesOnlySessionInterface(SecureCookieSessionInterface):
    """An API request without a session cookie (every API client) gets Flask's null session: no signer is
    built and nothing is written back, which cost about 3% of an API call's CPU. A browser calling the API
    with its cookie still has it read (its language for error messages) but never rewritten by the API; the
    cookie never authenticates an API call (bearer tokens only, web/api/routes.py)."""

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if request.path.startswith(API_PREFIX) and not request.cookies.get(self.get_cookie_name(app)):
            return self.make_null_session(app)
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Any) -> None:
        if self.is_null_session(session) or request.path.startswith(API_PREFIX):
            return
        super().save_session(app, session, response)
