"""The inbox (home page of every clinician) and task forms."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from engine.errors import Conflict, Forbidden, NotFound
from engine.services.duplicates import duplicates_of_case
from engine.services.notices import list_notices
from engine.services.report_signature import SignatureRefused
from engine.services.tasks import claim_task, complete_task, get_task, task_data, unclaim_task
from engine.services.worklist import MODALITIES, InvalidFilter, parse_filters, worklist
from forms import FormValidationError
from web.auth.access import current_actor
from web.clinical.live import bp as live_bp
from web.clinical.taskforms import TaskForm
from web.extensions import telerad
from web.shared.redirects import safe_next

bp = Blueprint("inbox", __name__)
bp.register_blueprint(live_bp)  # the live inbox's stream, /inbox/events (endpoint inbox.live.events)
SORT_LABELS = {"urgency": _l("Urgence puis échéance"), "due": _l("Échéance"), "created": _l("Arrivée"),
               "-created": _l("Arrivée (récentes d'abord)"), "site": _l("Site"), "modality": _l("Modalité"),
               "age": _l("Âge du patient")}
STATUS_LABELS = {"unclaimed": _l("À prendre"), "mine": _l("Prises par moi"), "overdue": _l("En retard")}
NOTICE_TITLES = {"report_overdue": _l("Compte-rendu en retard"), "no_radiologist": _l("Aucun radiologue disponible")}


@bp.get("/")
@login_required
def home() -> Any:
    return redirect(url_for("inbox.index"))


@bp.get("/inbox")
@login_required
def index() -> Any:
    from flask import current_app

    ctx, actor = telerad(current_app).ctx, current_actor()
    try:
        filters = parse_filters(request.args)
    except InvalidFilter as err:
        return render_template("clinical/inbox/bad_filter.html", message=str(err)), 400
    listing = worklist(ctx, actor, filters)
    notices = list_notices(ctx, actor)
    return render_template("clinical/inbox/index.html", listing=listing, tasks=listing.rows, me=actor.user_id,
                           filters=filters, notices=notices, notice_titles=NOTICE_TITLES,
                           modalities=MODALITIES, sorts=SORT_LABELS, statuses=STATUS_LABELS)


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
        except SignatureRefused as err:  # what was typed stays on the page, the code field says why
            form.show_errors({"signature_code": str(err)})
        except Conflict as err:
            flash(_("%(error)s Votre saisie n'a pas été enregistrée.", error=err), "warning")
            return redirect(url_for("inbox.index"))
        except NotFound:
            abort(404)
        else:
            flash(_("« %(title)s » est enregistrée.", title=view.title), "success")
            return redirect(url_for("inbox.index"))
    return render_template("clinical/inbox/task.html", task=view, form=form, known=known,
                           duplicates=duplicates_of_case(ctx, actor, view.instance_id))


@bp.app_template_filter("due_text")
def due_text(due: datetime, now: datetime) -> str:
    """What countdown.js writes (it takes over in the browser): "dans 1 h 05 min", "en retard de 12 min"."""
    minutes = int(abs((due - now).total_seconds()) // 60)
    if minutes < 1:
        span = _("moins d'1 min")
    elif minutes < 60:
        span = _("%(minutes)d min", minutes=minutes)
    elif minutes < 48 * 60:
        span = _("%(hours)d h %(minutes)02d min", hours=minutes // 60, minutes=minutes % 60)
    else:
        span = _("%(days)d j %(hours)02d h", days=minutes // 1440, hours=minutes % 1440 // 60)
    return _("en retard de %(span)s", span=span) if due <= now else _("dans %(span)s", span=span)
