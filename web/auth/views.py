"""Login in two steps (password, then a TOTP code; enrolment of the second factor at the first login), logout
and the language switch (CH-5.3, CH-8.1). A completed login opens a session kept on the server
(engine.services.user_sessions); logging out ends that session only, the person's other devices stay signed in
(they end them from "Mes sessions": web.auth.account).

Between the two steps the session holds only the pending username and when the password was checked; it is
good for PENDING_SECONDS. The session is cleared when the password is accepted and again when the login
completes, so nothing from before the login survives it (the language choice excepted).
"""

from __future__ import annotations

from typing import Any

import segno
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length, Regexp

from engine.services.accounts import (
    MAX_FAILURES,
    MAX_PASSWORD_LENGTH,
    AuthenticationFailed,
    Profile,
    authenticate_password,
    confirm_enrolment,
    load_profile,
    totp_provisioning,
    verify_totp,
)
from engine.services.context import EngineContext
from engine.services.user_sessions import close_session, open_session
from web.auth.access import SessionUser
from web.extensions import telerad
from web.shared.formatting import LANGUAGES, paris_time
from web.shared.redirects import safe_next

bp = Blueprint("auth", __name__)
PENDING_SECONDS = 5 * 60


def _digits(value: str | None) -> str | None:
    return "".join(value.split()) if value else value


