"""The block "what earlier steps recorded" above a task's form: the template helper ``recorded_context(task_id)``
(clinical/inbox/_context.html), computed by engine.services.task_context from the form's ``x-context``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app
from flask_login import current_user

from engine.errors import Conflict, NotFound
from engine.services.task_context import ContextGroup, task_context
from web.auth.access import current_actor
from web.extensions import telerad

bp = Blueprint("task_context", __name__)


def recorded_context(task_id: str) -> list[ContextGroup]:
    """The earlier records the task's form declares, as this user may read them; nothing for a task he may no
    longer open (the page itself says why)."""
    if not current_user.is_authenticated:
        return []
    try:
        return task_context(telerad(current_app).ctx, current_actor(), task_id)
    except (NotFound, Conflict):
        return []


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"recorded_context": recorded_context}
