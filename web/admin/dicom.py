"""The DICOM administration page: the calling AE titles allowed per site, the studies being received and the
instances held until their case may take them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from engine.errors import NotFound
from engine.services.directory import list_sites
from integrations.dicom.callers import CallerError, add_calling_ae, list_calling_aes, remove_calling_ae
from integrations.dicom.studies import held_instances, studies_to_watch
from web.auth.access import current_actor, roles_required
from web.extensions import telerad

bp = Blueprint("dicom", __name__)


def _ctx() -> Any:
    return telerad(current_app).ctx


@bp.route("/admin/dicom", methods=["GET", "POST"])
@roles_required("administrator")
def admin() -> Any:
    error, typed = None, {"site_id": "", "ae_title": ""}
    if request.method == "POST":
        typed = {"site_id": request.form.get("site_id", ""), "ae_title": request.form.get("ae_title", "")}
        try:
            add_calling_ae(_ctx(), current_actor(), typed["site_id"], typed["ae_title"])
        except CallerError as err:
            error = str(err)
        else:
            flash(_("Titre AE %(title)s autorisé.", title=typed["ae_title"].strip()), "success")
            return redirect(url_for("dicom.admin"))
    return render_template("admin/dicom/admin.html", callers=list_calling_aes(_ctx()), sites=list_sites(_ctx()),
                           studies=studies_to_watch(_ctx()), held=held_instances(_ctx()), error=error,
                           typed=typed), 400 if error else 200


@bp.post("/admin/dicom/callers/<int:caller_id>/delete")
@roles_required("administrator")
def remove_caller(caller_id: int) -> Any:
    try:
        remove_calling_ae(_ctx(), current_actor(), caller_id)
    except NotFound:
        abort(404)
    flash(_("Titre AE retiré : ses associations seront refusées."), "success")
    return redirect(url_for("dicom.admin"))
