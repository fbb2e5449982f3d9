"""The radiologist's viewing stations ("Mes stations de visualisation"): the DICOM AE titles that may query and
retrieve the images of the cases he may see (C-FIND, C-GET) and receive them (C-MOVE), issue 18.

A radiologist registers and removes his own; an administrator those of any radiologist. The checks are made by
integrations.dicom.workstations (on the server, whatever the page shows).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from engine.errors import Forbidden, NotFound
from engine.services.directory import list_users_with_roles
from integrations.dicom.workstations import (
    WORKSTATION_ROLES,
    WorkstationError,
    add_workstation,
    is_administrator,
    list_workstations,
    remove_workstation,
    telerad_endpoint,
)
from web.auth.access import current_actor, roles_required
from web.extensions import telerad

bp = Blueprint("workstations", __name__)
ROLES = (*sorted(WORKSTATION_ROLES), "administrator")


def _ctx() -> Any:
    return telerad(current_app).ctx


def _radiologists() -> list[tuple[str, str]]:
    """(username, display name) of the active radiologists, for an administrator's owner field."""
    return [(u.username, u.display_name) for u in list_users_with_roles(_ctx(), current_actor())
            if u.active and WORKSTATION_ROLES.intersection(u.roles)]


@bp.route("/account/workstations", methods=["GET", "POST"])
@roles_required(*ROLES)
def index() -> Any:
    actor = current_actor()
    administrator = is_administrator(actor)
    fields = ("owner", "ae_title", "host", "port")
    error, typed = None, dict.fromkeys(fields, "")
    if request.method == "POST":
        typed = {name: request.form.get(name, "")[:300] for name in fields}
        owner = typed["owner"].strip() if administrator and typed["owner"].strip() else actor.user_id
        try:
            add_workstation(_ctx(), actor, owner, typed["ae_title"], typed["host"], typed["port"])
        except WorkstationError as err:
            error = str(err)
        except Forbidden:
            abort(403)
        else:
            flash(_("Station %(title)s enregistrée.", title=typed["ae_title"].strip()), "success")
            return redirect(url_for("workstations.index"))
    ae_title, port = telerad_endpoint()
    return render_template("clinical/workstations.html", stations=list_workstations(_ctx(), actor),
                           administrator=administrator, radiologists=_radiologists() if administrator else [],
                           error=error, typed=typed, telerad_ae_title=ae_title, telerad_port=port), \
        400 if error else 200


@bp.post("/account/workstations/<int:workstation_id>/delete")
@roles_required(*ROLES)
def remove(workstation_id: int) -> Any:
    try:
        remove_workstation(_ctx(), current_actor(), workstation_id)
    except NotFound:
        abort(404)
    except Forbidden:
        abort(403)
    flash(_("Station retirée : ses associations seront refusées."), "success")
    return redirect(url_for("workstations.index"))
