"""The radiologist's reading workstations ("Mes postes de lecture", CH-5.2): the stations he reads on and his
declaration that their display is a conformant diagnostic display. Not the DICOM viewing stations of
/account/workstations (stations that query Telerad for images): the page says so and links to it. A radiologist
records and removes his own; administrators see everyone's (engine.services.reading_stations checks it).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from engine.domain.data_checks import paris_date
from engine.errors import Forbidden, NotFound
from engine.services.reading_stations import declare_station, list_stations, remove_station
from engine.services.site_quality_access import RADIOLOGIST_ROLES, SiteQualityError, is_admin, is_radiologist
from web.auth.access import current_actor, roles_required
from web.extensions import telerad

bp = Blueprint("reading_stations", __name__)
ROLES = (*sorted(RADIOLOGIST_ROLES), "administrator")
FIELDS = ("name", "display_model", "declared_on", "reference")


def _ctx() -> Any:
    return telerad(current_app).ctx


@bp.route("/account/reading-stations", methods=["GET", "POST"])
@roles_required(*ROLES)
def index() -> Any:
    ctx, actor = _ctx(), current_actor()
    error, field = None, None
    typed: dict[str, Any] = dict.fromkeys(FIELDS, "")
    typed["conformity"] = False
    if request.method == "POST":
        typed = {name: request.form.get(name, "")[:5000] for name in FIELDS}
        typed["conformity"] = request.form.get("conformity") == "yes"
        try:
            declare_station(ctx, actor, typed["name"], typed["display_model"], typed["conformity"],
                            typed["declared_on"], typed["reference"])
        except Forbidden:
            abort(403)
        except SiteQualityError as err:
            error, field = str(err), err.field
        else:
            flash(_("Poste de lecture déclaré."), "success")
            return redirect(url_for("reading_stations.index"))
    return render_template("clinical/reading_stations.html", stations=list_stations(ctx, actor),
                           administrator=is_admin(actor), may_declare=is_radiologist(actor), error=error,
                           field=field, typed=typed, today=paris_date(ctx.clock.now()).isoformat()), \
        400 if error else 200


@bp.post("/account/reading-stations/<int:station_id>/delete")
@roles_required(*ROLES)
def remove(station_id: int) -> Any:
    try:
        remove_station(_ctx(), current_actor(), station_id)
    except NotFound:
        abort(404)
    except Forbidden:
        abort(403)
    flash(_("Poste de lecture retiré."), "success")
    return redirect(url_for("reading_stations.index"))
