"""« Ouvrir dans Weasis » (issue 18, item 4): a radiologist or tele-expert who may see a case opens one of its
studies in Weasis, installed on his workstation, by a weasis:// link. The link runs Weasis's DICOMweb command
($dicom:rs) against Telerad's /dicomweb with a viewer token (engine.services.viewer_tokens): read-only, that study
only, valid VIEWER_MINUTES. The launch is recorded on the case's audit chain. For radiologists: docs/weasis.md.

The token is made by a POST (CSRF) and shown once, on a page that is not cached.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import gettext as _

from engine.errors import Forbidden, NotFound
from engine.services.cases import ensure_visible
from engine.services.viewer_tokens import VIEWER_MINUTES, VIEWER_ROLES, issue_viewer_token
from integrations.dicomweb.keys import BadQuery, check_uid
from integrations.dicomweb.query import study_case
from web.auth.access import current_actor, roles_required
from web.extensions import telerad

bp = Blueprint("weasis", __name__)


def _ctx() -> Any:
    return telerad(current_app).ctx


def weasis_link(dicomweb_url: str, study_uid: str, token: str) -> str:
    """The weasis:// URI that loads one study from a DICOMweb server with a bearer token."""
    command = f'$dicom:rs -u "{dicomweb_url}" -r "studyUID={study_uid}" -H "Authorization: Bearer {token}"'
    return "weasis://" + quote_plus(command)


@bp.post("/cases/<int:case_id>/weasis")
@roles_required(*sorted(VIEWER_ROLES))
def launch(case_id: int) -> Any:
    actor = current_actor()
    try:
        ensure_visible(_ctx(), actor, case_id)
        study_uid = check_uid(request.form.get("study", "")[:100], "study")
    except NotFound:
        abort(404)
    except BadQuery:
        abort(400)
    if study_case(_ctx(), actor, study_uid) != case_id:
        abort(404)  # not a study served on this case (unknown, held, or another case's): as a missing one
    try:
        issued = issue_viewer_token(_ctx(), actor, case_id, study_uid)
    except NotFound:
        abort(404)
    except Forbidden:
        abort(403)
    dicomweb_url = request.url_root.rstrip("/") + "/dicomweb"
    response = current_app.make_response(render_template(
        "clinical/weasis.html", case_id=case_id, study_uid=study_uid, expires_at=issued.expires_at,
        minutes=VIEWER_MINUTES, link=weasis_link(dicomweb_url, study_uid, issued.token), dicomweb_url=dicomweb_url,
        title=_("Ouvrir dans Weasis")))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_context_processor
def _weasis_roles() -> dict[str, Any]:
    return {"weasis_roles": tuple(sorted(VIEWER_ROLES))}
