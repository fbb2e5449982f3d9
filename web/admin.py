"""Administrator pages: accounts (roles, sites, radiologist credentials, active flag, unlock, second factor,
password) and the routing directory (territories, sites, conventions) (CH-3.1, CH-3.2, CH-3.4, CH-6.1).

Every route requires the administrator role on the server; every change goes through an engine service, which
checks it again, does it in one transaction and records it in the audit chain. Refusals (AccountError,
DirectoryError) are shown in French next to the form, which keeps what was typed (passwords excepted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, PasswordField, SelectField, SelectMultipleField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from engine.domain.credentials import credential_problems
from engine.errors import Forbidden
from engine.services.accounts import AccountError, create_user, reset_totp, set_password, unlock_user
from engine.services.context import EngineContext
from engine.services.directory import (
    CONVENTION_TIERS,
    DirectoryError,
    UserSummary,
    convention_summary,
    create_convention,
    create_site,
    create_territory,
    list_conventions,
    list_sites,
    list_territories,
    list_users_with_roles,
    set_user_active,
    territory_neighbours,
    update_convention,
    update_radiologist_credentials,
    update_user_roles_sites,
    user_summary,
)
from engine.services.eligibility import medical_leads
from engine.store.directory_models import ROLES
from web.extensions import telerad
from web.security import current_actor, roles_required

bp = Blueprint("admin", __name__, url_prefix="/admin")

PARIS = ZoneInfo("Europe/Paris")
RENEWAL_NOTICE = timedelta(days=30)  # credentials expiring within this delay are flagged "à renouveler"
ROLE_LABELS = {
    "requester": _l("Médecin demandeur"),
    "technologist": _l("Manipulateur"),
    "radiologist": _l("Radiologue"),
    "local_radiologist": _l("Radiologue de proximité"),
    "tele_expert": _l("Télé-expert"),
    "site_lead": _l("Médecin responsable du site"),
    "process_designer": _l("Concepteur de processus"),
    "administrator": _l("Administrateur"),
    "auditor": _l("Auditeur"),
}
TIER_LABELS = {
    1: _l("1 — territoire du site"),
    2: _l("2 — territoires voisins"),
    3: _l("3 — département puis région"),
}
ANCHORS = {"territory": "#territories", "site": "#sites", "convention": "#conventions"}
assert set(ROLE_LABELS) == set(ROLES)
assert set(TIER_LABELS) == set(CONVENTION_TIERS)


# --- form fields with French messages (WTForms' own ones are English) -------------------------------------------

class CheckboxesField(SelectMultipleField):
    """Several choices as checkboxes; the engine service checks the values (and says what is wrong in French)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("validate_choice", False)
        super().__init__(*args, **kwargs)


class FrenchDateField(DateField):
    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError as err:
            raise ValueError(_("Date invalide : choisissez une date dans le calendrier (jj/mm/aaaa).")) from err


def _required(what: str) -> DataRequired:
    return DataRequired(message=what)


def _max(length: int) -> Length:
    return Length(max=length, message=_l("%(max)d caractères au plus.", max=length))


# --- forms --------------------------------------------------------------------------------------------------------

