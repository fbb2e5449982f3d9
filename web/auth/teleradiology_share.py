""""Ma part de téléradiologie": a radiologist sees his own teleradiology share over the rolling 12 months (CH-3.5:
his teleradiology acts counted from the cases, his declared total activity, the exclusive flag) and declares his
activity per period. Only his own: the page has no user in its address; a form naming someone else is a 403, and
the engine service refuses it too (engine.services.teleradiology_share)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine.domain.charter import enforces
from engine.domain.charter_packs import DEFAULT_SHARE_CAP_PERCENT
from engine.errors import Forbidden
from engine.services.teleradiology_share import declarations, shares
from web.auth.access import current_actor, roles_required
from web.extensions import telerad
from web.shared.activity_declaration import declare_from_form

bp = Blueprint("my_share", __name__, url_prefix="/account/teleradiology")


@bp.route("", methods=["GET", "POST"])
@login_required
@roles_required("radiologist")
@enforces("CH-3.5")
def index() -> Any:
    ctx = telerad(current_app).ctx
    actor = current_actor()
    wanted = (request.values.get("username") or actor.user_id).strip()
    if wanted != actor.user_id:
        abort(403)  # a forged username: only one's own share
    error = None
    if request.method == "POST":
        error = declare_from_form(ctx, actor, wanted)
        if error is None:
            flash(_("Activité déclarée."), "success")
            return redirect(url_for("my_share.index"))
    try:
        mine = shares(ctx, actor, actor.user_id)
        declared = declarations(ctx, actor, actor.user_id)
    except Forbidden:
        abort(403)
    return render_template("auth/teleradiology_share.html", share=mine[0] if mine else None, declarations=declared,
                           cap=DEFAULT_SHARE_CAP_PERCENT, error=error, form=request.form), (400 if error else 200)
