"""Images of a case: the series received with their non-diagnostic previews, and the web upload (CH-4.1.11,
CH-5.1).

The case page includes clinical/cases/_images.html, which calls `dicom_case_images(case_id)` (a context helper
registered with this blueprint) after case_record has checked that the person may see the case.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine.errors import Forbidden, NotFound
from engine.services.cases import ensure_visible
from integrations.dicom.previews import series_preview
from integrations.dicom.studies import case_images, preview_source
from integrations.dicom.upload import UPLOAD_ROLES, upload_files
from web.auth.access import current_actor
from web.extensions import telerad

bp = Blueprint("images", __name__)


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
