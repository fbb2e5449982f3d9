"""Administrators choose the charter version (rule pack, CH-9.1) each organisation follows from a date, and see every
radiologist's teleradiology share (CH-3.5) with the activity declared for him. Thin views over
engine.services.charter_packs and engine.services.teleradiology_share."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine.domain.charter import enforces
from engine.domain.charter_packs import OVER_CAP_MODES, PACKS, SKIP, UnknownPack
from engine.services.charter_packs import PackError, assign_pack, list_assignments, organisations
from engine.services.teleradiology_share import shares
from web.auth.access import current_actor, roles_required
from web.extensions import telerad
from web.shared.activity_declaration import declare_from_form, parse_count, parse_day

bp = Blueprint("charter_packs", __name__, url_prefix="/admin/charter-packs")


def _ctx() -> Any:
    return telerad(current_app).ctx


@bp.route("", methods=["GET", "POST"])
@login_required
@roles_required("administrator")
@enforces("CH-9.1")
def index() -> Any:
    ctx = _ctx()
    error = None
    if request.method == "POST":
        start = parse_day(request.form.get("effective_from"))
        cap_text = (request.form.get("share_cap_percent") or "").strip()
        cap = parse_count(cap_text) if cap_text else None
        mode = request.form.get("over_cap_mode", SKIP)
        if start is None:
            error = _("Indiquez la date d'application (jour/mois/année).")
        elif cap_text and cap is None:
            error = _("Le plafond est un pourcentage entier entre 1 et 100.")
        else:
            try:
                assign_pack(ctx, current_actor(), request.form.get("organisation", ""), request.form.get("pack", ""),
                            start, cap, mode if mode in OVER_CAP_MODES else "")
            except (PackError, UnknownPack) as err:
                error = str(err)
            else:
                flash(_("Version de la charte enregistrée : elle s'applique aux dossiers commencés à partir du "
                        "%(day)s.", day=start.strftime("%d/%m/%Y")), "success")
                return redirect(url_for("charter_packs.index"))
    return render_template("admin/charter_packs/index.html", packs=list(PACKS.values()),
                           assignments=list_assignments(ctx), organisations=organisations(ctx), error=error,
                           form=request.form, modes=OVER_CAP_MODES), (400 if error else 200)


@bp.route("/shares", methods=["GET", "POST"])
@login_required
@roles_required("administrator")
@enforces("CH-3.5")
def share_list() -> Any:
    ctx = _ctx()
    error = None
    if request.method == "POST":
        error = declare_from_form(ctx, current_actor(), request.form.get("username", ""))
        if error is None:
            flash(_("Activité déclarée."), "success")
            return redirect(url_for("charter_packs.share_list"))
    return render_template("admin/charter_packs/shares.html", shares=shares(ctx, current_actor()), error=error,
                           form=request.form), (400 if error else 200)
