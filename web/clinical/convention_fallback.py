"""The convention's fallback procedure on the steps of a refusal (CH-4.1.14): clinical/inbox/_fallback.html asks
for it with the task the page already checked the user may open (engine.services.refusals.fallback_procedures)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app

from engine.services.refusals import FallbackProcedure, fallback_procedures
from web.extensions import telerad

bp = Blueprint("convention_fallback", __name__)


@bp.app_template_global("convention_fallback")
def convention_fallback(task: Any) -> list[FallbackProcedure]:
    return fallback_procedures(telerad(current_app).ctx, task.site_id, task.form_key)
