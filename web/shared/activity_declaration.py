"""The activity declaration form of a radiologist (CH-3.5), shared by the administrators' share page and the
radiologist's own page: parse, call engine.services.teleradiology_share.declare_activity, return the French
refusal."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import abort, request
from flask_babel import gettext as _

from engine.domain.actors import Actor
from engine.errors import Forbidden
from engine.services.teleradiology_share import ShareError, declare_activity


def parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        return None


def parse_count(value: str | None) -> int | None:
    text = (value or "").strip()
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    return int(text) if text.isascii() and text.isdecimal() and len(text) <= 7 else None


def declare_from_form(ctx: Any, actor: Actor, username: str) -> str | None:
    """Declare the activity of the form (shared with the radiologist's own page); the French refusal, or None.
    Declaring for someone else without the right is a 403."""
    start, end = parse_day(request.form.get("period_start")), parse_day(request.form.get("period_end"))
    acts = parse_count(request.form.get("total_acts"))
    if start is None or end is None:
        return _("Indiquez le début et la fin de la période.")
    if acts is None:
        return _("Indiquez le nombre total d'actes de la période (un entier).")
    try:
        declare_activity(ctx, actor, username.strip(), start, end, acts, request.form.get("comment"))
    except Forbidden:
        abort(403)
    except ShareError as err:
        return str(err)
    return None