class CredentialsForm(FlaskForm):
    """What the organisation holds on file for a radiologist (CH-3.1, CH-3.2)."""

    rpps = StringField(_l("Numéro RPPS"), validators=[Optional(), _max(11)],
                       description=_l("11 chiffres, clé de contrôle comprise. Facultatif pour un radiologue établi "
                                      "hors de France."),
                       render_kw={"inputmode": "numeric", "autocomplete": "off", "maxlength": 11})
    authorization_expires = FrenchDateField(_l("Autorisation d'exercice valable jusqu'au"), validators=[Optional()],
                                            description=_l("Dernier jour de validité, inclus."))
    insurance_expires = FrenchDateField(_l("Assurance RCP (téléradiologie) valable jusqu'au"),
                                        validators=[Optional()], description=_l("Dernier jour de validité, inclus."))
    extraterritorial = BooleanField(_l("Radiologue établi hors de France (extraterritorial)"))
    foreign_authorization_on_file = BooleanField(_l("Autorisation d'exercer du pays d'établissement au dossier"))
    foreign_insurance_on_file = BooleanField(_l("Attestation d'assurance RCP étrangère au dossier"))
    territory_id = SelectField(_l("Territoire d'exercice"), validate_choice=False,
                               description=_l("Sert au routage de proximité (niveaux 1 à 3)."))
    external_company = StringField(_l("Société de téléradiologie externe"), validators=[Optional(), _max(200)],
                                   description=_l("Seulement pour un radiologue d'une société externe (niveau 4)."))

    def credential_values(self) -> dict[str, Any]:
        return {
            "rpps": (self.rpps.data or "").strip() or None,
            "authorization_expires": self.authorization_expires.data,
            "insurance_expires": self.insurance_expires.data,
            "extraterritorial": bool(self.extraterritorial.data),
            "foreign_authorization_on_file": bool(self.foreign_authorization_on_file.data),
            "foreign_insurance_on_file": bool(self.foreign_insurance_on_file.data),
            "territory_id": self.territory_id.data or None,
            "external_company": (self.external_company.data or "").strip() or None,
        }


class NewUserForm(CredentialsForm):
    username = StringField(_l("Identifiant"), validators=[_required(_l("Saisissez l'identifiant.")), _max(64)],
                           description=_l("3 à 64 caractères : minuscules a-z, chiffres, point, tiret, tiret bas."),
                           render_kw={"required": True, "autocomplete": "off", "autocapitalize": "none",
                                      "spellcheck": "false"})
    display_name = StringField(_l("Nom affiché"), validators=[_required(_l("Saisissez le nom affiché.")), _max(200)],
                               description=_l("Par exemple « Dr Jeanne Dupont (radiologue) »."),
                               render_kw={"required": True, "autocomplete": "off"})
    password = PasswordField(_l("Mot de passe initial"),
                             validators=[_required(_l("Saisissez un mot de passe initial.")), _max(1024)],
                             description=_l("12 caractères au moins, sans l'identifiant. Transmettez-le par un "
                                            "canal sûr."),
                             render_kw={"required": True, "autocomplete": "new-password"})
    roles = CheckboxesField(_l("Rôles"))
    sites = CheckboxesField(_l("Sites"))
    submit = SubmitField(_l("Créer le compte"))


class AccessForm(FlaskForm):
    roles = CheckboxesField(_l("Rôles"))
    sites = CheckboxesField(_l("Sites"))
    submit = SubmitField(_l("Enregistrer les rôles et les sites"))


class EditCredentialsForm(CredentialsForm):
    submit = SubmitField(_l("Enregistrer les habilitations"))


class PasswordForm(FlaskForm):
    new_password = PasswordField(_l("Nouveau mot de passe"),
                                 validators=[_required(_l("Saisissez le nouveau mot de passe.")), _max(1024)],
                                 description=_l("12 caractères au moins, sans l'identifiant."),
                                 render_kw={"required": True, "autocomplete": "new-password"})
    confirm = PasswordField(_l("Confirmez le mot de passe"), validators=[
        _required(_l("Saisissez à nouveau le mot de passe.")),
        EqualTo("new_password", message=_l("Les deux mots de passe diffèrent."))],
        render_kw={"required": True, "autocomplete": "new-password"})
    submit = SubmitField(_l("Définir le mot de passe"))


class ActionForm(FlaskForm):
    """A button only (unlock, reset the second factor, (de)activate): the CSRF token is its one field."""


