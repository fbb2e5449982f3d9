"""Site visits (CH-5.6): "Qualité des sites", the radiologists' periodic visits to the sites they serve under a
convention. A radiologist sees and records his own visits; a site's medical lead sees those of his sites;
administrators see and record every one. The engine checks who may do what (engine.services.site_visits),
whatever the page shows; everyone else gets 403.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from engine.domain.data_checks import paris_date
from engine.errors import Forbidden
from engine.services.directory import list_sites
from engine.services.protocols import list_protocols
from engine.services.site_quality_access import (
    RADIOLOGIST_ROLES,
    SiteQualityError,
    check_site_visible,
    is_admin,
    is_radiologist,
)
from engine.services.site_visits import (
    bound_radiologists,
    bound_sites,
    list_visits,
    record_visit,
    visit_schedule,
)
from web.auth.access import current_actor, roles_required
from web.extensions import telerad

bp = Blueprint("site_visits", __name__)
ROLES = (*sorted(RADIOLOGIST_ROLES), "site_lead", "administrator")
FIELDS = ("site_id", "radiologist", "visited_on", "findings")


def _ctx() -> Any:
    return telerad(current_app).ctx


def site_filter() -> str | None:
    """The ?site= filter of the quality pages, refused (403) for a site the user may not see."""
    site = (request.args.get("site") or "").strip()[:64] or None
    if site is not None:
        try:
            check_site_visible(_ctx(), current_actor(), site)
        except (Forbidden, SiteQualityError):
            abort(403)
    return site


@bp.route("/site-visits", methods=["GET", "POST"])
@roles_required(*ROLES)
def index() -> Any:
    ctx, actor = _ctx(), current_actor()
    site = site_filter()
    error, field = None, None
    typed: dict[str, Any] = dict.fromkeys(FIELDS, "")
    typed["protocols"] = []
    may_record = is_admin(actor) or is_radiologist(actor)
    if request.method == "POST":
        if not may_record:
            abort(403)
        typed = {name: request.form.get(name, "")[:5000] for name in FIELDS}
        typed["protocols"] = [p[:64] for p in request.form.getlist("protocols")[:60]]
        try:
            record_visit(ctx, actor, typed["site_id"].strip(), typed["radiologist"].strip() or actor.user_id,
                         typed["visited_on"], typed["findings"], typed["protocols"])
        except Forbidden:
            abort(403)
        except SiteQualityError as err:
            error, field = str(err), err.field
        else:
            flash(_("Visite enregistrée."), "success")
            return redirect(url_for("site_visits.index"))
    today = paris_date(ctx.clock.now())
    schedule = [v for v in visit_schedule(ctx, actor, today) if site is None or v.site_id == site]
    return render_template(
        "clinical/site_visits.html", schedule=schedule, visits=list_visits(ctx, actor, site_id=site),
        may_record=may_record, administrator=is_admin(actor),
        sites=bound_sites(ctx, actor.user_id) if is_radiologist(actor) and not is_admin(actor) else _all_sites(ctx),
        radiologists=bound_radiologists(ctx, actor) if is_admin(actor) else [],
        protocols=list_protocols(ctx, include_inactive=False) if may_record else [],
        error=error, field=field, typed=typed, site=site, today=today.isoformat()), 400 if error else 200


def _all_sites(ctx: Any) -> list[tuple[str, str]]:
    return [(site_id, name) for site_id, name, _territory in list_sites(ctx)]
