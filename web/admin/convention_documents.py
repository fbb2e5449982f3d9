"""A convention's document, downloaded (issue 19, item 5): by administrators, auditors and the medical leads of the
convention's site only (the role is checked here, the site by the engine service); every read is audited. Apart
from the directory's blueprint, which is for administrators only."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort
from flask_login import login_required

from engine.errors import Forbidden, NotFound
from engine.services.convention_documents import document_content
from web.admin.account_support import ctx
from web.auth.access import current_actor, roles_required

bp = Blueprint("convention_documents", __name__, url_prefix="/admin")
SUFFIXES = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}


@bp.get("/directory/conventions/<int:convention_id>/documents/<int:document_id>")
@login_required
@roles_required("administrator", "auditor", "site_lead")
def document_file(convention_id: int, document_id: int) -> Any:
    try:
        content, _filename, content_type = document_content(ctx(), current_actor(), convention_id, document_id)
    except Forbidden:
        abort(403)
    except NotFound:
        abort(404)
    response = Response(content, mimetype=content_type)
    # the download name is ours (the stored one is shown on the page): nothing typed by a user in a header
    response.headers["Content-Disposition"] = (f"attachment; filename=convention-{convention_id}-document-"
                                               f"{document_id}{SUFFIXES.get(content_type, '')}")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response
