"""Administrator page of the notification outbox: every message waiting, sent or given up (recipient, event, case
number, channel, attempts, last error, next attempt) and a "retry now" button. Case numbers only, never patient
data. The engine service checks the administrator role again and records each retry in the audit chain."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm

from engine.services.context import EngineContext
from engine.services.notification_outbox import STATUSES, count_by_status, list_outbox, retry_now
from web.auth.access import current_actor, roles_required
from web.auth.notification_settings import CHANNEL_LABELS, EVENT_LABELS
from web.extensions import telerad

bp = Blueprint("notifications_admin", __name__, url_prefix="/admin/notifications")
STATUS_LABELS = {"pending": _l("en attente"), "sent": _l("envoyé"), "failed": _l("abandonné")}


class ActionForm(FlaskForm):
    """A button only: the CSRF token is its one field."""


@bp.get("")
@login_required
@roles_required("administrator")
def index() -> Any:
    status = request.args.get("status")
    status = status if status in STATUSES else None
    actor = current_actor()
    return render_template("admin/notifications/index.html", rows=list_outbox(_ctx(), actor, status),
                           counts=count_by_status(_ctx(), actor), status=status, statuses=STATUSES,
                           status_labels=STATUS_LABELS, event_labels=EVENT_LABELS, channel_labels=CHANNEL_LABELS,
                           action=ActionForm())


@bp.post("/<int:row_id>/retry")
@login_required
@roles_required("administrator")
def retry(row_id: int) -> Any:
    if not ActionForm().validate_on_submit():
        abort(400)
    if retry_now(_ctx(), current_actor(), row_id):
        flash(_("Notification relancée : elle part au prochain passage du service d'envoi."), "success")
    else:
        flash(_("Cette notification a déjà été envoyée."), "info")
    return redirect(url_for("notifications_admin.index", status=request.args.get("status")))


def _ctx() -> EngineContext:
    return telerad(current_app).ctx
