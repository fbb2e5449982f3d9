"""Periodic quality audits (CH-6.3): the quarterly report of a site or an organisation, previewed, issued (frozen,
a new version each time), printed to PDF from the browser, and its follow-up actions.

Administrators do everything; a site's medical lead previews and issues his site's reports; auditors read. Every
route checks the role here and the use case checks it again (a forged site or report id: 403 or 404)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine.domain.quality_audit import (
    NOTABLE_KINDS,
    AuditScope,
    QualityAuditError,
    may_follow_up,
    may_issue,
    parse_quarter,
    previous_quarter,
)
from engine.errors import Conflict, Forbidden, NotFound
from engine.services.quality_audit_actions import add_action, mark_action_done
from engine.services.quality_audit_cases import visible_cases
from engine.services.quality_audits import (
    get_report,
    issue_report,
    list_reports,
    preview_report,
    scope_choices,
)
from web.admin.quality_audit_figures import sections
from web.auth.access import current_actor, roles_required
from web.extensions import telerad
from web.shared.formatting import PARIS

bp = Blueprint("quality_audits", __name__, url_prefix="/admin/quality-audits")
READERS = ("administrator", "auditor", "site_lead")


def _ctx() -> Any:
    return telerad(current_app).ctx


def _scope(value: str | None) -> AuditScope:
    kind, _sep, scope_id = (value or "").partition(":")
    return AuditScope(kind, scope_id.strip())


def _index_page(error: str | None = None, status: int = 200) -> Any:
    ctx = _ctx()
    actor = current_actor()
    default = previous_quarter(ctx.clock.now().astimezone(PARIS).date()).label
    return render_template("admin/quality_audits/index.html", reports=list_reports(ctx, actor),
                           choices=scope_choices(ctx, actor), default_quarter=default, error=error,
                           form=request.values), status


@bp.get("")
@login_required
@roles_required(*READERS)
def index() -> Any:
    return _index_page()


@bp.get("/preview")
@login_required
@roles_required(*READERS)
def preview() -> Any:
    actor = current_actor()
    try:
        scope, quarter = _scope(request.args.get("scope")), parse_quarter(request.args.get("quarter"))
        snapshot = preview_report(_ctx(), actor, scope, quarter)
    except Forbidden:
        abort(403)
    except QualityAuditError as err:
        return _index_page(str(err), 400)
    return _render_report(snapshot, issued=None, can_issue=may_issue(actor, scope))


@bp.post("/issue")
@login_required
@roles_required("administrator", "site_lead")
def issue() -> Any:
    try:
        scope, quarter = _scope(request.form.get("scope")), parse_quarter(request.form.get("quarter"))
        report_id = issue_report(_ctx(), current_actor(), scope, quarter)
    except Forbidden:
        abort(403)
    except QualityAuditError as err:
        return _index_page(str(err), 400)
    except Conflict as err:
        flash(str(err), "warning")
        return redirect(url_for("quality_audits.index"))
    flash(_("Rapport d'audit émis et archivé."), "success")
    return redirect(url_for("quality_audits.report", report_id=report_id))


@bp.get("/<int:report_id>")
@login_required
@roles_required(*READERS)
def report(report_id: int) -> Any:
    try:
        issued = get_report(_ctx(), current_actor(), report_id)
    except NotFound:
        abort(404)
    return _render_report(issued.snapshot, issued=issued, can_issue=False)


@bp.get("/<int:report_id>.json")
@login_required
@roles_required(*READERS)
def report_json(report_id: int) -> Any:
    """The issued report's snapshot exactly as stored (its SHA-256 is the one shown on the page)."""
    try:
        issued = get_report(_ctx(), current_actor(), report_id)
    except NotFound:
        abort(404)
    name = f"audit-{issued.scope.id}-{issued.quarter}-v{issued.version}.json"
    return Response(issued.snapshot_text, mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _render_report(snapshot: dict[str, Any], issued: Any, can_issue: bool, error: str | None = None,
                   status: int = 200) -> Any:
    actor = current_actor()
    cases = snapshot.get("notable_cases") or []
    visible = visible_cases(_ctx(), actor, [c["case_id"] for c in cases if isinstance(c.get("case_id"), int)])
    grouped = {kind: [c for c in cases if c.get("kind") == kind] for kind in NOTABLE_KINDS}
    return render_template("admin/quality_audits/report.html", snapshot=snapshot, issued=issued,
                           sections=sections(snapshot.get("indicators") or {}), notable=grouped,
                           kinds=NOTABLE_KINDS, visible=visible, can_issue=can_issue,
                           can_follow_up=issued is not None and may_follow_up(actor), error=error,
                           form=request.form,
                           today=_ctx().clock.now().astimezone(PARIS).date()), status


@bp.post("/<int:report_id>/actions")
@login_required
@roles_required("administrator")
def new_action(report_id: int) -> Any:
    ctx = _ctx()
    actor = current_actor()
    try:
        issued = get_report(ctx, actor, report_id)
    except NotFound:
        abort(404)
    due = _date(request.form.get("due_date"))
    try:
        add_action(ctx, actor, report_id, request.form.get("text", ""), request.form.get("owner", ""), due)
    except Forbidden:
        abort(403)
    except NotFound:
        abort(404)
    except QualityAuditError as err:
        return _render_report(issued.snapshot, issued, False, str(err), 400)
    flash(_("Action de suivi ajoutée."), "success")
    return redirect(url_for("quality_audits.report", report_id=report_id, _anchor="actions"))


@bp.post("/<int:report_id>/actions/<int:action_id>/done")
@login_required
@roles_required("administrator")
def action_done(report_id: int, action_id: int) -> Any:
    try:
        mark_action_done(_ctx(), current_actor(), action_id, report_id)
    except Forbidden:
        abort(403)
    except NotFound:
        abort(404)
    except Conflict as err:
        flash(str(err), "warning")
    else:
        flash(_("Action de suivi close."), "success")
    return redirect(url_for("quality_audits.report", report_id=report_id, _anchor="actions"))


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        return None
