"""Fees (CH-7, CH-6.4): the monthly statements per radiologist and per site (finance view for administrators, his
own for a radiologist, his site's for a site's medical lead), computed, issued (frozen), exported to CSV and
printed; the audited corrections; the CCAM tables in effect; and the "Actes CCAM" panel of a case, where the case's
radiologist chooses its acts. Every route checks the role here and the use case checks it again (a forged scope,
statement or case id: 403 or 404)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine.errors import Conflict, Forbidden, NotFound
from engine.services.case_acts import CaseActError, add_case_act, case_acts, remove_case_act
from engine.services.ccam_tables import list_tables
from engine.services.fee_statement_csv import statement_csv
from engine.services.fee_statements import (
    FeeStatementError,
    Month,
    Scope,
    add_adjustment,
    get_statement,
    issue_statement,
    list_statements,
    month_radiologists,
    parse_month,
    preview_statement,
    scope_choices,
)
from web.auth.access import current_actor, roles_required
from web.extensions import telerad
from web.shared.formatting import PARIS

bp = Blueprint("fees", __name__)
READERS = ("administrator", "radiologist", "tele_expert", "site_lead")
CASE_READERS = ("administrator", "radiologist", "tele_expert", "local_radiologist")


def _ctx() -> Any:
    return telerad(current_app).ctx


def _scope(value: str | None) -> Scope:
    kind, _sep, scope_id = (value or "").partition(":")
    return Scope(kind.strip(), scope_id.strip())


def _default_scope() -> str:
    actor = current_actor()
    if "administrator" in actor.roles or not (actor.roles & {"radiologist", "tele_expert"}):
        sites = sorted(actor.sites)
        return f"site:{sites[0]}" if sites and "administrator" not in actor.roles else ""
    return f"radiologist:{actor.user_id}"


def _previous_month() -> str:
    today = _ctx().clock.now().astimezone(PARIS).date()
    return f"{today.year - 1}-12" if today.month == 1 else f"{today.year}-{today.month - 1:02d}"


def _month_summaries(month: str) -> list[dict[str, Any]]:
    """The finance view: the month's statement of every radiologist of the month, as computed now."""
    try:
        period = parse_month(month)
    except FeeStatementError:
        return []
    actor = current_actor()
    return [preview_statement(_ctx(), actor, Scope("radiologist", name), period)
            for name in month_radiologists(_ctx(), period)]


def _index_page(error: str | None = None, status: int = 200) -> Any:
    actor = current_actor()
    is_admin = "administrator" in actor.roles
    month = request.values.get("month") or _previous_month()
    return render_template("admin/fees/index.html", statements=list_statements(_ctx(), actor),
                           tables=list_tables(_ctx()) if is_admin else [], is_admin=is_admin, error=error,
                           show_settings_link=is_admin or "site_lead" in actor.roles,
                           summaries=_month_summaries(month) if is_admin and error is None else [],
                           choices=scope_choices(_ctx(), actor),
                           scope=request.values.get("scope") or _default_scope(), month=month), status


@bp.get("/fees")
@login_required
@roles_required(*READERS)
def index() -> Any:
    return _index_page()


def _preview(answer: Callable[[Scope, Month, dict[str, Any]], Any]) -> Any:
    """The statement the query asks for, computed now, given to `answer` (the page or the CSV); 403 or the index
    with the French error otherwise."""
    try:
        scope, month = _scope(request.args.get("scope")), parse_month(request.args.get("month"))
        snapshot = preview_statement(_ctx(), current_actor(), scope, month)
    except Forbidden:
        abort(403)
    except FeeStatementError as err:
        return _index_page(str(err), 400)
    return answer(scope, month, snapshot)


@bp.get("/fees/statement")
@login_required
@roles_required(*READERS)
def preview() -> Any:
    return _preview(lambda scope, month, snapshot: render_template(
        "admin/fees/statement.html", snapshot=snapshot, issued=None,
        can_issue="administrator" in current_actor().roles and snapshot["complete"]))


@bp.get("/fees/statement.csv")
@login_required
@roles_required(*READERS)
def preview_csv() -> Any:
    return _preview(lambda scope, month, snapshot: _csv(
        snapshot, f"releve-{scope.id}-{month.label}-provisoire.csv"))


