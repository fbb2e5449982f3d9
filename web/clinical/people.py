"""Person pickers: ``GET /directory/people`` answers the search of a picker (people/static js/people-picker.js)
with the eligible people only, and two template helpers give a picker field its address and its first list.

A task form's picker searches for the task of the page it is on (its ``task_id`` in the URL); the
administrators' on-call page uses the ``oncall`` purpose, which needs no case.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request, url_for
from flask_login import current_user, login_required

from engine.errors import Forbidden
from engine.services.people_search import (
    MAX_QUERY,
    MAX_RESULTS,
    PickablePerson,
    UnknownPurpose,
    eligible_people,
    search_people,
)
from web.auth.access import current_actor
from web.extensions import telerad

bp = Blueprint("people", __name__, url_prefix="/directory")


@bp.get("/people")
@login_required
def search() -> Any:
    """[{username, display_name, detail}] of at most 20 eligible people matching ``q``; 400 for an unknown
    purpose or a malformed case, 403 without the right to choose that person here."""
    purpose = request.args.get("purpose", "")
    case_arg, site = request.args.get("case", ""), request.args.get("site") or None
    if case_arg and not (case_arg.isascii() and case_arg.isdigit() and len(case_arg) < 19):
        abort(400)
    if site is not None and not (site.isascii() and site.isprintable() and len(site) <= 64):
        abort(400)
    try:
        people = search_people(telerad(current_app).ctx, current_actor(), purpose,
                               request.args.get("q", "")[:MAX_QUERY], task_id=request.args.get("task") or None,
                               case_id=int(case_arg) if case_arg else None, site_id=site)
    except UnknownPurpose:
        abort(400)
    except Forbidden:
        abort(403)
    response = jsonify([person.as_json() for person in people])
    response.headers["Cache-Control"] = "no-store"
    return response


def _page_task() -> str | None:
    task_id = (request.view_args or {}).get("task_id")
    return task_id if isinstance(task_id, str) else None


def _page_site() -> str | None:
    """On a new request (no case yet): the requesting site chosen, or the person's only site."""
    if _page_task() is not None or not current_user.is_authenticated:
        return None
    chosen = request.form.get("site_id") if request.method == "POST" else None
    sites = sorted(current_actor().sites)
    return chosen or (sites[0] if len(sites) == 1 else None)


@bp.app_template_global("people_picker_url")
def people_picker_url(purpose: str) -> str:
    """The search address of a picker on this page: its task when the page is a task's, else the requesting
    site of a new request (js/people-picker.js follows the site chosen in the page)."""
    task_id, site = _page_task(), _page_site()
    extra = {"task": task_id} if task_id else {"site": site} if site else {}
    return url_for("people.search", purpose=purpose, **extra)


@bp.app_template_global("people_picker_choices")
def people_picker_choices(purpose: str) -> list[PickablePerson]:
    """The first eligible people, rendered in the page so that the picker works without JavaScript; none when
    this user may not choose here (the server refuses the value anyway)."""
    if not current_user.is_authenticated:
        return []
    try:
        people = eligible_people(telerad(current_app).ctx, current_actor(), purpose, task_id=_page_task(),
                                 site_id=_page_site())
    except (UnknownPurpose, Forbidden):
        return []
    return people[:MAX_RESULTS * 10]
