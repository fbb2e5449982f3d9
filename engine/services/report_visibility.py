"""The report of a poor-prognosis case as each reader may see it (CH-4.1.13), for every path that shows case or
task data: the case page and the JSON API (engine.services.cases.case_record), task data
(engine.services.tasks.task_with_data), and whatever is added later. The rule itself is
engine.domain.report_visibility; this module only gathers its inputs from a live case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.domain.actors import Actor
from engine.domain.report_visibility import (
    WITHHELD_KEY,
    WITHHELD_MESSAGE,
    announcement_pending,
)
from engine.domain.report_visibility import redact_report as _redact

__all__ = ["WITHHELD_KEY", "WITHHELD_MESSAGE", "facts_of", "redact_report", "report_embargoed"]


def facts_of(live: Any) -> Mapping[str, Any] | None:
    """The charter facts of a LiveWorkflow (``LiveWorkflow.charter_facts()``), None where the runtime records none."""
    reader = getattr(live, "charter_facts", None)
    return reader() if callable(reader) else None


def redact_report(actor: Actor, data: Mapping[str, Any], facts: Mapping[str, Any] | None = None,
                  started_by: str | None = None) -> dict[str, Any]:
    """The case or task data this actor may read; ``facts`` is ``LiveWorkflow.charter_facts()``, ``started_by``
    the case's ``process_instance.started_by`` when at hand (the request data name the requester anyway)."""
    return _redact(actor.user_id, data, facts, started_by)


def report_embargoed(data: Mapping[str, Any], facts: Mapping[str, Any] | None = None) -> bool:
    """True while the report may not leave the platform (HL7 ORU, any outbound copy): the announcement plan of a
    poor-prognosis report is not confirmed yet."""
    return announcement_pending(data, facts)
