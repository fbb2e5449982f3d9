"""Service-level checks of a task's submitted data, run by every entry point that completes a task (page, API,
service call) after the form's JSON Schema: what only the engine's data can tell (a tele-expert bound by an
active convention, a protocol of the case's final modality, an INS with its key, no exam dated in the future).

Each check returns problems keyed by field path with a French message; any problem refuses the completion
with a FormValidationError, before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.domain.data_checks import data_problems, paris_date
from engine.domain.engine_fields import ENGINE_OWNED_FIELDS, ENGINE_OWNED_MESSAGE
from engine.services.context import EngineContext
from forms import FormValidationError

# (ctx, site_id, submitted data, case data) -> {field path: French message}
TaskCheck = Callable[[EngineContext, str | None, Mapping[str, Any], Mapping[str, Any]], dict[str, str]]

_BY_FORM: dict[str, list[TaskCheck]] = {}
# The charter rule behind each checked field, for the trace of a refusal.
FIELD_RULES = {"patient.ins": "CH-4.1.6", "clinical_exam_date": "CH-4.1.1", "patient.birth_date": "CH-4.1.1",
               "protocol": "CH-4.1.9", "exposure_justification": "CH-4.1.3", "expert_id": "CH-3.4",
               "physician_name": "CH-4.1.10", "original_study_uid": "CH-4.2.2"}


def as_refusals(problems: Mapping[str, str]) -> list[tuple[str, str]]:
    """(rule id, reason) of each problem, as a charter refusal is traced."""
    return [(FIELD_RULES.get(field, "CH-1.2"), message) for field, message in problems.items()]


def register(form_key: str, check: TaskCheck) -> None:
    _BY_FORM.setdefault(form_key, []).append(check)


def task_data_problems(ctx: EngineContext, form_key: str | None, site_id: str | None, data: Mapping[str, Any],
                       case: Mapping[str, Any]) -> dict[str, str]:
    problems = data_problems(data, paris_date(ctx.clock.now()))
    for check in _BY_FORM.get(form_key or "", ()):
        problems.update(check(ctx, site_id, data, case))
    return problems


def _register_shipped_checks() -> None:
    from engine.services.eligibility import check_expert
    from engine.services.pacs_studies import ORIGINAL_STUDY_FORM, check_original_study
    from engine.services.people_directory import check_physician_present
    from engine.services.protocols import PROTOCOL_FORM, check_protocol_choice

    register(PROTOCOL_FORM, check_protocol_choice)
    # The tele-expert must be bound to the site by an active convention and hold valid credentials (CH-3.4).
    register("te_request.schema.json", check_expert)
    register("te_choose_expert.schema.json", check_expert)
    # The physician present at the injection, when the directory knows the name typed, is one of the site's (CH-4.1.10).
    register("cs_presence.schema.json", check_physician_present)
    # The original study the tele-expert chooses is one of the patient's studies on the requester's PACS (CH-4.2.2).
    register(ORIGINAL_STUDY_FORM, check_original_study)


_register_shipped_checks()


def check_engine_owned(ctx: EngineContext, form_key: str | None, data: dict[str, Any]) -> None:
    """FormValidationError when an answer carries case data only the engine writes (engine.domain.engine_fields),
    whatever the form accepts: a designer's form (kept in the database, even one stored before the designer refused
    such forms) never may; a step without a form neither. Only a schema file may name one (no shipped form does,
    tests/unit/test_engine_owned_fields.py; the engine's test forms do)."""
    owned = ENGINE_OWNED_FIELDS.intersection(data)
    if owned and form_key and ctx.forms.is_file(form_key):  # never a designer's form, even one stored before
        owned -= set(ctx.forms.schema(form_key).get("properties") or ())
    if owned:
        raise FormValidationError({k: ENGINE_OWNED_MESSAGE for k in sorted(owned)})
