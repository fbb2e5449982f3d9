"""Signed-cookie sessions for the pages; none for the JSON API, whose callers present a bearer token."""

from __future__ import annotations

from typing import Any

from flask import Flask, Request
from flask.sessions import SecureCookieSessionInterface, SessionMixin

API_PREFIX = "/api/"


class PagesOnlySessionInterface(SecureCookieSessionInterface):
    """API requests get Flask's null session: their cookies are neither read nor written (a browser's session
    cookie sent along does not authenticate an API call, and reading and re-signing it on every call cost
    about 3% of an API call's CPU)."""

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if request.path.startswith(API_PREFIX):
            return self.make_null_session(app)
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Any) -> None:
        if self.is_null_session(session):
            return
        super().save_session(app, session, response)