class TerritoryForm(FlaskForm):
    territory_id = StringField(_l("Identifiant"), validators=[_required(_l("Saisissez l'identifiant.")), _max(64)],
                               description=_l("Par exemple « brest » : minuscules, chiffres, point, tirets."),
                               render_kw={"required": True, "autocapitalize": "none", "spellcheck": "false"})
    name = StringField(_l("Nom"), validators=[_required(_l("Saisissez le nom.")), _max(200)],
                       render_kw={"required": True})
    department = StringField(_l("Département"), validators=[_required(_l("Saisissez le département.")), _max(8)],
                             render_kw={"required": True, "maxlength": 8})
    region = StringField(_l("Région"), validators=[_required(_l("Saisissez la région.")), _max(64)],
                         render_kw={"required": True})
    neighbours = CheckboxesField(_l("Territoires voisins"))
    submit = SubmitField(_l("Créer le territoire"))


class SiteForm(FlaskForm):
    site_id = StringField(_l("Identifiant"), validators=[_required(_l("Saisissez l'identifiant.")), _max(64)],
                          description=_l("Par exemple « ch-brest » : minuscules, chiffres, point, tirets."),
                          render_kw={"required": True, "autocapitalize": "none", "spellcheck": "false"})
    name = StringField(_l("Nom"), validators=[_required(_l("Saisissez le nom.")), _max(200)],
                       render_kw={"required": True})
    territory_id = SelectField(_l("Territoire"), validate_choice=False,
                               validators=[_required(_l("Choisissez le territoire."))], render_kw={"required": True})
    submit = SubmitField(_l("Créer le site"))


class ConventionFields(FlaskForm):
    radiologists = CheckboxesField(_l("Radiologues liés par la convention"))
    cme_validated = BooleanField(_l("Validée par la commission médicale d'établissement (CME)"))
    approved_by_g4 = BooleanField(_l("Approuvée par le G4 régional"))
    approved_by_council = BooleanField(_l("Approuvée par le conseil départemental de l'Ordre des médecins"))
    tiers = CheckboxesField(_l("Niveaux de proximité ouverts"), default=[str(t) for t in CONVENTION_TIERS])
    external_allowed = BooleanField(_l("Niveau 4 autorisé : société de téléradiologie externe"))

    def convention_values(self) -> dict[str, Any]:
        return {"cme_validated": bool(self.cme_validated.data), "approved_by_g4": bool(self.approved_by_g4.data),
                "approved_by_council": bool(self.approved_by_council.data),
                "external_allowed": bool(self.external_allowed.data), "tiers": ",".join(self.tiers.data or [])}


class NewConventionForm(ConventionFields):
    site_id = SelectField(_l("Site"), validate_choice=False, validators=[_required(_l("Choisissez le site."))],
                          render_kw={"required": True})
    submit = SubmitField(_l("Créer la convention"))


class EditConventionForm(ConventionFields):
    submit = SubmitField(_l("Enregistrer la convention"))


# --- helpers ------------------------------------------------------------------------------------------------------

def _ctx() -> EngineContext:
    return telerad(current_app).ctx


def _today() -> date:
    """Credentials are valid until a calendar day in France (engine.domain.credentials)."""
    return _ctx().clock.now().astimezone(PARIS).date()


@dataclass(frozen=True)
class CredentialState:
    problems: list[str]
    renew_before: date | None

    @property
    def valid(self) -> bool:
        return not self.problems


def credential_state(user: UserSummary, today: date) -> CredentialState | None:
    """For radiologists and tele-experts: what keeps them from being assigned a case today, in French."""
    if not user.is_radiologist:
        return None
    creds = user.credentials
    soon = [d for d in (creds.authorization_expires, creds.insurance_expires)
            if d is not None and today <= d <= today + RENEWAL_NOTICE]
    return CredentialState(credential_problems(creds, today), min(soon, default=None))


def _submitted(form: FlaskForm) -> bool:
    return request.method == "POST" and bool(form.submit.data)  # type: ignore[attr-defined]


def _site_choices() -> list[tuple[str, str]]:
    return [(site_id, f"{name} — {site_id}") for site_id, name, _territory in list_sites(_ctx())]


def _territory_choices(empty: str) -> list[tuple[str, str]]:
    return [("", empty)] + [(t_id, f"{name} — {t_id}") for t_id, name, _dep, _reg in list_territories(_ctx())]


