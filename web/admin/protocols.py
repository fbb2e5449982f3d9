"""The protocol catalogue administrators edit (CH-4.1.9, CH-4.1.10): each protocol's modality (whence whether it
is ionizing), contrast agent class (none: no injection), body region and patient groups, and whether it is
still offered to radiologists.

Every route requires the administrator role on the server; every change goes through
engine.services.protocols, which checks the role again, validates the protocol (French refusals shown next to the
form, which keeps what was typed) and records the change in the audit chain in the same transaction. Protocols are
deactivated, never deleted; the modality and agent class of an existing protocol cannot change.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField, SubmitField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from engine.domain.protocols import AGENT_CLASSES, MODALITY_LABELS, PATIENT_GROUPS, InvalidProtocol, Protocol
from engine.errors import Forbidden, NotFound
from engine.services.context import EngineContext
from engine.services.protocols import get_protocol, list_protocols, save_protocol, set_active
from web.auth.access import current_actor, roles_required
from web.extensions import telerad

bp = Blueprint("protocols", __name__, url_prefix="/admin/protocols")

# The modalities an administrator picks from (DICOM codes, engine.domain.radioprotection), in French.
MODALITY_CHOICES = [("CT", _l("Scanner (CT)")), ("MR", _l("IRM (MR)")), ("US", _l("Échographie (US)")),
                    ("XR", _l("Radiographie (XR)")), ("MG", _l("Mammographie (MG)")), ("XA", _l("Angiographie (XA)")),
                    ("RF", _l("Radioscopie (RF)")), ("NM", _l("Scintigraphie (NM)")), ("PT", _l("TEP (PT)"))]
AGENT_LABELS = {"iodine": _l("Produit de contraste iodé"), "gadolinium": _l("Chélate de gadolinium"),
                "ultrasound": _l("Produit de contraste ultrasonore")}
GROUP_LABELS = {"adult": _l("Adulte"), "child": _l("Enfant"), "pregnant": _l("Femme enceinte")}
assert set(AGENT_LABELS) == set(AGENT_CLASSES) and set(GROUP_LABELS) == set(PATIENT_GROUPS)
assert {code for code, _label in MODALITY_CHOICES} <= set(MODALITY_LABELS)


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("validate_choice", False)  # the service says what is wrong, in French
        super().__init__(*args, **kwargs)


class ProtocolForm(FlaskForm):
    label = StringField(_l("Libellé"), validators=[DataRequired(message=_l("Saisissez le libellé.")),
                                                   Length(max=200, message=_l("200 caractères au plus."))],
                        description=_l("Ce que le radiologue lit dans la liste, par exemple « Scanner cérébral sans "
                                       "injection »."), render_kw={"required": True, "maxlength": 200})
    modality = SelectField(_l("Modalité"), choices=[SelectChoice(*c) for c in MODALITY_CHOICES], validate_choice=False,
                           description=_l("Détermine si la technique est irradiante et à quels examens le protocole "
                                          "est proposé."))
    agent_class = SelectField(_l("Produit de contraste"), validate_choice=False,
                              choices=[SelectChoice("", _l("Aucune injection")),
                                       *(SelectChoice(*c) for c in AGENT_LABELS.items())],
                              description=_l("Un protocole avec injection impose la vérification des "
                                             "contre-indications et la présence d'un médecin."))
    body_region = StringField(_l("Région anatomique"),
                              validators=[DataRequired(message=_l("Saisissez la région anatomique.")),
                                          Length(max=64, message=_l("64 caractères au plus."))],
                              render_kw={"required": True, "maxlength": 64})
    patient_groups = CheckboxesField(_l("Patients concernés"), choices=[SelectChoice(*c) for c in GROUP_LABELS.items()],
                                     default=["adult", "child"])
    active = BooleanField(_l("Proposé aux radiologues (actif)"), default=True)


class NewProtocolForm(ProtocolForm):
    protocol_id = StringField(_l("Identifiant"), validators=[DataRequired(message=_l("Saisissez l'identifiant.")),
                                                             Length(max=64, message=_l("64 caractères au plus."))],
                              description=_l("Lettres, chiffres et « _ », par exemple « ct_sinus_plain ». Il ne "
                                             "change plus ensuite."),
                              render_kw={"required": True, "maxlength": 64, "autocapitalize": "none",
                                         "spellcheck": "false"})
    submit = SubmitField(_l("Créer le protocole"))


class EditProtocolForm(ProtocolForm):
    submit = SubmitField(_l("Enregistrer le protocole"))


class ActionForm(FlaskForm):
    """A button only ((de)activate): the CSRF token is its one field."""


def _ctx() -> EngineContext:
    return telerad(current_app).ctx


def _protocol_of(form: ProtocolForm, protocol_id: str) -> Protocol:
    return Protocol(protocol_id.strip(), (form.label.data or "").strip(), form.modality.data or "",
                    (form.body_region.data or "").strip(), form.agent_class.data or None,
                    tuple(form.patient_groups.data or ()), bool(form.active.data))


@bp.context_processor
def _labels() -> dict[str, Any]:
    return {"modality_labels": dict(MODALITY_CHOICES), "agent_labels": AGENT_LABELS, "group_labels": GROUP_LABELS}


@bp.get("")
@login_required
@roles_required("administrator")
def index() -> Any:
    modality = request.args.get("modality") or None
    protocols = list_protocols(_ctx())
    if modality is not None:
        protocols = [p for p in protocols if p.modality == modality]
    return render_template("admin/protocols/index.html", protocols=protocols, modality=modality,
                           modalities=MODALITY_CHOICES, action_form=ActionForm())


@bp.route("/new", methods=["GET", "POST"])
@login_required
@roles_required("administrator")
def new() -> Any:
    form = NewProtocolForm()
    error = None
    if request.method == "POST" and form.validate():
        try:
            saved = save_protocol(_ctx(), current_actor(), _protocol_of(form, form.protocol_id.data or ""),
                                  create=True)
        except InvalidProtocol as err:
            error = str(err)
        except Forbidden:
            abort(403)
        else:
            flash(_("Protocole « %(label)s » créé.", label=saved.label), "success")
            return redirect(url_for("protocols.index"))
    return render_template("admin/protocols/edit.html", form=form, protocol=None, error=error)


@bp.route("/<protocol_id>/edit", methods=["GET", "POST"])
@login_required
@roles_required("administrator")
def edit(protocol_id: str) -> Any:
    try:
        protocol = get_protocol(_ctx(), protocol_id)
    except NotFound:
        abort(404)
    form = EditProtocolForm(data={"label": protocol.label, "modality": protocol.modality,
                                  "agent_class": protocol.agent_class or "", "body_region": protocol.body_region,
                                  "patient_groups": list(protocol.patient_groups), "active": protocol.active})
    # Fixed once created: shown, not editable (the service refuses a change anyway).
    form.modality.render_kw = {"disabled": True}
    form.agent_class.render_kw = {"disabled": True}
    form.modality.data, form.agent_class.data = protocol.modality, protocol.agent_class or ""
    error = None
    if request.method == "POST" and form.validate():
        try:
            saved = save_protocol(_ctx(), current_actor(), _protocol_of(form, protocol.id), create=False)
        except InvalidProtocol as err:
            error = str(err)
        except NotFound:
            abort(404)
        except Forbidden:
            abort(403)
        else:
            flash(_("Protocole « %(label)s » enregistré.", label=saved.label), "success")
            return redirect(url_for("protocols.index"))
    return render_template("admin/protocols/edit.html", form=form, protocol=protocol, error=error)


@bp.post("/<protocol_id>/active")
@login_required
@roles_required("administrator")
def toggle(protocol_id: str) -> Any:
    if not ActionForm().validate():
        abort(400)
    active = request.form.get("active") == "1"
    try:
        saved = set_active(_ctx(), current_actor(), protocol_id, active)
    except NotFound:
        abort(404)
    except Forbidden:
        abort(403)
    flash(_("Protocole « %(label)s » réactivé.", label=saved.label) if active else
          _("Protocole « %(label)s » désactivé : il n'est plus proposé aux radiologues.", label=saved.label), "info")
    return redirect(url_for("protocols.index"))
