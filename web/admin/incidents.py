"""Downtime incidents (CH-5.5): declared and closed by an administrator or a site's medical lead, shown in a banner
on every page of the site's users, with the convention's degraded-mode procedure (printable paper form), and the
back-entry of a step handled by phone or on paper during an incident (same form, same checks as a live entry)."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from engine.errors import Conflict, Forbidden, NotFound
from engine.services.directory import list_sites
from engine.services.incident_backentry import complete_back_entered, degraded_procedure
from engine.services.incidents import (
    IncidentError,
    IncidentView,
    close_incident,
    declare_incident,
    get_incident,
    has_recent_incident,
    list_incidents,
    may_manage,
    open_incidents,
)
from engine.services.report_signature import SignatureRefused
from engine.services.tasks import get_task, task_data
from forms import FormValidationError
from web.auth.access import current_actor, roles_required
from web.clinical.taskforms import TaskForm
from web.extensions import telerad
from web.shared.formatting import PARIS, paris_time

bp = Blueprint("incidents", __name__, url_prefix="/incidents")
# The support contact shown with the procedure (phone, e-mail of the platform's support desk); docs/incidents.md.
SUPPORT_ENV = "TELERAD_SUPPORT_CONTACT"
KINDS = {"it": _l("Panne informatique"), "network": _l("Panne du réseau")}
SIDES = {"site": _l("côté établissement demandeur"), "telerad": _l("côté radiologues (Telerad)")}


def _ctx() -> Any:
    return telerad(current_app).ctx


def parse_local(value: str | None) -> datetime | None:
    """A datetime-local input (Paris time) as an aware datetime; None when empty or malformed."""
    try:
        return datetime.strptime((value or "").strip(), "%Y-%m-%dT%H:%M").replace(tzinfo=PARIS)
    except ValueError:
        return None


def banner_incidents() -> list[IncidentView]:
    """The open incidents of the current user's sites, read once per request (the banner of base.html)."""
    if "downtime_incidents" not in g:
        g.downtime_incidents = (open_incidents(_ctx(), current_actor())
                                if current_user.is_authenticated else [])
    return g.downtime_incidents  # type: ignore[no-any-return]


@bp.app_context_processor
def _banner() -> dict[str, Any]:
    # downtime_incidents is called by the banner partial: no query on a page that does not show it.
    return {"downtime_incidents": banner_incidents, "incident_kinds": KINDS, "incident_sides": SIDES,
            "back_entry_possible": lambda site_id: has_recent_incident(_ctx(), site_id)}


@bp.app_template_filter("incident_moment")
def incident_moment(value: object) -> str:
    """An ISO moment kept in an audit event (a back-entered step's real time) in Paris time."""
    try:
        return paris_time(datetime.fromisoformat(str(value)))
    except ValueError:
        return "—"


def _site_choices(actor: Any) -> list[tuple[str, str]]:
    return [(site_id, name) for site_id, name, _territory in list_sites(_ctx()) if may_manage(actor, site_id)]


@bp.route("", methods=["GET", "POST"])
@login_required
@roles_required("administrator", "site_lead")
def index() -> Any:
    ctx, actor = _ctx(), current_actor()
    error, field = None, None
    if request.method == "POST":
        started = parse_local(request.form.get("started_at"))
        try:
            if started is None:
                raise IncidentError(_("Début de l'incident : indiquez une date et une heure."), "started_at")
            number = declare_incident(ctx, actor, request.form.get("site_id", ""), request.form.get("kind", ""),
                                      request.form.get("side", ""), started, request.form.get("description", ""))
        except IncidentError as err:
            error, field = str(err), err.field
        except Forbidden:
            abort(403)
        else:
            flash(_("Incident n° %(number)s déclaré.", number=number), "success")
            return redirect(url_for("incidents.index"))
    incidents = list_incidents(ctx, actor)
    return render_template("admin/incidents/index.html", incidents=incidents, sites=_site_choices(actor),
                           error=error, field=field, form=request.form,
                           now=ctx.clock.now()), (400 if error else 200)


@bp.post("/<int:incident_id>/close")
@login_required
@roles_required("administrator", "site_lead")
def close(incident_id: int) -> Any:
    ended = request.form.get("ended_at", "").strip()
    end = parse_local(ended) if ended else None
    try:
        if ended and end is None:
            raise IncidentError(_("Fin de l'incident : indiquez une date et une heure."), "ended_at")
        minutes = close_incident(_ctx(), current_actor(), incident_id, end, request.form.get("note", ""))
    except NotFound:
        abort(404)
    except Forbidden:
        abort(403)
    except IncidentError as err:
        flash(str(err), "error")
    else:
        flash(_("Incident clos après %(hours)d h %(minutes)02d min.", hours=minutes // 60, minutes=minutes % 60),
              "success")
    return redirect(url_for("incidents.index"))


@bp.get("/<int:incident_id>")
@login_required
def show(incident_id: int) -> Any:
    """The incident and the degraded-mode procedure of its site, with the paper form to print."""
    ctx = _ctx()
    try:
        incident = get_incident(ctx, current_actor(), incident_id)
    except NotFound:
        abort(404)
    procedure = degraded_procedure(ctx, incident.site_id, os.environ.get(SUPPORT_ENV, ""))
    return render_template("admin/incidents/procedure.html", incident=incident, procedure=procedure,
                           now=ctx.clock.now())


@bp.route("/tasks/<task_id>/back-entry", methods=["GET", "POST"])
@login_required
def back_entry(task_id: str) -> Any:
    """A step handled by phone or on paper during an incident, entered afterwards with its real time and people."""
    ctx, actor = _ctx(), current_actor()
    try:
        view = get_task(ctx, actor, task_id)
    except NotFound:
        abort(404)
    except Conflict as err:
        flash(str(err), "warning")
        return redirect(url_for("inbox.index"))
    known = task_data(ctx, actor, task_id)
    form = TaskForm(ctx.forms, view.form_key, known if request.method == "GET" else None, case=known, ctx=ctx)
    error, status = None, 200
    if request.method == "POST" and form.validate_submission():
        try:
            complete_back_entered(ctx, actor, task_id, form.data_for_engine(),
                                  parse_local(request.form.get("occurred_at")), request.form.get("people", ""))
        except IncidentError as err:
            error, status = str(err), 400
        except FormValidationError as err:
            form.show_errors(err.errors)
            status = 400
        except SignatureRefused as err:
            form.show_errors({"signature_code": str(err)})
            status = 400
        except Conflict as err:
            flash(_("%(error)s Votre saisie n'a pas été enregistrée.", error=err), "warning")
            return redirect(url_for("inbox.index"))
        except NotFound:
            abort(404)
        else:
            flash(_("« %(title)s » est enregistrée (saisie après coup).", title=view.title), "success")
            return redirect(url_for("cases.show", case_id=view.instance_id))
    elif request.method == "POST":
        status = 400
    return render_template("admin/incidents/back_entry.html", task=view, form=form, error=error,
                           values=request.form), status
