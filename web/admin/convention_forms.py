"""The forms of a convention's page (issue 19, item 5): its content and its documents, with French labels. The
engine services check every value again and say in French what is wrong or missing."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, IntegerField, SelectField, SubmitField, TextAreaField
from wtforms.validators import NumberRange, Optional

from engine.services.conventions import ConventionContent
from engine.services.directory_conventions import ConventionSummary
from web.admin.account_forms import FrenchDateField

DOCUMENT_KIND_LABELS = {
    "cme": _l("Validation par la CME"),
    "g4": _l("Approbation du G4 régional"),
    "council": _l("Approbation du conseil départemental de l'Ordre"),
    "remuneration": _l("Document de rémunération"),
}


class FrenchIntegerField(IntegerField):
    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError as err:
            raise ValueError(_("Saisissez un nombre entier.")) from err


def _number(label: Any, top: int, description: Any = None) -> IntegerField:
    return FrenchIntegerField(label, validators=[Optional(), NumberRange(min=1, max=top, message=_l(
        "Un nombre entier entre 1 et %(max)d.", max=top))], description=description)


def _text(label: Any, description: Any = None) -> TextAreaField:
    return TextAreaField(label, description=description, render_kw={"rows": 3, "maxlength": 10000})


class ConventionContentForm(FlaskForm):
    cme_validated_on = FrenchDateField(_l("Date de la validation par la CME"), validators=[Optional()])
    g4_approved_on = FrenchDateField(_l("Date de l'approbation du G4 régional"), validators=[Optional()])
    council_approved_on = FrenchDateField(_l("Date de l'approbation du conseil départemental de l'Ordre"),
                                          validators=[Optional()])
    medical_lead = SelectField(_l("Médecin responsable de l'organisation médicale du site"), validate_choice=False)
    patient_pathway = _text(_l("Parcours du patient"))
    emergency_pathway = _text(_l("Parcours des urgences"))
    emergency_duties = _text(_l("Obligations des radiologues en urgence"))
    travel_duties = _text(_l("Obligations de déplacement des radiologues"))
    fallback_procedure = _text(_l("Procédure dégradée en cas de refus (CH-4.1.14)"),
                               _l("Affichée au médecin demandeur quand un radiologue refuse un dossier."))
    equipment = _text(_l("Équipement"))
    network_bandwidth_mbps = _number(_l("Débit réseau (Mbit/s)"), 100_000)
    restoration_delay_hours = _number(_l("Délai de rétablissement après panne (heures)"), 720)
    archiving = _text(_l("Archivage"))
    expires_on = FrenchDateField(_l("Date d'échéance"), validators=[Optional()],
                                 description=_l("Le lendemain, la convention n'ouvre plus le routage des dossiers."))
    renewal_on = FrenchDateField(_l("Date de renouvellement"), validators=[Optional()],
                                 description=_l("Un rappel est envoyé à cette date, puis 30 jours avant l'échéance."))
    visit_interval_days = _number(_l("Intervalle des visites sur site (jours)"), 1095)
    submit = SubmitField(_l("Enregistrer le contenu"))

    def content(self) -> ConventionContent:
        return ConventionContent(
            cme_validated_on=self.cme_validated_on.data, g4_approved_on=self.g4_approved_on.data,
            council_approved_on=self.council_approved_on.data, medical_lead=self.medical_lead.data or None,
            patient_pathway=self.patient_pathway.data or "", emergency_pathway=self.emergency_pathway.data or "",
            emergency_duties=self.emergency_duties.data or "", travel_duties=self.travel_duties.data or "",
            fallback_procedure=self.fallback_procedure.data or "", equipment=self.equipment.data or "",
            archiving=self.archiving.data or "", network_bandwidth_mbps=self.network_bandwidth_mbps.data,
            restoration_delay_hours=self.restoration_delay_hours.data, expires_on=self.expires_on.data,
            renewal_on=self.renewal_on.data, visit_interval_days=self.visit_interval_days.data or 365)


def content_data(convention: ConventionSummary) -> dict[str, Any]:
    return {name: value for name, value in convention.content.items() if value is not None}


class ConventionDocumentForm(FlaskForm):
    kind = SelectField(_l("Document"), validate_choice=False)
    document = FileField(_l("Fichier (PDF, JPEG ou PNG, 20 Mo au plus)"), render_kw={
        "accept": "application/pdf,image/jpeg,image/png"})
    no_productivity_or_exclusivity = BooleanField(_l(
        "Pour le document de rémunération : je confirme qu'il ne contient ni clause de productivité ni clause "
        "d'exclusivité (CH-6.4)"))
    submit = SubmitField(_l("Déposer le document"))

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.kind.choices = [(kind, str(label)) for kind, label in DOCUMENT_KIND_LABELS.items()]
