"""Sessions (flask-login), the second factor, idle timeout, absolute lifetime and role checks. Every view goes
through these.

The session cookie carries the username and the secret of a session kept on the server
(engine.services.user_sessions): the account and its session are loaded by one statement per page, and a
session that was ended (logout, "Mes sessions", an administrator, a change of the account) opens nothing, even
from a copy of the cookie. A session past its absolute lifetime (TELERAD_SESSION_MAX_HOURS) or its idle timeout
(TELERAD_IDLE_MINUTES) sends the person to the login page with a message saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, abort, current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, UserMixin, current_user, logout_user

from engine.domain.actors import Actor
from engine.services.accounts import Profile
from engine.services.user_sessions import SessionLimits, close_session, load_session
from web.extensions import telerad

F = TypeVar("F", bound=Callable[..., Any])
ID_SEPARATOR = "#"  # usernames cannot hold it (engine.services.account_rules), session secrets neither
DEFAULT_SESSION_MAX_HOURS = 12
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = _l("Veuillez vous identifier pour accéder à cette page.")
login_manager.login_message_category = "info"
login_manager.session_protection = "basic"  # "strong" would log out on-call radiologists whose IP changes


class SessionUser(UserMixin):
    def __init__(self, profile: Profile, session_id: int, secret: str):
        self.profile = profile
        self.session_id = session_id  # the user_session row, shown as "cette session" on the sessions page
        self._secret = secret

    def get_id(self) -> str:
        """What the cookie keeps: the username and the secret of the session kept on the server."""
        return f"{self.profile.username}{ID_SEPARATOR}{self._secret}"

    @property
    def username(self) -> str:
        return self.profile.username

    @property
    def is_active(self) -> bool:
        return self.profile.active

    @property
    def actor(self) -> Actor:
        return self.profile.actor

    def has_role(self, *roles: str) -> bool:
        return bool(self.profile.roles.intersection(roles))


@login_manager.user_loader
def _load_user(user_id: str) -> SessionUser | None:
    username, _separator, secret = user_id.rpartition(ID_SEPARATOR)
    loaded = (load_session(telerad(current_app).ctx, secret, session_limits(), touch=not background_request())
              if username else None)
    if loaded is None or loaded.profile.username != username:
        return None  # an unknown secret, or a cookie from before sessions were kept on the server
    if loaded.refusal is not None:
        g.session_refusal = (loaded.refusal, username, loaded.session_id)  # explained by _check_session_age
        return None
    return SessionUser(loaded.profile, loaded.session_id, secret)


def background_request() -> bool:
    """A request the page makes on its own (the live inbox's stream and refreshes): it is authenticated and
    checked like any other, but it is not the person's activity, so it never keeps an idle session alive."""
    return request.endpoint == "inbox.live.events" or request.headers.get("X-Telerad-Background") == "1"


def session_limits() -> SessionLimits:
    """The absolute lifetime and idle timeout of the sessions, from the settings."""
    return current_app.extensions["telerad_session_limits"]  # type: ignore[no-any-return]


def current_actor() -> Actor:
    return current_user.actor  # type: ignore[no-any-return]


def roles_required(*roles: str) -> Callable[[F], F]:
    """Refuse (403) users holding none of these roles; the check is on the server, whatever the menu shows."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def init_security(app: Flask, idle_minutes: int) -> None:
    login_manager.init_app(app)
    max_hours = getattr(telerad(app).settings, "session_max_hours", DEFAULT_SESSION_MAX_HOURS)
    limits = SessionLimits(max_age=timedelta(hours=max_hours), idle=timedelta(minutes=idle_minutes))
    app.extensions["telerad_session_limits"] = limits

    @app.before_request
    def _check_session_age() -> Any:
        if request.endpoint in ("static", "health.healthz") or request.path.startswith("/api/"):
            return None
        ctx = telerad(current_app).ctx
        if not current_user.is_authenticated:
            refused = g.pop("session_refusal", None)
            if refused is None or refused[0] == "ended":
                return None  # ended on purpose: the login page, as for anyone not signed in
            reason, username, session_id = refused
            close_session(ctx, username, session_id, reason)
            return _back_to_login(_("Votre session a atteint sa durée maximale de %(hours)d heures. Identifiez-vous "
                                    "à nouveau.", hours=max_hours) if reason == "lifetime" else _idle_message())
        now = ctx.clock.now().timestamp()
        seen = session.get("seen_at")
        if seen is not None and now - float(seen) > idle_minutes * 60:
            close_session(ctx, current_user.username, current_user.session_id, "idle")
            logout_user()
            return _back_to_login(_idle_message())
        if not background_request():
            session["seen_at"] = now
        return None


def _idle_message() -> str:
    return _("Votre session a expiré après une période d'inactivité. Identifiez-vous à nouveau.")


def _back_to_login(message: str) -> Any:
    """Forget the session (the language choice excepted) and go to the login page, back here afterwards."""
    language = session.get("language")
    session.clear()
    if language:
        session["language"] = language
    flash(message, "warning")
    return redirect(url_for("auth.login", next=request.full_path))