def _radiologist_choices() -> list[tuple[str, str]]:
    return [(u.username, f"{u.display_name} — {u.username}") for u in list_users_with_roles(_ctx(), current_actor())
            if u.is_radiologist and u.active]


def _role_choices() -> list[tuple[str, str]]:
    return [(role, str(ROLE_LABELS[role])) for role in ROLES]


def _account_choices(form: NewUserForm | AccessForm) -> None:
    form.roles.choices = _role_choices()
    form.sites.choices = _site_choices()


def _credential_choices(form: CredentialsForm) -> None:
    form.territory_id.choices = _territory_choices(_("— aucun —"))


def _user_or_404(username: str) -> UserSummary:
    try:
        return user_summary(_ctx(), current_actor(), username)
    except DirectoryError:
        abort(404)


def _refused(err: Exception) -> str:
    if isinstance(err, Forbidden):
        abort(403)
    return str(err)


def _display_context() -> dict[str, Any]:
    return {"role_labels": ROLE_LABELS, "sites": {s_id: name for s_id, name, _t in list_sites(_ctx())},
            "territories": {t_id: name for t_id, name, _d, _r in list_territories(_ctx())}}


# --- accounts -----------------------------------------------------------------------------------------------------

@bp.get("/users")
@login_required
@roles_required("administrator")
def users() -> Any:
    today = _today()
    accounts = list_users_with_roles(_ctx(), current_actor())
    states = {u.username: credential_state(u, today) for u in accounts}
    return render_template("admin/users.html", users=accounts, states=states, **_display_context())


@bp.route("/users/new", methods=["GET", "POST"])
@login_required
@roles_required("administrator")
def new_user() -> Any:
    form = NewUserForm()
    _account_choices(form)
    _credential_choices(form)
    error = None
    if form.validate_on_submit():
        try:
            create_user(_ctx(), current_actor(), form.username.data or "", form.display_name.data or "",
                        form.password.data or "", form.roles.data or [], form.sites.data or [],
                        **form.credential_values())
        except (AccountError, DirectoryError, Forbidden) as err:
            error = _refused(err)
        else:
            username = (form.username.data or "").strip()
            flash(_("Compte « %(username)s » créé. À sa première connexion, la personne saisira ce mot de passe "
                    "initial puis configurera son second facteur : elle scannera le QR code affiché avec son "
                    "application d'authentification (TOTP) et saisira le code à 6 chiffres.", username=username),
                  "success")
            return redirect(url_for("admin.edit_user", username=username))
    return render_template("admin/user_new.html", form=form, error=error)