def _csv(snapshot: dict[str, Any], name: str) -> Response:
    return Response(statement_csv(snapshot), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.post("/fees/issue")
@login_required
@roles_required("administrator")
def issue() -> Any:
    try:
        scope, month = _scope(request.form.get("scope")), parse_month(request.form.get("month"))
        statement_id = issue_statement(_ctx(), current_actor(), scope, month)
    except Forbidden:
        abort(403)
    except FeeStatementError as err:
        return _index_page(str(err), 400)
    except Conflict as err:
        flash(str(err), "warning")
        return redirect(url_for("fees.index"))
    flash(_("Relevé d'honoraires émis : il ne change plus."), "success")
    return redirect(url_for("fees.statement", statement_id=statement_id))


def _issued(statement_id: int) -> Any:
    try:
        return get_statement(_ctx(), current_actor(), statement_id)
    except NotFound:
        abort(404)
    except Forbidden:
        abort(403)


@bp.get("/fees/<int:statement_id>")
@login_required
@roles_required(*READERS)
def statement(statement_id: int) -> Any:
    issued = _issued(statement_id)
    return render_template("admin/fees/statement.html", snapshot=issued.snapshot, issued=issued, can_issue=False)


@bp.get("/fees/<int:statement_id>.csv")
@login_required
@roles_required(*READERS)
def statement_csv_file(statement_id: int) -> Any:
    issued = _issued(statement_id)
    return _csv(issued.snapshot, f"releve-{issued.scope.id}-{issued.month}.csv")


@bp.post("/fees/adjustments")
@login_required
@roles_required("administrator")
def new_adjustment() -> Any:
    case_text = (request.form.get("case_id") or "").strip()
    try:
        add_adjustment(_ctx(), current_actor(), int(case_text) if case_text.isdigit() else None,
                       request.form.get("amount", ""), request.form.get("reason", ""),
                       kind=request.form.get("kind", "correction"))
    except Forbidden:
        abort(403)
    except FeeStatementError as err:
        return _index_page(str(err), 400)
    flash(_("Correction enregistrée : elle figurera sur le prochain relevé émis."), "success")
    return redirect(url_for("fees.index"))


def _acts_page(case_id: int, error: str | None = None, status: int = 200) -> Any:
    try:
        acts = case_acts(_ctx(), current_actor(), case_id, search=request.args.get("q", ""))
    except NotFound:
        abort(404)
    except Forbidden:
        abort(403)
    return render_template("admin/fees/case_acts.html", acts=acts, error=error, query=request.args.get("q", ""),
                           can_edit=acts.radiologist == current_actor().user_id and not acts.locked), status


@bp.get("/cases/<int:case_id>/acts")
@login_required
@roles_required(*CASE_READERS)
def acts(case_id: int) -> Any:
    return _acts_page(case_id)


@bp.post("/cases/<int:case_id>/acts")
@login_required
@roles_required(*CASE_READERS)
def add_act(case_id: int) -> Any:
    try:
        add_case_act(_ctx(), current_actor(), case_id, request.form.get("code", ""),
                     urgency=request.form.get("urgency") == "1", on_call=request.form.get("on_call") == "1")
    except NotFound:
        abort(404)
    except Forbidden:
        abort(403)
    except (CaseActError, Conflict) as err:
        return _acts_page(case_id, str(err), 400)
    flash(_("Acte CCAM enregistré."), "success")
    return redirect(url_for("fees.acts", case_id=case_id))


@bp.post("/cases/<int:case_id>/acts/<int:act_id>/remove")
@login_required
@roles_required(*CASE_READERS)
def remove_act(case_id: int, act_id: int) -> Any:
    try:
        remove_case_act(_ctx(), current_actor(), case_id, act_id)
    except NotFound:
        abort(404)
    except Forbidden:
        abort(403)
    except Conflict as err:
        return _acts_page(case_id, str(err), 400)
    flash(_("Acte CCAM retiré."), "success")
    return redirect(url_for("fees.acts", case_id=case_id))
