"""Find, load and cache task form schemas by file name (the diagram's formJsonSchemaFilename)."""

from __future__ import annotations

import copy
import json
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from forms.validation import FormValidationError, collect_errors, forbidden_characters

SCHEMA_DIR = Path(__file__).parent / "schemas"
_KEY = re.compile(r"^[A-Za-z0-9_.-]+\.json$")
_FORMAT_CHECKER = Draft202012Validator.FORMAT_CHECKER
#: Dynamic option sources a string property may name with ``"x-options": "<source>"`` instead of a static
#: ``enum``. This package never reads them (it imports nothing from Telerad): the layer that shows or checks the
#: form resolves each source from the case (e.g. "protocols": the active catalogue protocols of the case's final
#: modality, engine.services.protocols) and passes the choices in (``with_options``, ``set_choices``).
OPTION_SOURCES = frozenset({"protocols", "pacs_studies"})
OPTIONS_KEY = "x-options"


class UnknownForm(LookupError):
    pass


class FormSource:
    """Schemas kept somewhere else than in files (e.g. written in the designer and stored in the database).
    Their keys must be immutable: a validator, once built for a key, is cached for the life of the registry."""

    def __init__(self, get: Callable[[str], str | None], keys: Callable[[], Iterable[str]]):
        self.get = get
        self.keys = keys


