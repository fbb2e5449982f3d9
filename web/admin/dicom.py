"""The DICOM administration page: the calling AE titles allowed per site, the studies being received and the
instances held until their case may take them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from engine.errors import NotFound
from engine.services.directory import list_sites
from integrations.dicom.callers import (
    CallerError,
    add_calling_ae,
    list_calling_aes,
    remove_calling_ae,
    set_caller_access,
)
from integrations.dicom.pacs import list_pacs, remove_pacs, set_pacs
from integrations.dicom.studies import held_instances, studies_to_watch
from web.auth.access import current_actor, roles_required
from web.extensions import telerad

bp = Blueprint("dicom", __name__)


def _ctx() -> Any:
    return telerad(current_app).ctx


@bp.route("/admin/dicom", methods=["GET", "POST"])
@roles_required("administrator")
def admin() -> Any:
    fields = ("site_id", "ae_title", "allowed_sources", "client_cert_name")
    error, typed = None, dict.fromkeys(fields, "")
    if request.method == "POST":
        typed = {name: request.form.get(name, "")[:4000] for name in fields}
        try:
            add_calling_ae(_ctx(), current_actor(), typed["site_id"], typed["ae_title"],
                           allowed_sources=typed["allowed_sources"], client_cert_name=typed["client_cert_name"])
        except CallerError as err:
            error = str(err)
        else:
            flash(_("Titre AE %(title)s autorisé.", title=typed["ae_title"].strip()), "success")
            return redirect(url_for("dicom.admin"))
    return render_template("admin/dicom/admin.html", callers=list_calling_aes(_ctx()), sites=list_sites(_ctx()),
                           studies=studies_to_watch(_ctx()), held=held_instances(_ctx()), error=error,
                           typed=typed, pacs=list_pacs(_ctx())), 400 if error else 200


@bp.post("/admin/dicom/callers/<int:caller_id>/delete")
@roles_required("administrator")
def remove_caller(caller_id: int) -> Any:
    try:
        remove_calling_ae(_ctx(), current_actor(), caller_id)
    except NotFound:
        abort(404)
    flash(_("Titre AE retiré : ses associations seront refusées."), "success")
    return redirect(url_for("dicom.admin"))


@bp.post("/admin/dicom/callers/<int:caller_id>/access")
@roles_required("administrator")
def caller_access(caller_id: int) -> Any:
    """Where a calling AE may connect from and the certificate it must present (CH-5.3, CH-8.1)."""
    try:
        set_caller_access(_ctx(), current_actor(), caller_id, request.form.get("allowed_sources", "")[:4000],
                          request.form.get("client_cert_name", "")[:400])
    except NotFound:
        abort(404)
    except CallerError as err:
        flash(str(err), "danger")
    else:
        flash(_("Restrictions de connexion du titre AE enregistrées."), "success")
    return redirect(url_for("dicom.admin") + "#callers")


@bp.post("/admin/dicom/pacs")
@roles_required("administrator")
def pacs_set() -> Any:
    """Declare or replace a site's PACS, queried for the prior exams (integrations.dicom.priors)."""
    form = {name: request.form.get(name, "")[:600] for name in ("site_id", "ae_title", "host", "port", "dicomweb_url")}
    try:
        set_pacs(_ctx(), current_actor(), form["site_id"], form["ae_title"], form["host"], form["port"],
                 form["dicomweb_url"])
    except CallerError as err:
        flash(str(err), "danger")
    else:
        flash(_("PACS du site enregistré."), "success")
    return redirect(url_for("dicom.admin") + "#pacs")


@bp.post("/admin/dicom/pacs/<site_id>/delete")
@roles_required("administrator")
def pacs_remove(site_id: str) -> Any:
    try:
        remove_pacs(_ctx(), current_actor(), site_id[:64])
    except NotFound:
        abort(404)
    flash(_("PACS du site retiré : ses examens antérieurs ne seront plus demandés."), "success")
    return redirect(url_for("dicom.admin") + "#pacs")
