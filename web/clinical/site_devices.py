"""The imaging devices of the sites and their validation (CH-5.6, CH-5.2), a tab of "Qualité des sites".
Administrators see every site's devices, a site's medical lead his sites', a radiologist the sites he is bound to
by a convention; a radiologist bound to the site validates a device in his own name. The checks are made by
engine.services.site_devices; everyone else gets 403, a device of a site the user may not see 403 or 404.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from engine.domain.data_checks import paris_date
from engine.domain.protocols import MODALITY_LABELS
from engine.errors import Forbidden, NotFound
from engine.services.site_devices import add_device, device_sites, list_devices, validate_device
from engine.services.site_quality_access import SiteQualityError
from web.auth.access import current_actor, roles_required
from web.clinical.site_visits import ROLES, site_filter
from web.extensions import telerad

bp = Blueprint("site_devices", __name__)
FIELDS = ("site_id", "modality", "manufacturer", "model", "serial", "installed_on")


def _ctx() -> Any:
    return telerad(current_app).ctx


def _page(error: str | None = None, field: str | None = None, typed: dict[str, str] | None = None,
          failed_device: int | None = None) -> Any:
    ctx, actor = _ctx(), current_actor()
    site = site_filter()
    return render_template(
        "clinical/site_devices.html", devices=list_devices(ctx, actor, site_id=site), sites=device_sites(ctx, actor),
        modalities=sorted(MODALITY_LABELS.items()), error=error, field=field,
        typed=typed or dict.fromkeys(FIELDS, ""), failed_device=failed_device, site=site,
        today=paris_date(ctx.clock.now()).isoformat()), 400 if error else 200


@bp.route("/site-devices", methods=["GET", "POST"])
@roles_required(*ROLES)
def index() -> Any:
    if request.method == "GET":
        return _page()
    typed = {name: request.form.get(name, "")[:300] for name in FIELDS}
    try:
        add_device(_ctx(), current_actor(), typed["site_id"].strip(), typed["modality"], typed["manufacturer"],
                   typed["model"], typed["serial"], typed["installed_on"])
    except Forbidden:
        abort(403)
    except SiteQualityError as err:
        return _page(str(err), err.field, typed)
    flash(_("Appareil enregistré : il reste à le faire valider par un radiologue lié au site."), "success")
    return redirect(url_for("site_devices.index"))


@bp.post("/site-devices/<int:device_id>/validate")
@roles_required(*ROLES)
def validate(device_id: int) -> Any:
    try:
        validate_device(_ctx(), current_actor(), device_id, request.form.get("validated_on", "")[:20],
                        request.form.get("remarks", "")[:5000])
    except NotFound:
        abort(404)
    except Forbidden:
        abort(403)
    except SiteQualityError as err:
        return _page(str(err), err.field, failed_device=device_id)
    flash(_("Validation de l’appareil enregistrée."), "success")
    return redirect(url_for("site_devices.index"))
