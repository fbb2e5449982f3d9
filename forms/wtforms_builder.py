"""Task JSON Schema -> WTForms class, for server-side rendering of user task forms.

jsonschema (``forms.registry``) stays the authority. These forms only coerce what the browser sends into
Python values and carry HTML hints (required, minlength/maxlength, min/max, pattern) that are never stricter
than the schema. A value WTForms cannot coerce (``"abc"`` in an integer field, an impossible date) is handed
to the schema as typed, so the French message of ``forms.validation`` names the field instead of the value
being silently dropped.

Only the web layer imports this module; ``forms/__init__`` does not, so the engine never loads WTForms.

Typical view::

    form_class = build_form_class(schema)                      # cache it per schema key
    form = prefill(form_class, task_data, request.form if request.method == "POST" else None)
    if request.method == "POST":
        data = form_data_to_json(form, schema)
        try:
            registry.validate(key, data)                       # the authority
        except FormValidationError as err:
            json_errors_to_form(form, err.errors)              # re-render: typed text is kept

CSRF is checked by the application's ``CSRFProtect``; nested forms carry no CSRF token of their own.

A string property with ``"x-options": "<source>"`` (see ``forms.registry.OPTION_SOURCES``) becomes a select whose
choices depend on the case: the class has the placeholder only, and the view gives each form its choices with
``set_choices(form, {"field": [(value, label), ...]})``.
"""

from __future__ import annotations

import math
import re
import types
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, cast

from flask_wtf import FlaskForm
from wtforms import Form
from wtforms.fields import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    Field,
    FloatField,
    FormField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)

from forms.registry import OPTIONS_KEY

DATE_FORMAT = "%Y-%m-%d"
DATETIME_FORMAT = "%Y-%m-%dT%H:%M"
#: ``pattern`` values that mean "local date and time", rendered as ``<input type="datetime-local">``.
DATETIME_PATTERNS = frozenset({
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?$",
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}$",
})
EMPTY_CHOICE_LABEL = "— choisir —"
UNSET_RADIO_LABEL = "Non renseigné"
TEXTAREA_ABOVE = 300  # maxLength above which a string becomes a <textarea>
RADIO_UP_TO = 4  # enums with at most this many values become radio buttons

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Names WTForms uses as constructor arguments or form attributes: a field cannot be called that.
_RESERVED = frozenset({"data", "errors", "form_errors", "formdata", "meta", "obj", "prefix", "csrf_token",
                       "process", "populate_obj", "validate", "hidden_tag", "is_submitted",
                       "validate_on_submit"})
# Character classes that read the same in Python and in the browser's ``v``-flag RegExp.
_SAFE_CLASS = re.compile(r"^\^?(?:[A-Za-z0-9]-[A-Za-z0-9]|[A-Za-z0-9 _]|\\[dws])*$")
_CLASS = re.compile(r"\[((?:\\.|[^\]\\])*)\]")
_OMIT = object()
_SCHEMA_ATTR = "_json_schema"
#: ``"x-picker": {"purpose": "<purpose>", "value": "username" | "display_name"}`` on a string property: a person
#: picker (web/clinical/people.py) whose field keeps a plain value, the person's username unless said otherwise.
PICKER_KEY = "x-picker"


class UnsupportedSchema(ValueError):
    """The schema uses something this builder cannot turn into a form field."""


def build_form_class(schema: Mapping[str, Any], *, base: type[Form] = FlaskForm) -> type[Form]:
    """One field per property, in schema order; nested objects become a ``FormField`` without CSRF."""
    return _build(schema, base, "TaskForm")


def _build(schema: Mapping[str, Any], base: type[Form], class_name: str, hints: bool = True) -> type[Form]:
    # hints=False inside an optional object: its own required fields may stay empty, so no `required` hint.
    required = set(schema.get("required", ())) if hints else set()
    attrs: dict[str, Any] = {_SCHEMA_ATTR: schema}
    for name, prop in schema.get("properties", {}).items():
        if not _NAME.fullmatch(name) or name in _RESERVED or hasattr(base, name):
            raise UnsupportedSchema(f"property {name!r} cannot be a form field name")
        if not isinstance(prop, Mapping):
            raise UnsupportedSchema(f"property {name!r} is not a schema object")
        attrs[name] = _field(name, prop, name in required, class_name)
    # types.new_class runs the WTForms metaclass, so each generated class gets its own field list.
    return cast(type[Form], types.new_class(class_name, (base,), exec_body=lambda ns: ns.update(attrs)))