class LoginForm(FlaskForm):
    username = StringField(_l("Identifiant"), validators=[
        DataRequired(_l("Saisissez votre identifiant.")), Length(max=128, message=_l("Identifiant trop long."))],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false", "autofocus": True})
    password = PasswordField(_l("Mot de passe"), validators=[
        DataRequired(_l("Saisissez votre mot de passe.")),
        Length(max=MAX_PASSWORD_LENGTH, message=_l("Mot de passe trop long."))],
        render_kw={"autocomplete": "current-password"})


class CodeForm(FlaskForm):
    code = StringField(_l("Code à 6 chiffres"), filters=[_digits], validators=[
        DataRequired(_l("Saisissez le code à 6 chiffres affiché par votre application.")),
        Regexp(r"^\d{6}$", message=_l("Le code compte exactement 6 chiffres."))],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": 7, "autofocus": True})


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")) or url_for("inbox.index"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        try:
            profile = authenticate_password(_ctx(), form.username.data or "", form.password.data or "")
        except AuthenticationFailed as err:
            error = failure_message(err)
        else:
            _start_pending(profile, safe_next(request.args.get("next")))
            return redirect(url_for("auth.totp" if profile.totp_enrolled else "auth.enrol"))
    return render_template("auth/login.html", form=form, error=error)


@bp.route("/login/enrol", methods=["GET", "POST"])
def enrol() -> Any:
    profile = _pending_profile()
    if profile is None:
        return redirect(url_for("auth.login"))
    if profile.totp_enrolled:
        return redirect(url_for("auth.totp"))
    form = CodeForm()
    if form.validate_on_submit():
        try:
            return _finish_login(confirm_enrolment(_ctx(), profile.username, form.code.data or ""))
        except AuthenticationFailed as err:
            if redirect_to := _on_code_failure(err, form):
                return redirect_to
    try:
        secret, uri = totp_provisioning(_ctx(), profile.username)
    except AuthenticationFailed:  # enrolled meanwhile, from another tab
        return redirect(url_for("auth.totp"))
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return render_template("auth/enrol.html", form=form, profile=profile, qr=_qr_svg(uri), secret=grouped)


@bp.route("/login/totp", methods=["GET", "POST"])
def totp() -> Any:
    profile = _pending_profile()
    if profile is None:
        return redirect(url_for("auth.login"))
    if not profile.totp_enrolled:
        return redirect(url_for("auth.enrol"))
    form = CodeForm()
    if form.validate_on_submit():
        try:
            return _finish_login(verify_totp(_ctx(), profile.username, form.code.data or ""))
        except AuthenticationFailed as err:
            if redirect_to := _on_code_failure(err, form):
                return redirect_to
    return render_template("auth/totp.html", form=form, profile=profile)


@bp.post("/logout")
def logout() -> Any:
    if current_user.is_authenticated:
        close_session(_ctx(), current_user.username, current_user.session_id, "user")
    logout_user()
    _clear_session()
    flash(_("Vous êtes déconnecté."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/language")
def language() -> Any:
    chosen = request.form.get("language")
    if chosen not in LANGUAGES:
        abort(400)
    session["language"] = chosen
    fallback = url_for("inbox.index") if current_user.is_authenticated else url_for("auth.login")
    return redirect(safe_next(request.form.get("next")) or fallback)


def failure_message(err: AuthenticationFailed) -> str:
    if err.reason == "locked" and err.locked_until is not None:
        return _("Compte verrouillé après %(count)d échecs consécutifs, jusqu'au %(day)s à %(time)s (heure de "
                 "Paris). Réessayez après cette heure ou demandez à un administrateur de le déverrouiller.",
                 count=MAX_FAILURES, day=paris_time(err.locked_until, "%d/%m/%Y"),
                 time=paris_time(err.locked_until, "%H:%M"))
    messages = {
        "invalid_password": _("Identifiant ou mot de passe incorrect."),
        "invalid_code": _("Code incorrect ou expiré : saisissez le code à 6 chiffres affiché maintenant par "
                          "votre application."),
        "replayed_code": _("Ce code a déjà servi : attendez le code suivant de votre application "
                           "(30 secondes au plus)."),
    }
    return messages.get(err.reason, str(err))


def _on_code_failure(err: AuthenticationFailed, form: CodeForm) -> Any:
    """Show the error under the code field, or, when the account is now locked, start again from the login."""
    if err.reason in ("locked", "not_enrolled", "already_enrolled"):
        if err.reason == "locked":
            _clear_session()
            flash(failure_message(err), "danger")
            return redirect(url_for("auth.login"))
        return redirect(url_for("auth.totp" if err.reason == "already_enrolled" else "auth.enrol"))
    form.code.errors = [*form.code.errors, failure_message(err)]
    return None


def _qr_svg(uri: str) -> Markup:
    """The QR code as inline SVG (no script, no style attribute: fine under the strict CSP)."""
    svg = segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff", omitsize=True,
                                                title=_("QR code de configuration du second facteur"))
    return Markup(svg)  # noqa: S704 - generated by segno, which escapes the title; the URI is only encoded


def _ctx() -> EngineContext:
    return telerad(current_app).ctx


def _start_pending(profile: Profile, next_url: str | None) -> None:
    _clear_session()
    session["pending_user"] = profile.username
    session["pending_at"] = _ctx().clock.now().timestamp()
    if next_url:
        session["pending_next"] = next_url


def _pending_profile() -> Profile | None:
    """The account whose password was accepted less than PENDING_SECONDS ago, if any."""
    username, started = session.get("pending_user"), session.get("pending_at")
    if not username or started is None:
        return None
    if not 0 <= _ctx().clock.now().timestamp() - float(started) <= PENDING_SECONDS:
        _clear_session()
        flash(_("Le délai de saisie du code est dépassé (5 minutes) : identifiez-vous à nouveau."), "warning")
        return None
    profile = load_profile(_ctx(), str(username))
    if profile is None or not profile.active:
        _clear_session()
        return None
    return profile


def _finish_login(profile: Profile) -> Any:
    next_url = session.get("pending_next")
    chosen = session.get("language")
    _clear_session()
    session["language"] = chosen if chosen in LANGUAGES else (profile.language if profile.language in LANGUAGES
                                                              else "fr")
    session_id, secret = open_session(_ctx(), profile.username, client_address=request.remote_addr,
                                      user_agent=request.user_agent.string)
    login_user(SessionUser(profile, session_id, secret))
    session["seen_at"] = _ctx().clock.now().timestamp()  # the idle timeout of web.auth.access counts from here
    return redirect(safe_next(next_url) or url_for("inbox.index"))


def _clear_session() -> None:
    """Forget everything but the language choice (a new session, as far as a cookie session can be one)."""
    chosen = session.get("language")
    session.clear()
    if chosen in LANGUAGES:
        session["language"] = chosen
