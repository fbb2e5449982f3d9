"""Paramètres de rémunération (CH-6.4): the on-call fee, the teleexpertise fee and the monthly transmission costs of
the remuneration document, organisation-wide or for a site, by date of effect, with their history. Administrators
change them (audited); a site's medical lead reads his site's values; others 403. Thin views over
engine.services.fee_settings."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine.domain.charter import enforces
from engine.errors import Forbidden
from engine.services.fee_settings import (
    ON_CALL_FEE,
    TELEEXPERTISE_FEE,
    TRANSMISSION_COSTS,
    FeeSettingError,
    parse_effective,
    set_setting,
    settings_overview,
)
from web.auth.access import current_actor, roles_required
from web.extensions import telerad

bp = Blueprint("fees_settings", __name__)


def _ctx() -> Any:
    return telerad(current_app).ctx


def _labels() -> dict[str, str]:
    return {ON_CALL_FEE: _("Forfait de permanence des soins (par acte fait en garde, CH-7.5)"),
            TELEEXPERTISE_FEE: _("Rémunération de la téléexpertise (par second avis, CH-7.4)"),
            TRANSMISSION_COSTS: _("Frais de télétransmission (par site et par mois, CH-7.6)")}


def _page(error: str | None = None, status: int = 200) -> Any:
    try:
        overview = settings_overview(_ctx(), current_actor())
    except Forbidden:
        abort(403)
    return render_template("admin/fees/settings.html", overview=overview, labels=_labels(), error=error,
                           form=request.form if error else {}), status


@bp.get("/fees/settings")
@login_required
@roles_required("administrator", "site_lead")
def index() -> Any:
    return _page()


@bp.post("/fees/settings")
@login_required
@roles_required("administrator")
@enforces("CH-6.4", "CH-7.4")
def change() -> Any:
    form = request.form
    try:
        day = parse_effective(form.get("effective_from"))
        set_setting(_ctx(), current_actor(), form.get("name", ""), form.get("amount", ""), day,
                    form.get("reason", ""), site_id=form.get("site_id") or None)
    except Forbidden:
        abort(403)
    except FeeSettingError as err:
        return _page(str(err), 400)
    flash(_("Paramètre de rémunération enregistré, en vigueur à partir du %(day)s.", day=day.strftime("%d/%m/%Y")),
          "success")
    return redirect(url_for("fees_settings.index"))