def _kind(name: str, prop: Mapping[str, Any]) -> str:
    kind = prop.get("type")
    if isinstance(kind, list):
        concrete = [k for k in kind if k != "null"]
        kind = concrete[0] if len(concrete) == 1 else None
    enum = prop.get("enum")
    if kind in (None, "string") and isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        return "enum"
    if kind == "string" and isinstance(prop.get(OPTIONS_KEY), str):
        return "options"
    if kind == "string":
        if prop.get("format") == "date":
            return "date"
        if prop.get("pattern") in DATETIME_PATTERNS:
            return "datetime"
        return "textarea" if prop.get("maxLength", 0) > TEXTAREA_ABOVE else "text"
    if kind in ("boolean", "integer", "number", "object"):
        return str(kind)
    raise UnsupportedSchema(f"property {name!r}: type {kind!r} has no form field")


def _field(name: str, prop: Mapping[str, Any], required: bool, class_name: str) -> Any:
    kind = _kind(name, prop)
    label = prop.get("title") or name.replace("_", " ").capitalize()
    common: dict[str, Any] = {"label": label, "description": prop.get("description", "")}
    if kind == "object":
        return FormField(_build(prop, Form, f"{class_name}_{name}", required), **common)
    common["render_kw"] = _render_kw(prop, kind, required)
    if kind == "enum":
        labels = prop.get("x-labels") or {}
        choices = [SelectChoice(value, str(labels.get(value, value))) for value in prop["enum"]]
        if len(choices) <= RADIO_UP_TO:
            # An optional radio group gets a way back to "no answer" once a button was clicked.
            return RadioField(choices=choices if required else [*choices, SelectChoice("", UNSET_RADIO_LABEL)],
                              **common)
        # A placeholder first option even when required: the browser then refuses to submit the first value
        # by default (a required <select> whose first option has an empty value).
        return SelectField(choices=[SelectChoice("", EMPTY_CHOICE_LABEL), *choices], **common)
    if kind == "options":
        # Never validated by WTForms (the choices are the case's): the service checks the value.
        return SelectField(choices=[SelectChoice("", EMPTY_CHOICE_LABEL)], validate_choice=False, **common)
    if kind == "date":
        return DateField(format=DATE_FORMAT, **common)
    if kind == "datetime":
        return DateTimeLocalField(format=[DATETIME_FORMAT, DATETIME_FORMAT + ":%S"], **common)
    factory = {"boolean": BooleanField, "integer": IntegerField, "number": FloatField,
               "textarea": TextAreaField}.get(kind, StringField)
    return factory(**common)


def _render_kw(prop: Mapping[str, Any], kind: str, required: bool) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    # A checkbox marked required must be ticked: only right for `const: true` booleans.
    if required and (kind != "boolean" or prop.get("const") is True):
        kw["required"] = True
    if kind in ("text", "textarea"):
        if prop.get("minLength", 0) > 0:
            kw["minlength"] = prop["minLength"]
        if "maxLength" in prop:
            kw["maxlength"] = prop["maxLength"]
        if kind == "textarea":
            kw["rows"] = 6 if prop.get("maxLength", 0) > 1000 else 3
        pattern = prop.get("pattern")
        if kind == "text" and isinstance(pattern, str) and _browser_safe(pattern):
            kw["pattern"] = pattern
    if kind in ("integer", "number"):
        kw.update(_bounds(prop, kind == "integer"))
    picker = prop.get(PICKER_KEY)
    if kind == "text" and isinstance(picker, Mapping) and isinstance(picker.get("purpose"), str):
        kw.update(data_picker=picker["purpose"], data_picker_value=str(picker.get("value", "username")),
                  autocomplete="off", aria_autocomplete="list")
    charter = prop.get("x-charter")
    if isinstance(charter, list) and charter:
        kw["data_charter"] = " ".join(str(rule) for rule in charter)
    return kw


def _bounds(prop: Mapping[str, Any], integer: bool) -> dict[str, Any]:
    """HTML min/max. An exclusive bound on a float has no HTML form: the bound itself is a looser hint."""
    bounds: dict[str, Any] = {}
    low, high = prop.get("minimum"), prop.get("maximum")
    if low is None and prop.get("exclusiveMinimum") is not None:
        low = math.floor(prop["exclusiveMinimum"]) + 1 if integer else prop["exclusiveMinimum"]
    if high is None and prop.get("exclusiveMaximum") is not None:
        high = math.ceil(prop["exclusiveMaximum"]) - 1 if integer else prop["exclusiveMaximum"]
    if low is not None:
        bounds["min"] = math.ceil(low) if integer else low  # an integer min is also where the step 1 counts from
    if high is not None:
        bounds["max"] = math.floor(high) if integer else high
    return bounds


def _browser_safe(pattern: str) -> bool:
    """Whether the browser reads ``pattern`` as jsonschema does; otherwise the server alone checks it."""
    try:
        re.compile(pattern)
    except re.error:
        return False
    if "(?" in pattern or "\\p" in pattern or "\\P" in pattern or "\\k" in pattern:
        return False
    return all(_SAFE_CLASS.fullmatch(body) for body in _CLASS.findall(pattern))


