"""Sessions (flask-login), the second factor, idle timeout and role checks. Every view goes through these."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, abort, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, UserMixin, current_user, logout_user

from engine.domain.actors import Actor
from engine.services.accounts import Profile, load_profile
from web.extensions import telerad

F = TypeVar("F", bound=Callable[..., Any])
EPOCH_SEPARATOR = "#"  # usernames cannot hold it (engine.services.account_rules)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = _l("Veuillez vous identifier pour accéder à cette page.")
login_manager.login_message_category = "info"
login_manager.session_protection = "basic"  # "strong" would log out on-call radiologists whose IP changes


class SessionUser(UserMixin):
    def __init__(self, profile: Profile):
        self.profile = profile

    def get_id(self) -> str:
        """What the session keeps: the username and the account's session epoch, so that the sessions end when
        the epoch moves (logout, password, second factor, roles or sites, deactivation)."""
        return f"{self.profile.username}{EPOCH_SEPARATOR}{self.profile.session_epoch}"

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
def _load_user(session_id: str) -> SessionUser | None:
    username, _separator, epoch = session_id.rpartition(EPOCH_SEPARATOR)
    profile = load_profile(telerad(current_app).ctx, username) if username else None
    if profile is None or not profile.active or not profile.totp_enrolled or str(profile.session_epoch) != epoch:
        return None  # a session opened before the account's sessions were ended, or a cookie from before it
    return SessionUser(profile)


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

    @app.before_request
    def _expire_idle_sessions() -> Any:
        if request.endpoint in ("static", "health.healthz") or request.path.startswith("/api/"):
            return None
        if not current_user.is_authenticated:
            return None
        now = telerad(current_app).ctx.clock.now().timestamp()
        seen = session.get("seen_at")
        if seen is not None and now - float(seen) > idle_minutes * 60:
            from engine.services.accounts import record_logout

            record_logout(telerad(current_app).ctx, current_user.username, "idle")
            logout_user()
            language = session.get("language")
            session.clear()
            if language:
                session["language"] = language
            flash(_("Votre session a expiré après une période d'inactivité. Identifiez-vous à nouveau."), "warning")
            return redirect(url_for("auth.login", next=request.full_path))
        session["seen_at"] = now
        return None
