"""Administrator pages for accounts: roles, sites, radiologist credentials, active flag, unlock, second factor,
password, open sessions and API tokens (CH-3.1, CH-3.2, CH-8.1).

Every route requires the administrator role on the server; every change goes through an engine service, which
checks it again, does it in one transaction and records it in the audit chain. Refusals (AccountError,
DirectoryError) are shown in French next to the form, which keeps what was typed (passwords excepted).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine.errors import Forbidden, NotFound
from engine.services.accounts import AccountError, create_user, reset_totp, set_password, unlock_user
from engine.services.accounts_tokens import DEFAULT_TOKEN_DAYS, list_api_tokens
from engine.services.directory import (
    DirectoryError,
    UserSummary,
    list_users_with_roles,
    set_user_active,
    update_radiologist_credentials,
    update_user_roles_sites,
)
from engine.services.token_access import renew_api_token
from engine.services.user_sessions import end_other_sessions, end_session, list_sessions
from web.admin.account_forms import (
    AccessForm,
    ActionForm,
    EditCredentialsForm,
    NewUserForm,
    PasswordForm,
)
from web.admin.account_support import (
    account_choices,
    credential_choices,
    credential_state,
    ctx,
    display_context,
    refused,
    today_in_france,
    user_or_404,
    was_submitted,
)
from web.auth.access import current_actor, roles_required, session_limits
from web.auth.account import RenewTokenForm
from web.shared.formatting import paris_time

bp = Blueprint("users", __name__, url_prefix="/admin")


@bp.get("/users")
@login_required
@roles_required("administrator")
def users() -> Any:
    today = today_in_france()
    accounts = list_users_with_roles(ctx(), current_actor())
    states = {u.username: credential_state(u, today) for u in accounts}
    return render_template("admin/users/users.html", users=accounts, states=states, **display_context())


@bp.route("/users/new", methods=["GET", "POST"])
@login_required
@roles_required("administrator")
def new_user() -> Any:
    form = NewUserForm()
    account_choices(form)
    credential_choices(form)
    error = None
    if form.validate_on_submit():
        try:
            create_user(ctx(), current_actor(), form.username.data or "", form.display_name.data or "",
                        form.password.data or "", form.roles.data or [], form.sites.data or [],
                        **form.credential_values())
        except (AccountError, DirectoryError, Forbidden) as err:
            error = refused(err)
        else:
            username = (form.username.data or "").strip()
            flash(_("Compte « %(username)s » créé. À sa première connexion, la personne saisira ce mot de passe "
                    "initial puis configurera son second facteur : elle scannera le QR code affiché avec son "
                    "application d'authentification (TOTP) et saisira le code à 6 chiffres.", username=username),
                  "success")
            return redirect(url_for("users.edit_user", username=username))
    return render_template("admin/users/user_new.html", form=form, error=error)


@bp.route("/users/<username>", methods=["GET", "POST"])
@login_required
@roles_required("administrator")
def edit_user(username: str) -> Any:
    user = user_or_404(username)
    access = AccessForm(prefix="access", formdata=None, data={"roles": list(user.roles), "sites": list(user.sites)})
    creds = EditCredentialsForm(prefix="creds", formdata=None, data=_credential_data(user))
    errors: dict[str, str] = {}
    if request.method == "POST":
        submitted_access = AccessForm(prefix="access")
        submitted_creds = EditCredentialsForm(prefix="creds")
        if was_submitted(submitted_access):
            access = submitted_access
            account_choices(access)
            if access.validate():
                try:
                    changed = update_user_roles_sites(ctx(), current_actor(), username, access.roles.data or [],
                                                      access.sites.data or [])
                except DirectoryError as err:
                    errors["access"] = str(err)
                else:
                    return _saved(username, changed, _("Rôles et sites enregistrés."))
        elif was_submitted(submitted_creds):
            creds = submitted_creds
            credential_choices(creds)
            if creds.validate():
                try:
                    changed = update_radiologist_credentials(ctx(), current_actor(), username,
                                                             **creds.credential_values())
                except DirectoryError as err:
                    errors["creds"] = str(err)
                else:
                    return _saved(username, changed, _("Habilitations enregistrées."))
        else:
            abort(400)
    return _edit_page(user, access=access, creds=creds, errors=errors)


def _credential_data(user: UserSummary) -> dict[str, Any]:
    c = user.credentials
    return {"rpps": c.rpps, "authorization_expires": c.authorization_expires,
            "insurance_expires": c.insurance_expires, "extraterritorial": c.extraterritorial,
            "foreign_authorization_on_file": c.foreign_authorization_on_file,
            "foreign_insurance_on_file": c.foreign_insurance_on_file, "territory_id": user.territory_id or "",
            "external_company": user.external_company}


def _saved(username: str, changed: bool, message: str) -> Any:
    flash(message if changed else _("Aucune modification."), "success" if changed else "info")
    return redirect(url_for("users.edit_user", username=username))


def _edit_page(user: UserSummary, *, access: AccessForm | None = None, creds: EditCredentialsForm | None = None,
               password: PasswordForm | None = None, errors: dict[str, str] | None = None) -> Any:
    if access is None:
        access = AccessForm(prefix="access", formdata=None,
                            data={"roles": list(user.roles), "sites": list(user.sites)})
    if creds is None:
        creds = EditCredentialsForm(prefix="creds", formdata=None, data=_credential_data(user))
    account_choices(access)
    credential_choices(creds)
    return render_template("admin/users/user_edit.html", user=user, access=access, creds=creds,
                           password=password or PasswordForm(prefix="password", formdata=None), errors=errors or {},
                           state=credential_state(user, today_in_france()), now=ctx().clock.now(),
                           sessions=list_sessions(ctx(), current_actor(), user.username, session_limits()),
                           tokens=list_api_tokens(ctx(), user.username), **display_context())


@bp.post("/users/<username>/password")
@login_required
@roles_required("administrator")
def change_password(username: str) -> Any:
    user = user_or_404(username)
    form = PasswordForm(prefix="password")
    if form.validate():
        try:
            set_password(ctx(), current_actor(), username, form.new_password.data or "")
        except (AccountError, Forbidden) as err:
            return _edit_page(user, password=form, errors={"password": refused(err)})
        flash(_("Nouveau mot de passe enregistré : transmettez-le à la personne par un canal sûr."), "success")
        return redirect(url_for("users.edit_user", username=username))
    return _edit_page(user, password=form)


def _account_action(username: str, action: Callable[[], bool | None], done: str) -> Any:
    user = user_or_404(username)
    if not ActionForm().validate():
        abort(400)
    try:
        changed = action()
    except (AccountError, DirectoryError, Forbidden) as err:
        return _edit_page(user, errors={"account": refused(err)})
    flash(done if changed is not False else _("Aucune modification."), "success" if changed is not False else "info")
    return redirect(url_for("users.edit_user", username=username))


@bp.post("/users/<username>/unlock")
@login_required
@roles_required("administrator")
def unlock(username: str) -> Any:
    return _account_action(username, lambda: unlock_user(ctx(), current_actor(), username),
                           _("Compte déverrouillé : le compteur d'échecs est remis à zéro."))


@bp.post("/users/<username>/totp-reset")
@login_required
@roles_required("administrator")
def totp_reset(username: str) -> Any:
    return _account_action(username, lambda: reset_totp(ctx(), current_actor(), username),
                           _("Second facteur réinitialisé : la personne le configurera à nouveau à sa prochaine "
                             "connexion (nouveau QR code)."))


@bp.post("/users/<username>/deactivate")
@login_required
@roles_required("administrator")
def deactivate(username: str) -> Any:
    return _account_action(username, lambda: set_user_active(ctx(), current_actor(), username, False),
                           _("Compte désactivé : la personne ne peut plus se connecter et ses jetons d'API ne "
                             "fonctionnent plus."))


@bp.post("/users/<username>/reactivate")
@login_required
@roles_required("administrator")
def reactivate(username: str) -> Any:
    return _account_action(username, lambda: set_user_active(ctx(), current_actor(), username, True),
                           _("Compte réactivé."))


@bp.post("/users/<username>/sessions/<int:session_id>/end")
@login_required
@roles_required("administrator")
def end_user_session(username: str, session_id: int) -> Any:
    """End one session of the account (audited); a session of another account, or an ended one, gives 404."""
    def end() -> None:
        try:
            end_session(ctx(), current_actor(), username, session_id, session_limits())
        except NotFound:
            abort(404)

    return _account_action(username, end, _("Session terminée : ce navigateur devra s'identifier à nouveau."))


@bp.post("/users/<username>/sessions/end-all")
@login_required
@roles_required("administrator")
def end_user_sessions(username: str) -> Any:
    return _account_action(username, lambda: end_other_sessions(ctx(), current_actor(), username, None,
                                                                session_limits()) > 0,
                           _("Toutes les sessions de ce compte sont terminées."))


@bp.post("/users/<username>/tokens/renew")
@login_required
@roles_required("administrator")
def renew_user_token(username: str) -> Any:
    user_or_404(username)
    form = RenewTokenForm()
    if not form.validate():
        flash(" ".join(str(e) for e in form.days.errors) or _("Demande invalide."), "danger")
        return redirect(url_for("users.edit_user", username=username, _anchor="tokens"))
    try:
        expires = renew_api_token(ctx(), current_actor(), username, form.name.data or "",
                                  form.days.data or DEFAULT_TOKEN_DAYS)
    except AccountError:
        abort(404)
    flash(_("Jeton « %(name)s » renouvelé : il expire le %(day)s (heure de Paris). Sa valeur ne change pas.",
            name=form.name.data, day=paris_time(expires)), "success")
    return redirect(url_for("users.edit_user", username=username, _anchor="tokens"))
