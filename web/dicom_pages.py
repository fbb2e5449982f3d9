"""Images of a case (series list, non-diagnostic previews, upload) and the DICOM administration page.

The case page includes cases/_images.html, which calls `dicom_case_images(case_id)` (a context helper
registered with this blueprint) after case_record has checked that the person may see the case.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine.errors import Forbidden, NotFound
from engine.services.cases import ensure_visible
from engine.services.directory import list_sites
from integrations.dicom.callers import CallerError, add_calling_ae, list_calling_aes, remove_calling_ae
from integrations.dicom.studies import case_images, held_instances, preview_source, studies_to_watch
from integrations.dicom.thumbnails import series_preview
from integrations.dicom.upload import UPLOAD_ROLES, upload_files
from web.extensions import telerad
from web.security import current_actor, roles_required

bp = Blueprint("dicom", __name__)


def _ctx() -> Any:
    return telerad(current_app).ctx


def dicom_storage() -> Path:
    """Where received DICOM files live (the SCP of `telerad run`/`telerad worker` writes there too)."""
    return Path(telerad(current_app).settings.instance_path) / "dicom"


def _previews() -> Path:
    return Path(telerad(current_app).settings.instance_path) / "dicom-previews"


@dataclass(frozen=True)
class ShownImages:
    series: list[dict[str, Any]]  # SeriesLine fields + "preview": whether a preview could be rendered
    held_studies: int


def _shown_images(case_id: int) -> ShownImages:
    images = case_images(_ctx(), case_id)
    shown = []
    for line in images.series:
        source = preview_source(_ctx(), case_id, line.uid)
        preview = source is not None and series_preview(dicom_storage(), _previews(), source) is not None
        shown.append({**asdict(line), "preview": preview})
    return ShownImages(shown, images.held_studies)


@bp.app_context_processor
def _case_images_helper() -> dict[str, Any]:
    return {"dicom_case_images": _shown_images, "dicom_upload_roles": UPLOAD_ROLES}


@bp.post("/cases/<int:case_id>/dicom")
@login_required
def upload(case_id: int) -> Any:
    actor = current_actor()
    uploads = [(u.filename or "", u.stream) for u in request.files.getlist("dicom_files") if u and u.filename]
    try:
        ensure_visible(_ctx(), actor, case_id)
        if not uploads:
            flash(_("Choisissez un ou plusieurs fichiers DICOM, ou une archive ZIP."), "warning")
        else:
            summary = upload_files(_ctx(), actor, case_id, uploads, dicom_storage())
            category = "success" if summary.stored and not (summary.refused or summary.held) else "warning"
            flash(_("Images DICOM : %(summary)s", summary=summary.french()), category)
    except NotFound:
        abort(404)
    except Forbidden:
        abort(403)
    return redirect(url_for("cases.show", case_id=case_id) + "#images")


@bp.get("/cases/<int:case_id>/series/<uid>/thumbnail.png")
@login_required
def thumbnail(case_id: int, uid: str) -> Any:
    try:
        ensure_visible(_ctx(), current_actor(), case_id)
    except NotFound:
        abort(404)
    source = preview_source(_ctx(), case_id, uid[:64])
    content = series_preview(dicom_storage(), _previews(), source) if source else None
    if content is None:
        abort(404)
    return Response(content, mimetype="image/png")


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
    return render_template("dicom/admin.html", callers=list_calling_aes(_ctx()), sites=list_sites(_ctx()),
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
