"""The report in two steps: the author's draft, autosaved from the report task page (static/js/report-draft.js) and
given back to prefill it; the signature shown on the case page; the signed addenda after release."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine.errors import Conflict, Forbidden, NotFound
from engine.services.report_addenda import Addendum, add_addendum, list_addenda, may_add, signer_name
from engine.services.report_drafts import REPORT_FORMS, DraftRefused, read_draft, save_draft
from engine.services.report_signature import SIGNED_KEY
from forms import FormValidationError
from web.auth.access import current_actor
from web.extensions import telerad

bp = Blueprint("reports", __name__)


def _ctx() -> Any:
    return telerad(current_app).ctx


def _refused(status: int, message: str) -> Any:
    return jsonify({"error": message}), status


@bp.get("/tasks/<task_id>/draft")
@login_required
def draft(task_id: str) -> Any:
    try:
        found = read_draft(_ctx(), current_actor(), task_id)
    except NotFound:
        return _refused(404, _("Tâche introuvable."))
    except Forbidden as err:
        return _refused(403, str(err))
    if found is None:
        return jsonify({"fields": {}, "updated_at": None})
    return jsonify({"fields": found["fields"], "updated_at": found["updated_at"].isoformat()})


@bp.post("/tasks/<task_id>/draft")
@login_required
def autosave(task_id: str) -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _refused(400, _("Brouillon illisible."))
    try:
        save_draft(_ctx(), current_actor(), task_id, body.get("fields"))
    except DraftRefused as err:
        return _refused(400, str(err))
    except NotFound:
        return _refused(404, _("Tâche introuvable."))
    except Forbidden as err:
        return _refused(403, str(err))
    return jsonify({"saved": True})


@bp.post("/cases/<int:case_id>/addenda")
@login_required
def addendum(case_id: int) -> Any:
    try:
        add_addendum(_ctx(), current_actor(), case_id, request.form.get("text", ""),
                     request.form.get("signature_code", ""))
        flash(_("Addendum signé et ajouté au compte-rendu."), "success")
    except NotFound:
        abort(404)
    except Forbidden:
        abort(403)
    except FormValidationError as err:
        flash(" ".join(err.errors.values()), "warning")
    except Conflict as err:  # the signature refused (SignatureRefused)
        flash(str(err), "warning")
    return redirect(url_for("cases.show", case_id=case_id) + "#report-addenda")


def _report_draft(task: Any) -> dict[str, Any] | None:
    """The author's draft of a report task page, None elsewhere."""
    if getattr(task, "form_key", None) not in REPORT_FORMS:
        return None
    try:
        return read_draft(_ctx(), current_actor(), task.id) or {"fields": {}, "updated_at": None}
    except (NotFound, Forbidden):
        return None


def _report_signature(data: Any) -> dict[str, Any] | None:
    signed = data.get(SIGNED_KEY) if hasattr(data, "get") else None
    if not isinstance(signed, dict) or not signed.get("by"):
        return None
    try:
        at = datetime.fromisoformat(str(signed.get("at")))
    except ValueError:
        return None
    return {"name": signer_name(_ctx(), signed["by"]), "at": at}


def _report_addenda(case_id: int, data: Any) -> list[Addendum]:
    try:
        return list_addenda(_ctx(), current_actor(), case_id, data)
    except NotFound:
        return []


def _may_add_addendum(data: Any) -> bool:
    return hasattr(data, "get") and may_add(current_actor(), data)


@bp.app_context_processor
def report_helpers() -> dict[str, Any]:
    return {"report_draft": _report_draft, "report_signature": _report_signature, "report_addenda": _report_addenda,
            "may_add_addendum": _may_add_addendum}
