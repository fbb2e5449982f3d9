"""Administrator pages for HL7: which RIS may send orders for which site, where each site's reports go, the
message log (every message received or sent, with its acknowledgement) and the report outbox with its failures
and a "retry now" button.

Every route requires the administrator role on the server; changes go through integrations.hl7 services, which
check the role again, validate, and record the change in the audit chain.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from engine.errors import Forbidden
from engine.services.context import EngineContext
from engine.services.directory import list_sites
from integrations.hl7.models import STATUSES_IN, STATUSES_OUT
from integrations.hl7.outbox import retry_now
from integrations.hl7.queries import MessageFilters, message_text, messages, outbox, outbox_counts
from integrations.hl7.senders import (
    OUT_CHARSETS,
    Hl7ConfigError,
    add_sender,
    list_endpoints,
    list_senders,
    remove_endpoint,
    remove_sender,
    set_endpoint,
    set_sender_access,
)
from web.auth.access import current_actor, roles_required
from web.extensions import telerad

bp = Blueprint("hl7", __name__, url_prefix="/admin/hl7")
PER_PAGE = 50
STATUS_LABELS = {
    "received": _l("reçu, en cours"), "processed": _l("traité"), "rejected": _l("refusé (AR)"),
    "error": _l("erreur (AE)"), "pending": _l("en attente"), "sent": _l("envoyé"), "failed": _l("échec, relancé"),
}


def _required(message: str) -> DataRequired:
    return DataRequired(message=message)


class SenderForm(FlaskForm):
    site_id = SelectField(_l("Site"), validate_choice=False, validators=[_required(_l("Choisissez le site."))])
    application = StringField(_l("Application émettrice (MSH-3)"), validators=[
        _required(_l("Saisissez l'application émettrice.")), Length(max=180)],
        description=_l("Tel que le RIS le remplit, par exemple « RIS_BREST »."),
        render_kw={"autocapitalize": "none", "spellcheck": "false"})
    facility = StringField(_l("Établissement émetteur (MSH-4)"), validators=[
        _required(_l("Saisissez l'établissement émetteur.")), Length(max=180)],
        render_kw={"autocapitalize": "none", "spellcheck": "false"})
    allowed_sources = StringField(_l("Adresses autorisées (facultatif)"), validators=[Optional(), Length(max=2000)],
                                  description=_l("Adresses IP ou réseaux (CIDR) séparés par des virgules, par exemple "
                                                 "« 10.29.4.0/24, 192.0.2.7 ». Vide : toute adresse."),
                                  render_kw={"autocapitalize": "none", "spellcheck": "false"})
    client_cert_name = StringField(_l("Certificat client exigé (facultatif)"), validators=[Optional(),
                                                                                            Length(max=200)],
                                   description=_l("Nom (CN ou nom DNS) du certificat TLS que le RIS doit présenter. "
                                                  "Vide : aucun certificat exigé."),
                                   render_kw={"autocapitalize": "none", "spellcheck": "false"})
    submit = SubmitField(_l("Autoriser cet expéditeur"))


class EndpointForm(FlaskForm):
    site_id = SelectField(_l("Site"), validate_choice=False, validators=[_required(_l("Choisissez le site."))])
    host = StringField(_l("Hôte du RIS"), validators=[_required(_l("Saisissez l'hôte.")), Length(max=255)],
                       render_kw={"autocapitalize": "none", "spellcheck": "false"})
    port = IntegerField(_l("Port MLLP"), validators=[
        _required(_l("Saisissez le port.")),
        NumberRange(min=1, max=65535, message=_l("Un nombre entre 1 et 65535."))], render_kw={"inputmode": "numeric"})
    receiving_application = StringField(_l("Application destinataire (MSH-5)"), validators=[Optional(),
                                                                                            Length(max=180)])
    receiving_facility = StringField(_l("Établissement destinataire (MSH-6)"), validators=[Optional(),
                                                                                           Length(max=180)])
    charset = SelectField(_l("Jeu de caractères (MSH-18)"), choices=list(OUT_CHARSETS),
                          default="UNICODE UTF-8",
                          description=_l("8859/1 pour un RIS qui n'accepte pas l'UTF-8."))
    active = BooleanField(_l("Envois actifs"), default=True)
    submit = SubmitField(_l("Enregistrer la destination"))


class ActionForm(FlaskForm):
    """A button only: the CSRF token is its one field."""


def _ctx() -> EngineContext:
    return telerad(current_app).ctx


def _sites() -> dict[str, str]:
    return {site_id: name for site_id, name, _territory in list_sites(_ctx())}


def _refused(err: Exception) -> str:
    if isinstance(err, Forbidden):
        abort(403)
    return str(err)


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"status_labels": STATUS_LABELS}


@bp.route("/", methods=["GET", "POST"])
@login_required
@roles_required("administrator")
def config() -> Any:
    sites = _sites()
    sender_form, endpoint_form = SenderForm(prefix="sender"), EndpointForm(prefix="endpoint")
    for form in (sender_form, endpoint_form):
        form.site_id.choices = [("", _("— choisir —"))] + [(s, f"{n} — {s}") for s, n in sites.items()]
    errors: dict[str, str] = {}
    try:
        if sender_form.submit.data and sender_form.validate_on_submit():
            add_sender(_ctx(), current_actor(), sender_form.site_id.data or "", sender_form.application.data or "",
                       sender_form.facility.data or "", allowed_sources=sender_form.allowed_sources.data,
                       client_cert_name=sender_form.client_cert_name.data)
            flash(_("Expéditeur autorisé : ses messages sont maintenant acceptés."), "success")
            return redirect(url_for("hl7.config") + "#senders")
        if endpoint_form.submit.data and endpoint_form.validate_on_submit():
            set_endpoint(_ctx(), current_actor(), endpoint_form.site_id.data or "", endpoint_form.host.data or "",
                         int(endpoint_form.port.data or 0),
                         receiving_application=endpoint_form.receiving_application.data or "",
                         receiving_facility=endpoint_form.receiving_facility.data or "",
                         charset=endpoint_form.charset.data or "UNICODE UTF-8", active=bool(endpoint_form.active.data))
            flash(_("Destination des comptes rendus enregistrée."), "success")
            return redirect(url_for("hl7.config") + "#endpoints")
    except Hl7ConfigError as err:
        errors["sender" if sender_form.submit.data else "endpoint"] = _refused(err)
    except Forbidden as err:
        _refused(err)
    return render_template("admin/hl7/config.html", senders=list_senders(_ctx()), endpoints=list_endpoints(_ctx()),
                           sites=sites, sender_form=sender_form, endpoint_form=endpoint_form, errors=errors,
                           action=ActionForm())


@bp.post("/senders/<int:sender_id>/delete")
@login_required
@roles_required("administrator")
def delete_sender(sender_id: int) -> Any:
    if ActionForm().validate_on_submit():
        try:
            remove_sender(_ctx(), current_actor(), sender_id)
            flash(_("Expéditeur retiré : ses messages seront refusés (AR)."), "success")
        except (Hl7ConfigError, Forbidden) as err:
            flash(_refused(err), "danger")
    return redirect(url_for("hl7.config") + "#senders")


@bp.post("/senders/<int:sender_id>/access")
@login_required
@roles_required("administrator")
def sender_access(sender_id: int) -> Any:
    """Where a sender may connect from and the certificate it must present (CH-5.3, CH-8.1)."""
    if ActionForm().validate_on_submit():
        try:
            set_sender_access(_ctx(), current_actor(), sender_id, request.form.get("allowed_sources", "")[:4000],
                              request.form.get("client_cert_name", "")[:400])
            flash(_("Restrictions de connexion de l'expéditeur enregistrées."), "success")
        except (Hl7ConfigError, Forbidden) as err:
            flash(_refused(err), "danger")
    return redirect(url_for("hl7.config") + "#senders")


@bp.post("/endpoints/<site_id>/delete")
@login_required
@roles_required("administrator")
def delete_endpoint(site_id: str) -> Any:
    if ActionForm().validate_on_submit():
        try:
            remove_endpoint(_ctx(), current_actor(), site_id)
            flash(_("Destination retirée."), "success")
        except Forbidden as err:
            _refused(err)
    return redirect(url_for("hl7.config") + "#endpoints")


def _filters() -> tuple[MessageFilters, dict[str, str], list[str]]:
    args = {k: v.strip() for k, v in request.args.items() if k != "page" and v.strip()}
    problems = []
    case_id = None
    if "case" in args:
        if args["case"].isdigit():
            case_id = int(args["case"])
        else:
            problems.append(_("N° de dossier : des chiffres seulement."))
    direction = args.get("direction") if args.get("direction") in ("in", "out") else None
    status = args.get("status") if args.get("status") in STATUSES_IN else None
    ack = args.get("ack") if args.get("ack") in ("AA", "AE", "AR") else None
    return (MessageFilters(direction, status, ack, args.get("site"), args.get("sender"), args.get("control_id"),
                           case_id), args, problems)


@bp.get("/messages")
@login_required
@roles_required("administrator")
def message_log() -> Any:
    filters, args, problems = _filters()
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    lines, total = messages(_ctx(), current_actor(), filters, PER_PAGE, (page - 1) * PER_PAGE)
    return render_template("admin/hl7/messages.html", lines=lines, total=total, page_number=page,
                           pages=max((total + PER_PAGE - 1) // PER_PAGE, 1), filters=args, query_args=args,
                           problems=problems, sites=_sites(), statuses=STATUSES_IN)


@bp.get("/messages/<int:message_id>")
@login_required
@roles_required("administrator")
def message(message_id: int) -> Any:
    try:
        found = message_text(_ctx(), current_actor(), message_id)
    except Forbidden:
        abort(403)
    if found is None:
        abort(404)
    return render_template("admin/hl7/message.html", line=found.line, segments=found.text.replace("\r\n", "\r")
                           .replace("\n", "\r").split("\r"), sites=_sites())


@bp.get("/outbox")
@login_required
@roles_required("administrator")
def outbox_page() -> Any:
    status = request.args.get("status") if request.args.get("status") in STATUSES_OUT else None
    return render_template("admin/hl7/outbox.html", rows=outbox(_ctx(), status), counts=outbox_counts(_ctx()),
                           status=status, statuses=STATUSES_OUT, action=ActionForm(), sites=_sites())


@bp.post("/outbox/retry")
@bp.post("/outbox/<int:row_id>/retry")
@login_required
@roles_required("administrator")
def retry(row_id: int | None = None) -> Any:
    if ActionForm().validate_on_submit():
        try:
            count = retry_now(_ctx(), current_actor(), row_id)
        except Forbidden:
            abort(403)
        service = getattr(telerad(current_app), "hl7", None)
        if service is not None:
            service.deliver_now()
        flash(_("%(count)d envoi(s) relancé(s) : ils partent au prochain passage (quelques secondes).", count=count)
              if count else _("Aucun envoi en échec à relancer."), "success" if count else "info")
    return redirect(url_for("hl7.outbox_page"))
