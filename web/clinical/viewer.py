"""The image viewer of a case (issue 18, CH-4.1.11, CH-4.2.2): Cornerstone3D in the browser, reading the case's
studies and the patient's other visible studies (priors) from Telerad's own DICOMweb (`/dicomweb`, session
cookie). A viewing aid, not a diagnostic console (CH-5.2): the page says so.

Who: radiologists and tele-experts who may see the case (engine.services.cases.ensure_visible); anyone else gets
403, and so does a case that does not exist or that the person may not see (no existence leak). The DICOMweb
routes check visibility again for every request.

CSP: the page and its assets get the application's CSP plus `'wasm-unsafe-eval'` (the DICOM codecs are
WebAssembly), `worker-src 'self'` (the decoding worker) and `blob:` images (the tools' mouse cursors are SVG images
the page's own script makes into blob: URLs). Nothing else: no 'unsafe-eval', no inline script or style.
The assets (built by scripts/build_viewer.mjs into web/static/vendor/viewer/) are served here rather than under
/static because a worker's CSP is the one of its own response: the worker compiles the codecs, so it must be sent
with this policy too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, render_template, send_from_directory
from flask_login import login_required

from engine.errors import Forbidden, NotFound
from engine.services.cases import ensure_visible
from integrations.dicom.studies import case_images
from web.auth.access import current_actor
from web.extensions import telerad
from web.shared.csp import CSP

bp = Blueprint("viewer", __name__)

VIEWER_ROLES = ("radiologist", "local_radiologist", "tele_expert")
VIEWER_CSP = (CSP.replace("script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'")
              .replace("img-src 'self' data:", "img-src 'self' data: blob:") + "; worker-src 'self'")
ASSET_TYPES = {".js": "text/javascript", ".wasm": "application/wasm", ".txt": "text/plain"}


def _assets() -> Path:
    return Path(current_app.static_folder or "") / "vendor" / "viewer"


def may_view(case_id: int) -> bool:
    """Whether the signed-in person gets the viewer of this case (the case page shows the link only then)."""
    actor = current_actor()
    if not set(VIEWER_ROLES) & set(actor.roles):
        return False
    try:
        ensure_visible(telerad(current_app).ctx, actor, case_id)
    except (NotFound, Forbidden):
        return False
    return True


@bp.app_context_processor
def _viewer_helper() -> dict[str, Any]:
    return {"case_viewer_allowed": may_view}


@bp.get("/cases/<int:case_id>/viewer")
@login_required
def show(case_id: int) -> Any:
    if not may_view(case_id):
        abort(403)
    images = case_images(telerad(current_app).ctx, case_id)
    studies = list(dict.fromkeys(line.study_uid for line in images.series if line.status == "attached"))
    ready = (_assets() / "viewer.js").is_file()
    response = current_app.make_response(render_template("clinical/viewer.html", case_id=case_id,
                                                          studies=studies, ready=ready))
    response.headers["Content-Security-Policy"] = VIEWER_CSP
    return response


@bp.get("/viewer/assets/<name>")
@login_required
def asset(name: str) -> Any:
    """The viewer bundle, its decoding worker and its WASM codecs (a flat folder: no sub-path is served)."""
    kind = ASSET_TYPES.get(Path(name).suffix)
    if kind is None or "/" in name or name.startswith("."):
        abort(404)
    response = send_from_directory(_assets(), name, mimetype=kind, max_age=3600)
    response.headers["Content-Security-Policy"] = VIEWER_CSP
    return response
