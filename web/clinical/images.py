"""Images of a case: the series received with their non-diagnostic previews, and the web upload (CH-4.1.11,
CH-5.1).

Previews are rendered ahead by the worker (integrations.dicom.preview_queue); these pages only read the cache and
show each preview ready, in preparation or unavailable. A request never starts a renderer.

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
from integrations.dicom.pacs import PriorLine, case_priors
from integrations.dicom.preview_queue import ask_for_preview
from integrations.dicom.previews import PENDING, READY, UNAVAILABLE, cache_of, cached_png, preview_state
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


@dataclass(frozen=True)
class ShownImages:
    series: list[dict[str, Any]]  # SeriesLine fields + "preview": READY, PENDING or UNAVAILABLE
    held_studies: int
    identity_checks: tuple[int, ...] = ()  # reconciliation cases of the held studies
    priors: tuple[PriorLine, ...] = ()  # prior exams from the site's PACS (their series are not listed above)

    @property
    def previews_pending(self) -> bool:
        return any(line["preview"] == PENDING for line in self.series)


def _preview_of(case_id: int, series_uid: str) -> tuple[str, str] | None:
    """(state, SHA-256 of the file the preview shows) of a series shown on the case, None when the case does not
    show it (or it has no instance); a series not yet rendered is queued for the worker."""
    source = preview_source(_ctx(), case_id, series_uid)
    if source is None:
        return None
    cache = cache_of(dicom_storage())
    state = preview_state(cache, source)
    if state == PENDING:
        ask_for_preview(cache, series_uid)
    return state, source


def _shown_images(case_id: int) -> ShownImages:
    images = case_images(_ctx(), case_id)
    priors = tuple(case_priors(_ctx(), case_id))
    prior_uids = {prior.study_uid for prior in priors}
    shown = [{**asdict(line), "preview": (_preview_of(case_id, line.uid) or (UNAVAILABLE,))[0]}
             for line in images.series if line.study_uid not in prior_uids]
    return ShownImages(shown, images.held_studies, images.identity_checks, priors)


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
    preview = _preview_of(case_id, uid[:64])
    if preview is None:
        abort(404)  # not a series of this case: the same answer as a case the person may not see
    state, source = preview
    content = cached_png(cache_of(dicom_storage()), source) if state == READY else None
    if content is not None:
        return Response(content, mimetype="image/png")
    if state == PENDING:
        return Response(_("Aperçu en préparation : rechargez la page dans quelques secondes."), 202,
                        mimetype="text/plain", headers={"Retry-After": "5"})
    return Response(_("aperçu indisponible"), 404, mimetype="text/plain")