@bp.route("/users/<username>", methods=["GET", "POST"])
@login_required
@roles_required("administrator")
def edit_user(username: str) -> Any:
    user = _user_or_404(username)
    access = AccessForm(prefix="access", formdata=None, data={"roles": list(user.roles), "sites": list(user.sites)})
    creds = EditCredentialsForm(prefix="creds", formdata=None, data=_credential_data(user))
    errors: dict[str, str] = {}
    if request.method == "POST":
        submitted_access = AccessForm(prefix="access")
        submitted_creds = EditCredentialsForm(prefix="creds")
        if _submitted(submitted_access):
            access = submitted_access
            _account_choices(access)
            if access.validate():
                try:
                    changed = update_user_roles_sites(_ctx(), current_actor(), username, access.roles.data or [],
                                                      access.sites.data or [])
                except DirectoryError as err:
                    errors["access"] = str(err)
                else:
                    return _saved(username, changed, _("Rôles et sites enregistrés."))
        elif _submitted(submitted_creds):
            creds = submitted_creds
            _credential_choices(creds)
            if creds.validate():
                try:
                    changed = update_radiologist_credentials(_ctx(), current_actor(), username,
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
    return redirect(url_for("admin.edit_user", username=username))


def _edit_page(user: UserSummary, *, access: AccessForm | None = None, creds: EditCredentialsForm | None = None,
               password: PasswordForm | None = None, errors: dict[str, str] | None = None) -> Any:
    if access is None:
        access = AccessForm(prefix="access", formdata=None,
                            data={"roles": list(user.roles), "sites": list(user.sites)})
    if creds is None:
        creds = EditCredentialsForm(prefix="creds", formdata=None, data=_credential_data(user))
    _account_choices(access)
    _credential_choices(creds)
    return render_template("admin/user_edit.html", user=user, access=access, creds=creds,
                           password=password or PasswordForm(prefix="password", formdata=None), errors=errors or {},
                           state=credential_state(user, _today()), **_display_context())


@bp.post("/users/<username>/password")
@login_required
@roles_required("administrator")
def change_password(username: str) -> Any:
    user = _user_or_404(username)
    form = PasswordForm(prefix="password")
    if form.validate():
        try:
            set_password(_ctx(), current_actor(), username, form.new_password.data or "")
        except (AccountError, Forbidden) as err:
            return _edit_page(user, password=form, errors={"password": _refused(err)})
        flash(_("Nouveau mot de passe enregistré : transmettez-le à la personne par un canal sûr."), "success")
        return redirect(url_for("admin.edit_user", username=username))
    return _edit_page(user, password=form)


def _account_action(username: str, action: Callable[[], bool | None], done: str) -> Any:
    user = _user_or_404(username)
    if not ActionForm().validate():
        abort(400)
    try:
        changed = action()
    except (AccountError, DirectoryError, Forbidden) as err:
        return _edit_page(user, errors={"account": _refused(err)})
    flash(done if changed is not False else _("Aucune modification."), "success" if changed is not False else "info")
    return redirect(url_for("admin.edit_user", username=username))


@bp.post("/users/<username>/unlock")
@login_required
@roles_required("administrator")
def unlock(username: str) -> Any:
    return _account_action(username, lambda: unlock_user(_ctx(), current_actor(), username),
                           _("Compte déverrouillé : le compteur d'échecs est remis à zéro."))


@bp.post("/users/<username>/totp-reset")
@login_required
@roles_required("administrator")
def totp_reset(username: str) -> Any:
    return _account_action(username, lambda: reset_totp(_ctx(), current_actor(), username),
                           _("Second facteur réinitialisé : la personne le configurera à nouveau à sa prochaine "
                             "connexion (nouveau QR code)."))


@bp.post("/users/<username>/deactivate")
@login_required
@roles_required("administrator")
def deactivate(username: str) -> Any:
    return _account_action(username, lambda: set_user_active(_ctx(), current_actor(), username, False),
                           _("Compte désactivé : la personne ne peut plus se connecter et ses jetons d'API ne "
                             "fonctionnent plus."))


@bp.post("/users/<username>/reactivate")
@login_required
@roles_required("administrator")
def reactivate(username: str) -> Any:
    return _account_action(username, lambda: set_user_active(_ctx(), current_actor(), username, True),
                           _("Compte réactivé."))


# --- directory ----------------------------------------------------------------------------------------------------

@bp.route("/directory", methods=["GET", "POST"])
@login_required
@roles_required("administrator")
def directory() -> Any:
    forms: dict[str, Any] = {
        "territory": TerritoryForm(prefix="territory", formdata=None),
        "site": SiteForm(prefix="site", formdata=None),
        "convention": NewConventionForm(prefix="convention", formdata=None),
    }
    errors: dict[str, str] = {}
    if request.method == "POST":
        submitted = {"territory": TerritoryForm(prefix="territory"), "site": SiteForm(prefix="site"),
                     "convention": NewConventionForm(prefix="convention")}
        which = next((name for name, form in submitted.items() if _submitted(form)), None)
        if which is None:
            abort(400)
        forms[which] = submitted[which]
        _directory_choices(forms)
        if forms[which].validate():
            try:
                message = _create(which, forms[which])
            except (DirectoryError, Forbidden) as err:
                errors[which] = _refused(err)
            else:
                flash(message, "success")
                return redirect(url_for("admin.directory") + ANCHORS[which])
    _directory_choices(forms)
    return _directory_page(forms, errors)


def _directory_choices(forms: dict[str, Any]) -> None:
    forms["territory"].neighbours.choices = _territory_choices("")[1:]
    forms["site"].territory_id.choices = _territory_choices(_("— choisissez —"))
    forms["convention"].site_id.choices = [("", _("— choisissez —"))] + _site_choices()
    forms["convention"].radiologists.choices = _radiologist_choices()
    forms["convention"].tiers.choices = [(str(t), str(label)) for t, label in TIER_LABELS.items()]


def _create(which: str, form: Any) -> str:
    actor = current_actor()
    if which == "territory":
        create_territory(_ctx(), actor, form.territory_id.data or "", form.name.data or "", form.department.data or "",
                         form.region.data or "", tuple(form.neighbours.data or ()))
        return _("Territoire « %(id)s » créé.", id=(form.territory_id.data or "").strip())
    if which == "site":
        create_site(_ctx(), actor, form.site_id.data or "", form.name.data or "", form.territory_id.data or "")
        return _("Site « %(id)s » créé.", id=(form.site_id.data or "").strip())
    values = form.convention_values()
    number = create_convention(_ctx(), actor, form.site_id.data or "", tuple(form.radiologists.data or ()), **values)
    if values["cme_validated"] and values["approved_by_g4"] and values["approved_by_council"]:
        return _("Convention n° %(number)s créée ; elle est active.", number=number)
    return _("Convention n° %(number)s créée ; elle restera inactive tant que la CME, le G4 et le conseil de "
             "l'Ordre ne l'auront pas tous approuvée.", number=number)


def _directory_page(forms: dict[str, Any], errors: dict[str, str]) -> Any:
    actor = current_actor()
    accounts = {u.username: u.display_name for u in list_users_with_roles(_ctx(), actor)}
    return render_template("admin/directory.html", forms=forms, errors=errors, neighbours=territory_neighbours(
        _ctx(), actor), territory_rows=list_territories(_ctx()), site_rows=list_sites(_ctx()),
        leads=medical_leads(_ctx()),
        conventions=list_conventions(_ctx(), actor), accounts=accounts, tier_labels=TIER_LABELS,
        **_display_context())


@bp.route("/directory/conventions/<int:convention_id>", methods=["GET", "POST"])
@login_required
@roles_required("administrator")
def edit_convention(convention_id: int) -> Any:
    try:
        convention = convention_summary(_ctx(), current_actor(), convention_id)
    except DirectoryError:
        abort(404)
    form = EditConventionForm(prefix="convention", formdata=request.form if request.method == "POST" else None, data={
        "radiologists": list(convention.radiologists), "cme_validated": convention.cme_validated,
        "approved_by_g4": convention.approved_by_g4, "approved_by_council": convention.approved_by_council,
        "tiers": [str(t) for t in convention.tiers], "external_allowed": convention.external_allowed})
    form.radiologists.choices = _radiologist_choices()
    for member in convention.radiologists:  # a member who lost the role or was deactivated stays visible
        if member not in {value for value, _label in form.radiologists.choices}:
            form.radiologists.choices.append((member, member))
    form.tiers.choices = [(str(t), str(label)) for t, label in TIER_LABELS.items()]
    error = None
    if request.method == "POST" and form.validate():
        try:
            changed = update_convention(_ctx(), current_actor(), convention_id, form.radiologists.data or [],
                                        **form.convention_values())
        except (DirectoryError, Forbidden) as err:
            error = _refused(err)
        else:
            flash(_("Convention n° %(number)s enregistrée.", number=convention_id) if changed
                  else _("Aucune modification."), "success" if changed else "info")
            return redirect(url_for("admin.directory") + "#conventions")
    return render_template("admin/convention_edit.html", convention=convention, form=form, error=error,
                           **_display_context())
