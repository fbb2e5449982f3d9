"""Administrators organise on-call duty per territory and see the gaps in H24 coverage (CH-5.5)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine.errors import NotFound
from engine.services.directory import list_territories
from engine.services.oncall import OnCallError, add_slot, gaps, list_slots, remove_slot
from engine.services.people_search import oncall_refusal
from web.auth.access import current_actor, roles_required
from web.extensions import telerad
from web.shared.formatting import PARIS

bp = Blueprint("oncall", __name__, url_prefix="/admin/oncall")
HORIZON = timedelta(weeks=4)


def _ctx() -> Any:
    return telerad(current_app).ctx


def _parse_local(value: str | None) -> datetime | None:
    try:
        return datetime.strptime(value or "", "%Y-%m-%dT%H:%M").replace(tzinfo=PARIS)
    except ValueError:
        return None


@bp.route("", methods=["GET", "POST"])
@login_required
@roles_required("administrator")
def index() -> Any:
    ctx = _ctx()
    error = None
    if request.method == "POST":
        starts, ends = _parse_local(request.form.get("starts_at")), _parse_local(request.form.get("ends_at"))
        if starts is None or ends is None:
            error = _("Indiquez le début et la fin de la garde (date et heure).")
        else:
            username = request.form.get("username", "").strip()
            try:
                refusal = oncall_refusal(ctx, username)  # CH-5.5: an active radiologist with valid credentials
                if refusal:
                    raise OnCallError(refusal)
                add_slot(ctx, current_actor(), request.form.get("territory_id", ""), username, starts, ends)
            except OnCallError as err:
                error = str(err)
            else:
                flash(_("Garde enregistrée."), "success")
                return redirect(url_for("oncall.index"))
    # From the start of today (Paris), not from the current minute: the gaps read 18:30 → 08:00 whatever the
    # time the page is opened.
    today = datetime.combine(ctx.clock.now().astimezone(PARIS).date(), time(0), tzinfo=PARIS)
    territories = list_territories(ctx)
    return render_template("admin/oncall/index.html", slots=list_slots(ctx, today, today + HORIZON),
                           gaps=gaps(ctx, today, today + HORIZON), territories=territories,
                           error=error, form=request.form,
                           horizon_days=HORIZON.days)


@bp.post("/<int:slot_id>/delete")
@login_required
@roles_required("administrator")
def delete(slot_id: int) -> Any:
    try:
        remove_slot(_ctx(), current_actor(), slot_id)
    except NotFound:
        abort(404)
    flash(_("Garde supprimée."), "info")
    return redirect(url_for("oncall.index"))
