"""The inbox (home page of every clinician) and task forms."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from engine.domain.urgency import LEVELS, rank
from engine.errors import Conflict, Forbidden, NotFound
from engine.services.notices import list_notices
from engine.services.tasks import claim_task, complete_task, get_task, list_tasks, task_data, unclaim_task
from forms import FormValidationError
from web.auth.access import current_actor
from web.clinical.taskforms import TaskForm
from web.extensions import telerad
from web.shared.redirects import safe_next

bp = Blueprint("inbox", __name__)
NOTICE_TITLES = {"report_overdue": _l("Compte-rendu en retard"), "no_radiologist": _l("Aucun radiologue disponible")}


@bp.get("/")
@login_required
def home() -> Any:
    return redirect(url_for("inbox.index"))


@bp.get("/inbox")
@login_required
def index() -> Any:
    from flask import current_app

    actor = current_actor()
    tasks = list_tasks(telerad(current_app).ctx, actor)
    site, urgency, kind = request.args.get("site"), request.args.get("urgency"), request.args.get("type")
    if site:
        tasks = [t for t in tasks if t.site_id == site]
    if urgency in LEVELS:
        tasks = [t for t in tasks if t.urgency == rank(urgency)]
    if kind:
        tasks = [t for t in tasks if t.spec_name == kind]
    kinds = sorted({(t.spec_name, t.title) for t in tasks})
    notices = list_notices(telerad(current_app).ctx, actor)
    return render_template("clinical/inbox/index.html", tasks=tasks, me=actor.user_id, sites=sorted(actor.sites),
                           kinds=kinds, filters={"site": site, "urgency": urgency, "type": kind},
                           notices=notices, notice_titles=NOTICE_TITLES,
                           notice_sites=_site_names(telerad(current_app).ctx, {n.site_id for n in notices}))


def _site_names(ctx: Any, site_ids: set[str | None]) -> dict[str | None, str]:
    directory = ctx.directory
    found = {site_id: directory.site(site_id) if directory is not None and site_id else None for site_id in site_ids}
    return {site_id: site.name for site_id, site in found.items() if site is not None}


@bp.post("/tasks/<task_id>/claim")
@login_required
def claim(task_id: str) -> Any:
    from flask import current_app

    try:
        claim_task(telerad(current_app).ctx, current_actor(), task_id)
        flash(_("La tâche vous est attribuée."), "success")
    except Conflict as err:
        flash(str(err), "warning")
    except NotFound:
        abort(404)
    return redirect(safe_next(request.form.get("next")) or url_for("inbox.index"))


@bp.post("/tasks/<task_id>/unclaim")
@login_required
def unclaim(task_id: str) -> Any:
    from flask import current_app

    try:
        unclaim_task(telerad(current_app).ctx, current_actor(), task_id)
        flash(_("La tâche est remise à disposition de vos collègues."), "info")
    except (Conflict, Forbidden) as err:
        flash(str(err), "warning")
    except NotFound:
        abort(404)
    return redirect(url_for("inbox.index"))


@bp.route("/tasks/<task_id>", methods=["GET", "POST"])
@login_required
def task(task_id: str) -> Any:
    from flask import current_app

    ctx, actor = telerad(current_app).ctx, current_actor()
    try:
        view = get_task(ctx, actor, task_id)
    except NotFound:
        abort(404)
    except Conflict as err:
        flash(str(err), "warning")
        return redirect(url_for("inbox.index"))
    known = task_data(ctx, actor, task_id)
    form = TaskForm(ctx.forms, view.form_key, known if request.method == "GET" else None, case=known, ctx=ctx)
    if request.method == "POST" and form.validate_submission():
        try:
            complete_task(ctx, actor, task_id, form.data_for_engine())
        except FormValidationError as err:
            form.show_errors(err.errors)
        except Conflict as err:
            flash(_("%(error)s Votre saisie n'a pas été enregistrée.", error=err), "warning")
            return redirect(url_for("inbox.index"))
        except NotFound:
            abort(404)
        else:
            flash(_("« %(title)s » est enregistrée.", title=view.title), "success")
            return redirect(url_for("inbox.index"))
    return render_template("clinical/inbox/task.html", task=view, form=form, known=known)
