"""A task's form on a page: built from its JSON Schema, pre-filled from the case, errors shown per field.

WTForms only renders and coerces types; the JSON Schema (through the engine) stays the authority. A field whose
choices come from the case (``x-options``, e.g. the protocols of the case's final modality) gets them here; the
engine's task check refuses any other value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.services.context import EngineContext
from engine.services.pacs_studies import pacs_study_choices
from engine.services.protocols import protocol_choices
from forms import FormRegistry
from forms.registry import option_fields, with_options
from forms.wtforms_builder import build_form_class, form_data_to_json, json_errors_to_form, prefill, set_choices

EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
NO_CHOICE = {"protocols": "Aucun protocole actif pour la modalité retenue : demandez à un administrateur de "
                          "compléter le catalogue des protocoles.",
             "pacs_studies": "Aucun examen de ce patient trouvé pour l'instant dans le PACS de l'établissement "
                             "demandeur (il est interrogé peu après la demande)."}

# Option source (forms.registry.OPTION_SOURCES) -> its choices for a case.
OPTION_SOURCES: dict[str, Callable[[EngineContext, Mapping[str, Any]], list[tuple[str, str]]]] = {
    "protocols": protocol_choices,
    "pacs_studies": pacs_study_choices,
}

_classes: dict[str, type] = {}


def _form_class(form_key: str | None, schema: dict[str, Any]) -> type:
    """One class per form (schemas are files read once); fields keep the order the schema gives them."""
    key = form_key or ""
    if key not in _classes:
        _classes[key] = build_form_class(schema)
    return _classes[key]


def form_options(ctx: EngineContext, schema: Mapping[str, Any], case: Mapping[str, Any] | None
                 ) -> dict[str, list[tuple[str, str]]]:
    """Field path -> [(value, French label)] for the schema's ``x-options`` fields, given what the case holds."""
    return {path: OPTION_SOURCES[source](ctx, case or {}) for path, source in option_fields(schema).items()
            if source in OPTION_SOURCES}


def schema_with_options(ctx: EngineContext, schema: Mapping[str, Any], case: Mapping[str, Any] | None
                        ) -> dict[str, Any]:
    """The schema as a client should see it for this case: ``x-options`` fields listing their choices."""
    return with_options(schema, form_options(ctx, schema, case))


class TaskForm:
    def __init__(self, registry: FormRegistry, form_key: str | None, known: dict[str, Any] | None, *,
                 case: Mapping[str, Any] | None = None, ctx: EngineContext | None = None):
        """`known` pre-fills the form (GET); None binds what was typed (POST). `case` (default: `known`) is what
        the case holds, from which the ``x-options`` choices are drawn."""
        self.schema = registry.schema(form_key) if form_key else EMPTY_SCHEMA
        form_class = _form_class(form_key, self.schema)
        # On GET the form is pre-filled from what the case knows; on POST it binds what was typed.
        self.form = prefill(form_class, known or {}) if known is not None else form_class()
        self.form_errors: list[str] = []
        if option_fields(self.schema):
            self._give_choices(ctx, case if case is not None else known)

    def _give_choices(self, ctx: EngineContext | None, case: Mapping[str, Any] | None) -> None:
        if ctx is None:
            from flask import current_app

            from web.extensions import telerad

            ctx = telerad(current_app).ctx
        options = form_options(ctx, self.schema, case)
        set_choices(self.form, options)
        for path, choices in options.items():
            field = self.form._fields.get(path)
            if not choices and field is not None:
                field.description = NO_CHOICE.get(option_fields(self.schema)[path], "")

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