def form_data_to_json(form: Any, schema: Mapping[str, Any]) -> dict[str, Any]:
    """Submitted form -> task data typed as the schema expects (validate it with the registry next)."""
    required = set(schema.get("required", ()))
    result: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        field = form[name]
        kind = _kind(name, prop)
        if kind == "object":
            nested = form_data_to_json(field.form, prop)
            if name in required or any(value is not False for value in nested.values()):
                result[name] = nested  # an optional object left untouched (unticked boxes only) stays out
            continue
        value = _json_value(field, prop, kind, name in required)
        if value is not _OMIT:
            result[name] = value
    return result


def _json_value(field: Field, prop: Mapping[str, Any], kind: str, required: bool) -> Any:
    data = field.data
    if kind == "boolean":
        if data:
            return True
        return _OMIT if prop.get("const") is True and not required else False
    if kind in ("text", "textarea", "enum", "options"):
        if not isinstance(data, str) or not data.strip():
            return _OMIT
        return data.replace("\r\n", "\n")  # browsers send CRLF; maxLength counts one character per newline
    if kind == "datetime" and isinstance(data, datetime):
        return data.strftime(DATETIME_FORMAT + (":%S" if data.second else ""))
    if kind == "date" and isinstance(data, date) and not isinstance(data, datetime):
        return data.isoformat()
    if kind == "integer" and isinstance(data, int) and not isinstance(data, bool):
        return data
    if kind == "number" and isinstance(data, int | float) and not isinstance(data, bool) and math.isfinite(data):
        return float(data)
    # Not coercible (or not finite): give the schema what was typed so its French message names the field.
    raw = field.raw_data[0] if field.raw_data else None
    return raw if isinstance(raw, str) and raw.strip() else _OMIT


def set_choices(form: Any, options: Mapping[str, Sequence[tuple[str, str]]]) -> None:
    """Give the ``x-options`` selects of a form their choices (field path -> [(value, label)]), after the
    placeholder. A value the form holds that is no longer among the choices shows as the placeholder."""
    for path, choices in options.items():
        field = _resolve(form, path)
        if isinstance(field, SelectField):
            field.choices = [SelectChoice("", EMPTY_CHOICE_LABEL), *(SelectChoice(v, label) for v, label in choices)]


def json_errors_to_form(form: Any, errors: Mapping[str, str]) -> list[str]:
    """Attach ``collect_errors`` messages to the fields they name; return (and keep on the form) the others."""
    unmatched: list[str] = []
    for path, message in errors.items():
        field = _resolve(form, path)
        if field is None:
            unmatched.append(message)
            form.form_errors.append(message)
        elif isinstance(field, FormField):
            field.form.form_errors.append(message)
        else:
            field.errors = [*field.errors, message]
    return unmatched


def _resolve(form: Any, path: str) -> Field | None:
    parts = path.split(".")
    current = form
    for position, part in enumerate(parts):
        fields = getattr(current, "_fields", {})
        field = fields.get(part)
        if field is None:
            return None
        if position == len(parts) - 1:
            return cast(Field, field)
        if not isinstance(field, FormField):
            return None
        current = field.form
    return None


def prefill(form_class: type[Form], data: Mapping[str, Any] | None, formdata: Any = None) -> Form:
    """A form showing what the case knows (nested included); ``formdata`` (a re-submitted page) wins."""
    schema = getattr(form_class, _SCHEMA_ATTR, None)
    if not isinstance(schema, Mapping):
        raise TypeError("prefill() needs a class made by build_form_class()")
    # An empty body is no submission (as Flask-WTF treats it): the case data shows.
    return form_class(formdata=formdata or None, data=_to_python(data or {}, schema))


def _to_python(data: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        if name in data:
            value = _python_value(data[name], prop, _kind(name, prop))
            if value is not _OMIT:
                result[name] = value
    return result


def _python_value(value: Any, prop: Mapping[str, Any], kind: str) -> Any:
    if kind == "object":
        return _to_python(value, prop) if isinstance(value, Mapping) else _OMIT
    if kind == "boolean":
        return value if isinstance(value, bool) else _OMIT
    if kind in ("integer", "number"):
        numeric = isinstance(value, int) or (kind == "number" and isinstance(value, float) and math.isfinite(value))
        return value if numeric and not isinstance(value, bool) else _OMIT
    if kind in ("date", "datetime"):
        return _parse_moment(value, kind)
    return value if isinstance(value, str) else _OMIT


def _parse_moment(value: Any, kind: str) -> Any:
    if kind == "date":
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        formats = [DATE_FORMAT]
    else:
        if isinstance(value, datetime):
            return value
        formats = [DATETIME_FORMAT, DATETIME_FORMAT + ":%S"]
    for fmt in formats:
        try:
            parsed = datetime.strptime(value, fmt)
        except (TypeError, ValueError):
            continue
        return parsed.date() if kind == "date" else parsed
    return _OMIT  # a stored value the widget cannot show; the case keeps it, the form starts empty
