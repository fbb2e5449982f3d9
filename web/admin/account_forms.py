"""The forms of the administrator pages (accounts, credentials, territories, sites, conventions), with French
messages (WTForms' own ones are English), and the French labels of roles and routing tiers."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, PasswordField, SelectField, SelectMultipleField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from engine.services.directory import (
    CONVENTION_TIERS,
)

TIER_LABELS = {
    1: _l("1 — territoire du site"),
    2: _l("2 — territoires voisins"),
    3: _l("3 — département puis région"),
}
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
                               description=_l("Par exemple « cornouaille » : minuscules, chiffres, point, tirets."),
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
                          description=_l("Par exemple « ch-quimper » : minuscules, chiffres, point, tirets."),
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