class FormRegistry:
    def __init__(self, directories: Iterable[Path] = (SCHEMA_DIR,), sources: Iterable[FormSource] = ()):
        self._directories = [Path(d) for d in directories]
        self._sources = list(sources)
        self._validators: dict[str, Draft202012Validator] = {}
        self._lock = threading.Lock()

    def with_source(self, source: FormSource) -> FormRegistry:
        """The same schema files, plus a source consulted after them."""
        return FormRegistry(self._directories, [*self._sources, source])

    def _text(self, key: str) -> str:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise UnknownForm(f"invalid form name {key!r}")
        for directory in self._directories:
            candidate = directory / key
            if candidate.is_file():
                return candidate.read_text(encoding="utf-8")
        for source in self._sources:
            text = source.get(key)
            if text is not None:
                return text
        raise UnknownForm(f"no form schema named {key!r}")

    def is_file(self, key: str) -> bool:
        """Whether the schema is one of the registry's files (shipped with the code), not a designer's edit kept
        in a source (the database)."""
        return isinstance(key, str) and bool(_KEY.fullmatch(key)) and any(
            (directory / key).is_file() for directory in self._directories)

    def exists(self, key: str) -> bool:
        if key in self._validators:
            return True
        try:
            self._text(key)
        except UnknownForm:
            return False
        return True

    def keys(self) -> list[str]:
        names = {p.name for d in self._directories if d.is_dir() for p in d.glob("*.json")}
        for source in self._sources:
            names.update(source.keys())
        return sorted(names)

    def schema(self, key: str) -> dict[str, Any]:
        return dict(self.validator(key).schema)

    def validator(self, key: str) -> Draft202012Validator:
        validator = self._validators.get(key)
        if validator is None:
            try:
                schema = json.loads(self._text(key))
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise UnknownForm(f"schema {key} is not valid JSON: {err}") from err
            check_schema(schema, key)
            validator = Draft202012Validator(schema, format_checker=_FORMAT_CHECKER)
            with self._lock:
                self._validators[key] = validator
        return validator

    def validate(self, key: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """The data with every text trimmed, if it satisfies the form; FormValidationError otherwise.

        Text made only of spaces counts as not given: a required field (or one a condition requires) filled with
        blanks is refused by every entry point, not only by the pages, whose widgets trim what is typed. A text
        with a NUL byte or a lone surrogate is refused (forbidden_characters), not cleaned."""
        cleaned = trimmed(dict(data))
        errors = collect_errors(self.validator(key).iter_errors(without_blanks(cleaned)))
        errors.update(forbidden_characters(cleaned))
        if errors:
            raise FormValidationError(errors)
        return cleaned


def trimmed(value: Any) -> Any:
    """Strings stripped of surrounding white space and invisible format characters (Unicode spaces, zero-width
    spaces, byte-order marks...), in nested objects and lists too; a text of nothing else becomes empty."""
    if isinstance(value, str):
        start, end = 0, len(value)
        while start < end and _invisible(value[start]):
            start += 1
        while end > start and _invisible(value[end - 1]):
            end -= 1
        return value[start:end]
    if isinstance(value, dict):
        return {k: trimmed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [trimmed(v) for v in value]
    return value


def _invisible(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) == "Cf"


def without_blanks(value: Any) -> Any:
    """The same data without its empty texts, so that `required` treats them as missing."""
    if isinstance(value, dict):
        return {k: without_blanks(v) for k, v in value.items() if v != ""}
    if isinstance(value, list):
        return [without_blanks(v) for v in value]
    return value


def check_schema(schema: Any, key: str = "") -> None:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as err:
        raise UnknownForm(f"schema {key} is not a valid JSON Schema: {err.message}") from err
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise UnknownForm(f"schema {key} must describe an object")
    _check_options(schema, key)
    _check_context(schema, key)


def _check_options(schema: Mapping[str, Any], key: str, prefix: str = "") -> None:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return
    for name, prop in properties.items():
        if not isinstance(prop, Mapping):
            continue
        source = prop.get(OPTIONS_KEY)
        if source is not None and (source not in OPTION_SOURCES or prop.get("type") != "string"):
            raise UnknownForm(f"schema {key}: {prefix}{name}: {OPTIONS_KEY} names a string property's option "
                              f"source, one of {', '.join(sorted(OPTION_SOURCES))}")
        _check_options(prop, key, f"{prefix}{name}.")


def option_fields(schema: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Field path -> option source, for every property whose choices come from ``x-options``."""
    found: dict[str, str] = {}
    properties = schema.get("properties")
    for name, prop in (properties.items() if isinstance(properties, Mapping) else ()):
        if not isinstance(prop, Mapping):
            continue
        if isinstance(prop.get(OPTIONS_KEY), str):
            found[f"{prefix}{name}"] = prop[OPTIONS_KEY]
        found.update(option_fields(prop, f"{prefix}{name}."))
    return found


def with_options(schema: Mapping[str, Any], options: Mapping[str, Sequence[tuple[str, str]]]) -> dict[str, Any]:
    """A copy of the schema where each ``x-options`` field named in ``options`` (by path) lists its choices as an
    ``enum`` with their ``x-labels``: what a client is shown. The stored schema keeps no such enum; the service's
    own check of the value stays the authority."""
    resolved = copy.deepcopy(dict(schema))
    for path, choices in options.items():
        prop: Any = resolved
        for part in path.split("."):
            prop = prop.get("properties", {}).get(part) if isinstance(prop, dict) else None
        if isinstance(prop, dict) and OPTIONS_KEY in prop:
            prop["enum"] = [value for value, _label in choices]
            prop["x-labels"] = {value: label for value, label in choices}
    return resolved


#: A task form declares what earlier steps recorded that its decision needs, shown read-only above its fields:
#: ``"x-context": [{"form": "<schema file>", "fields": ["<property>", ...]}, {"contact": "<data field>"}]``; a
#: "contact" entry names the case field holding a person's user name (e.g. "requester_id") whose directory phone
#: is shown. ``"x-summary"`` is what the case history says once the step is done, with ``{<property>}`` replaced
#: by the recorded value's label and ``{by}`` by the name of who did it.
CONTEXT_KEY = "x-context"
SUMMARY_KEY = "x-summary"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ContextSource:
    """One entry of a form's ``x-context``: fields recorded by the form ``form``, or a person's contact."""

    def __init__(self, form: str | None = None, fields: Sequence[str] = (), contact: str | None = None):
        self.form, self.fields, self.contact = form, tuple(fields), contact


def context_sources(schema: Mapping[str, Any]) -> list[ContextSource]:
    entries = schema.get(CONTEXT_KEY)
    if not isinstance(entries, list):
        return []
    return [ContextSource(e.get("form"), e.get("fields") or (), e.get("contact")) for e in entries
            if isinstance(e, Mapping)]


def summary_template(schema: Mapping[str, Any]) -> str | None:
    template = schema.get(SUMMARY_KEY)
    return template if isinstance(template, str) and template.strip() else None


def summary_fields(template: str) -> list[str]:
    return _PLACEHOLDER.findall(template)


def fill_summary(template: str, values: Mapping[str, str]) -> str | None:
    """The template with each placeholder replaced; None when one of them has no value (e.g. withheld)."""
    if any(name not in values for name in summary_fields(template)):
        return None
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def _check_context(schema: Mapping[str, Any], key: str) -> None:
    """The shape of ``x-context`` and ``x-summary`` (which forms and fields they name: context_problems)."""
    entries = schema.get(CONTEXT_KEY)
    if entries is not None:
        shaped = isinstance(entries, list) and all(
            isinstance(e, Mapping) and (
                (isinstance(e.get("form"), str) and isinstance(e.get("fields"), list) and e["fields"]
                 and all(isinstance(f, str) for f in e["fields"]) and set(e) <= {"form", "fields"})
                or (isinstance(e.get("contact"), str) and set(e) == {"contact"}))
            for e in entries)
        if not shaped:
            raise UnknownForm(f"schema {key}: {CONTEXT_KEY} lists {{\"form\": <schema file>, \"fields\": [...]}} "
                              f"or {{\"contact\": <field>}} entries")
    template = schema.get(SUMMARY_KEY)
    if template is None:
        return
    properties = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
    assert isinstance(properties, Mapping)
    unknown = [name for name in summary_fields(template) if name != "by" and name not in properties] \
        if isinstance(template, str) else ["?"]
    if unknown:
        raise UnknownForm(f"schema {key}: {SUMMARY_KEY} is a text whose {{placeholders}} name the form's own "
                          f"fields or {{by}}: {', '.join(unknown)}")


def context_problems(registry: FormRegistry, key: str, schema: Mapping[str, Any] | None = None) -> list[str]:
    """What the form's ``x-context`` names that does not exist: an unknown form, or a field that form lacks
    (``schema``: the form's schema when it is not in the registry yet, a designer's new version)."""
    problems: list[str] = []
    for source in context_sources(schema if schema is not None else registry.schema(key)):
        if source.form is None:
            continue
        if not registry.exists(source.form):
            problems.append(f"{key} : {CONTEXT_KEY} nomme le formulaire {source.form}, qui n'existe pas")
            continue
        properties = registry.schema(source.form).get("properties", {})
        problems.extend(f"{key} : {CONTEXT_KEY} : le formulaire {source.form} n'a pas de champ {name}"
                        for name in source.fields if name not in properties)
    return problems


_default: FormRegistry | None = None


def default_registry() -> FormRegistry:
    global _default
    if _default is None:
        _default = FormRegistry()
    return _default
