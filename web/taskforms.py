"""A task's form on a page: built from its JSON Schema, pre-filled from the case, errors shown per field.

WTForms only renders and coerces types; the JSON Schema (through the engine) stays the authority.
"""

from __future__ import annotations

from typing import Any

from forms import FormRegistry
from forms.wtforms_builder import build_form_class, form_data_to_json, json_errors_to_form, prefill

EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


_classes: dict[str, type] = {}


def _form_class(form_key: str | None, schema: dict[str, Any]) -> type:
    """One class per form (schemas are files read once); fields keep the order the schema gives them."""
    key = form_key or ""
    if key not in _classes:
        _classes[key] = build_form_class(schema)
    return _classes[key]


class TaskForm:
    def __init__(self, registry: FormRegistry, form_key: str | None, known: dict[str, Any] | None):
        self.schema = registry.schema(form_key) if form_key else EMPTY_SCHEMA
        form_class = _form_class(form_key, self.schema)
        # On GET the form is pre-filled from what the case knows; on POST it binds what was typed.
        self.form = prefill(form_class, known or {}) if known is not None else form_class()
        self.form_errors: list[str] = []

    def validate_submission(self) -> bool:
        """Whether something was submitted. CSRF is checked for every POST by the app; field rules by the
        JSON Schema when the task is completed (WTForms' own validators would add English messages)."""
        from flask import request

        return request.method == "POST"

    def data_for_engine(self) -> dict[str, Any]:
        return form_data_to_json(self.form, self.schema)

    def show_errors(self, errors: dict[str, str]) -> None:
        """Put each French message on its field; the form macro shows the rest at the top."""
        json_errors_to_form(self.form, errors)
