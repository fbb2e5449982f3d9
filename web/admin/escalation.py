"""Escalation delays administrators control (CH-3.3): the named delays the diagrams read, changed with a
preview (future timers only, or re-arming the waiting ones), and the list of waiting timers.

Every route requires the administrator role on the server; the change itself goes through
engine.services.escalation.change_setting, which checks the role again, validates the value, records who changed
what in the audit chain and, in re-arm mode, moves the waiting timers in the same transaction.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import login_required

from engine.domain.escalation import DEFAULT_ESCALATION, InvalidDuration, parse_duration
from engine.errors import Forbidden
from engine.services.context import EngineContext
from engine.services.directory import list_sites
from engine.services.escalation import ChangePreview, change_setting, list_settings, preview_change
from engine.services.timer_queries import MAX_PAGE, waiting_timers
from web.auth.access import current_actor, roles_required
from web.extensions import telerad
from web.shared.formatting import PARIS
from web.shared.labels import setting_label

bp = Blueprint("escalation", __name__, url_prefix="/admin/escalation")

PER_PAGE = 50
MODES = ("future", "rearm")
MODE_LABELS = {
    "future": _l("Pour les délais armés à partir de maintenant"),
    "rearm": _l("Réarmer aussi les délais en attente"),
}


def _ctx() -> EngineContext:
    return telerad(current_app).ctx


def duration_words(value: str) -> str:
    """An ISO 8601 duration in words: "15 min", "4 h", "2 j", "1 j 2 h", "1 h 30 min"."""
    try:
        duration = parse_duration(value)
    except InvalidDuration:
        return value
    seconds = int(duration.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{days} j" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else "",
             f"{seconds} s" if seconds else ""]
    return " ".join(p for p in parts if p) or value


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"setting_label": setting_label, "duration_words": duration_words, "mode_labels": MODE_LABELS}


# --- settings ------------------------------------------------------------------------------------------------------

@bp.get("")
@login_required
@roles_required("administrator")
def settings() -> Any:
    return _settings_page()


def _settings_page(errors: dict[str, str] | None = None, typed: dict[str, str] | None = None,
                   modes: dict[str, str] | None = None, general_error: str | None = None) -> Any:
    rows = list_settings(_ctx())
    return render_template("admin/escalation/settings.html", rows=rows, errors=errors or {}, typed=typed or {},
                           modes=modes or {}, general_error=general_error)


def _submitted() -> tuple[str, str, str]:
    name = (request.form.get("name") or "").strip()[:64]
    duration = (request.form.get("duration") or "").strip()[:64]
    mode = request.form.get("mode") or "future"
    return name, duration, mode


def _check(name: str, duration: str, mode: str) -> str | None:
    """A French reason to refuse the submitted change, or None."""
    if mode not in MODES:
        return _("Choisissez le mode d’application de la nouvelle valeur.")
    if not duration:
        return _("Saisissez une durée ISO 8601 (exemples : PT15M, PT4H, P2D).")
    return None


@bp.post("/preview")
@login_required
@roles_required("administrator")
def preview() -> Any:
    name, duration, mode = _submitted()
    if name not in DEFAULT_ESCALATION:
        return _settings_page(general_error=_("« %(name)s » n’est pas un délai connu.", name=name))
    problem = _check(name, duration, mode)
    change: ChangePreview | None = None
    if problem is None:
        try:
            change = preview_change(_ctx(), name, duration, rearm=mode == "rearm")
        except InvalidDuration as err:
            problem = str(err)
    if change is None:
        return _settings_page(errors={name: problem or ""}, typed={name: duration}, modes={name: mode})
    return _preview_page(change)


def _preview_page(change: ChangePreview, warning: str | None = None) -> Any:
    ctx = _ctx()
    current = next(s for s in list_settings(ctx) if s.name == change.name)
    patients = {t.case_id: t.patient_name for t in waiting_timers(ctx, current_actor(), setting=change.name,
                                                                  limit=MAX_PAGE).timers} if change.rearm else {}
    return render_template("admin/escalation/preview.html", change=change, current=current, patients=patients,
                           mode="rearm" if change.rearm else "future", warning=warning)


@bp.post("/apply")
@login_required
@roles_required("administrator")
def apply() -> Any:
    name, duration, mode = _submitted()
    if name not in DEFAULT_ESCALATION:
        flash(_("« %(name)s » n’est pas un délai connu.", name=name), "danger")
        return redirect(url_for("escalation.settings"))
    problem = _check(name, duration, mode)
    if problem is not None:
        flash(problem, "danger")
        return redirect(url_for("escalation.settings"))
    ctx, rearm = _ctx(), mode == "rearm"
    expected = (request.form.get("old") or "").strip()
    current = next(s for s in list_settings(ctx) if s.name == name)
    try:
        if expected and expected != current.duration:
            # Changed by someone else since the preview: show what the change would do now, then ask again.
            return _preview_page(preview_change(ctx, name, duration, rearm), warning=_(
                "Ce délai a été modifié entre-temps (valeur actuelle : %(value)s). Vérifiez de nouveau avant de "
                "confirmer.", value=current.duration))
        done = change_setting(ctx, current_actor(), name, duration, rearm)
    except InvalidDuration as err:
        flash(_("Modification refusée : %(reason)s", reason=str(err)), "danger")
        return redirect(url_for("escalation.settings"))
    except Forbidden:
        abort(403)
    flash(_summary(done), "success")
    return redirect(url_for("escalation.settings"))


def _summary(done: ChangePreview) -> str:
    text = _("Délai « %(label)s » modifié : %(old)s (%(old_words)s) → %(new)s (%(new_words)s).",
             label=setting_label(done.name), old=done.old, old_words=duration_words(done.old), new=done.new,
             new_words=duration_words(done.new))
    if not done.rearm:
        return text + " " + _("La nouvelle valeur s’applique aux délais armés à partir de maintenant ; les délais "
                              "déjà en attente gardent leur échéance.")
    text += " " + ngettext("%(num)d délai en attente réarmé", "%(num)d délais en attente réarmés", done.timers)
    text += " " + ngettext("dans %(num)d dossier.", "dans %(num)d dossiers.", len(done.cases))
    if done.overdue:
        text += " " + ngettext(
            "%(num)d délai est échu : il sera déclenché au prochain passage du planificateur.",
            "%(num)d délais sont échus : ils seront déclenchés au prochain passage du planificateur.",
            len(done.overdue))
    return text


# --- waiting timers ------------------------------------------------------------------------------------------------

@bp.get("/timers")
@login_required
@roles_required("administrator")
def timers() -> Any:
    ctx = _ctx()
    now = ctx.clock.now()
    problems: list[str] = []
    setting = (request.args.get("setting") or "").strip()[:64] or None
    case_text = (request.args.get("case") or "").strip()[:20]
    case_id = _positive_int(case_text)
    if case_text and case_id is None:
        problems.append(_("Le n° de dossier doit être un nombre entier positif."))
    before_text = (request.args.get("due_before") or "").strip()[:10]
    due_before = _paris_midnight(before_text)
    if before_text and due_before is None:
        problems.append(_("La date d’échéance n’est pas une date valide (AAAA-MM-JJ)."))
    overdue = request.args.get("overdue") in ("1", "on", "y")
    page = _positive_int(request.args.get("page") or "") or 1
    result = waiting_timers(ctx, current_actor(), setting=setting, case_id=case_id, due_before=due_before,
                            overdue_at=now if overdue else None, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    filters = {"setting": setting or "", "case": case_text, "due_before": before_text, "overdue": overdue}
    query_args: dict[str, Any] = {k: v for k, v in filters.items() if v}
    if overdue:
        query_args["overdue"] = "1"
    names = sorted(set(DEFAULT_ESCALATION) | ({setting} if setting else set()))
    return render_template("admin/escalation/timers.html", page=result, page_number=page,
                           pages=max(1, math.ceil(result.total / PER_PAGE)), filters=filters,
                           query_args=query_args, problems=problems, names=names, now=now,
                           sites={site_id: name for site_id, name, _territory in list_sites(ctx)})


def _positive_int(text: str) -> int | None:
    if not text.isdigit():
        return None
    value = int(text)
    return value if 0 < value < 2**53 else None


def _paris_midnight(text: str) -> datetime | None:
    """Midnight in Europe/Paris at the start of that day (YYYY-MM-DD, as a date field sends it)."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return datetime.combine(day, time(0), PARIS)

