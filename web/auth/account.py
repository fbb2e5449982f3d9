""""Mes sessions": every signed-in person sees where their account is signed in (started, last activity, address,
browser) and ends one session or all the others; they also see their API tokens (scope, expiry) and renew them
(issue 16; CH-8.1).

Every change is a POST with its CSRF token; the engine services check again that the session or token is the
person's (someone else's session id gives 404, never a 500) and record it in the audit chain.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, logout_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField
from wtforms.validators import DataRequired, InputRequired, NumberRange

from engine.errors import Forbidden, NotFound
from engine.services.accounts import AccountError
from engine.services.accounts_tokens import DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS, list_api_tokens
from engine.services.context import EngineContext
from engine.services.token_access import renew_api_token
from engine.services.user_sessions import end_other_sessions, end_session, list_sessions
from web.auth.access import current_actor, session_limits
from web.extensions import telerad
from web.shared.formatting import paris_time

bp = Blueprint("account", __name__, url_prefix="/account")

_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
             ("Safari/", "Safari"), ("curl/", "curl"))
_SYSTEMS = (("Windows", "Windows"), ("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iOS"),
            ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


class EndForm(FlaskForm):
    """A button only: the CSRF token is its one field."""


class RenewTokenForm(FlaskForm):
    name = HiddenField(validators=[DataRequired()])
    days = IntegerField(_l("Durée (jours)"), default=DEFAULT_TOKEN_DAYS, validators=[
        InputRequired(_l("Saisissez une durée en jours.")),
        NumberRange(1, MAX_TOKEN_DAYS, _l("De 1 à %(max)d jours.", max=MAX_TOKEN_DAYS))],
        render_kw={"min": 1, "max": MAX_TOKEN_DAYS, "inputmode": "numeric"})


@bp.app_template_filter("browser")
def browser_label(user_agent: str | None) -> str:
    """A short name of the browser and system of a session, from its User-Agent ("Firefox — Windows")."""
    if not user_agent:
        return "—"
    browser = next((name for marker, name in _BROWSERS if marker in user_agent), None)
    system = next((name for marker, name in _SYSTEMS if marker in user_agent), None)
    if browser is None and system is None:
        return user_agent[:60]
    return " — ".join(part for part in (browser, system) if part)


@bp.get("/sessions")
@login_required
def sessions() -> Any:
    username = current_user.username
    return render_template("auth/sessions.html", sessions=list_sessions(_ctx(), current_actor(), username,
                                                                        session_limits()),
                           tokens=list_api_tokens(_ctx(), username), now=_ctx().clock.now(),
                           current_session=current_user.session_id,
                           max_hours=int(session_limits().max_age.total_seconds() // 3600))


@bp.post("/sessions/<int:session_id>/end")
@login_required
def end_one(session_id: int) -> Any:
    _check_form()
    try:
        end_session(_ctx(), current_actor(), current_user.username, session_id, session_limits())
    except NotFound:
        abort(404)
    if session_id == current_user.session_id:
        logout_user()
        flash(_("Vous avez terminé cette session : vous êtes déconnecté."), "info")
        return redirect(url_for("auth.login"))
    flash(_("Session terminée : ce navigateur devra s'identifier à nouveau."), "success")
    return redirect(url_for("account.sessions"))


@bp.post("/sessions/end-others")
@login_required
def end_others() -> Any:
    _check_form()
    count = end_other_sessions(_ctx(), current_actor(), current_user.username, current_user.session_id,
                               session_limits())
    flash(_("%(count)d autre(s) session(s) terminée(s).", count=count) if count
          else _("Aucune autre session ouverte."), "success" if count else "info")
    return redirect(url_for("account.sessions"))


@bp.post("/tokens/renew")
@login_required
def renew_token() -> Any:
    form = RenewTokenForm()
    if not form.validate():
        flash(" ".join(str(e) for e in form.days.errors) or _("Demande invalide."), "danger")
        return redirect(url_for("account.sessions"))
    try:
        expires = renew_api_token(_ctx(), current_actor(), current_user.username, form.name.data or "",
                                  form.days.data or DEFAULT_TOKEN_DAYS)
    except (AccountError, Forbidden):
        abort(404)  # not one of this person's active tokens
    flash(_("Jeton « %(name)s » renouvelé : il expire le %(day)s (heure de Paris). Sa valeur ne change pas.",
            name=form.name.data, day=paris_time(expires)), "success")
    return redirect(url_for("account.sessions"))


def _check_form() -> None:
    if not EndForm().validate():
        abort(400)


def _ctx() -> EngineContext:
    return telerad(current_app).ctx
