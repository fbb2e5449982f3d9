""""Mes notifications": each person sets the email address and phone number where Telerad reaches them outside the
browser, and for each event the channels (email; SMS or pager through the webhook). Only their own: the page has
no user in its address, and the engine service refuses anyone else's (engine.services.notification_contacts)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import EmailField, StringField
from wtforms.validators import Length, Optional

from engine.services.context import EngineContext
from engine.services.notification_contacts import (
    ANNOUNCEMENT_PLAN,
    CHANNELS,
    CONVENTION_EXPIRY,
    EMAIL,
    EVENTS,
    IDENTITY_HOLD,
    NEXT_TIER,
    NO_RADIOLOGIST,
    OFFER,
    REPORT_OVERDUE,
    REPORT_RELEASED,
    SITE_SILENT,
    SITE_VISIT_OVERDUE,
    URGENT_OFFER,
    InvalidContact,
    get_contact,
    update_contact,
)
from web.auth.access import current_actor
from web.extensions import telerad

bp = Blueprint("notification_settings", __name__, url_prefix="/account/notifications")
EVENT_LABELS = {
    URGENT_OFFER: _l("Dossier urgent ou d'urgence vitale qui vous est proposé"),
    NEXT_TIER: _l("Dossier qui vous est proposé après le délai du niveau précédent"),
    NO_RADIOLOGIST: _l("Aucun radiologue disponible (rappels jusqu'à la prise en charge)"),
    REPORT_OVERDUE: _l("Compte-rendu en retard"),
    ANNOUNCEMENT_PLAN: _l("Plan d'annonce à confirmer"),
    REPORT_RELEASED: _l("Compte-rendu disponible"),
    IDENTITY_HOLD: _l("Images retenues pour vérification d'identité"),
    OFFER: _l("Dossier programmé qui vous est proposé"),
    SITE_VISIT_OVERDUE: _l("Visite périodique d'un site en retard"),
    CONVENTION_EXPIRY: _l("Convention à renouveler ou échue"),
    SITE_SILENT: _l("Site silencieux plus longtemps que d'habitude (liaison à vérifier)"),
}
CHANNEL_LABELS = {EMAIL: _l("Courriel"), "webhook": _l("SMS / bip")}


class ContactForm(FlaskForm):
    email = EmailField(_l("Adresse électronique"), validators=[Optional(), Length(max=254)],
                       description=_l("Une messagerie sécurisée de santé (MSSanté) si votre établissement en a une."),
                       render_kw={"autocomplete": "email", "spellcheck": "false"})
    phone = StringField(_l("Téléphone mobile"), validators=[Optional(), Length(max=32)],
                        description=_l("Format international, par exemple +33 6 12 34 56 78 : pour les SMS et bips."),
                        render_kw={"autocomplete": "tel", "inputmode": "tel"})


@bp.route("", methods=["GET", "POST"])
@login_required
def edit() -> Any:
    actor = current_actor()
    contact = get_contact(_ctx(), actor)
    form = ContactForm(data={"email": contact.email or "", "phone": contact.phone or ""})
    chosen = {(event, channel) for event in EVENTS for channel in contact.channels(event)}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        if not form.validate_on_submit():
            if form.csrf_token.errors:
                abort(400)
            errors = {name: " ".join(str(e) for e in field.errors) for name, field in form._fields.items()
                      if field.errors}
        picked = {tuple(value.split(":", 1)) for value in request.form.getlist("pref") if ":" in value}
        chosen = {(event, channel) for event, channel in picked if event in EVENTS and channel in CHANNELS}
        if not errors:
            preferences = {event: [c for e, c in chosen if e == event] for event in EVENTS}
            try:
                update_contact(_ctx(), actor, current_user.username, form.email.data or "", form.phone.data or "",
                               preferences)
            except InvalidContact as refused:
                errors = dict(refused.errors)
            else:
                flash(_("Vos préférences de notification sont enregistrées."), "success")
                return redirect(url_for("notification_settings.edit"))
        status = 400
    return render_template("auth/notification_settings.html", form=form, errors=errors, chosen=chosen,
                           events=EVENTS, channels=CHANNELS, event_labels=EVENT_LABELS,
                           channel_labels=CHANNEL_LABELS), status


def _ctx() -> EngineContext:
    return telerad(current_app).ctx
