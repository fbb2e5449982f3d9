"""jsonschema errors -> one French message per field."""

from __future__ import annotations

from typing import Any

from jsonschema.exceptions import ValidationError


class FormValidationError(Exception):
    """Task data does not satisfy its form; ``errors`` maps a field path to a French message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))


_TYPES = {"string": "du texte", "integer": "un nombre entier", "number": "un nombre", "boolean": "oui ou non",
          "object": "un objet", "array": "une liste", "null": "une valeur vide"}


def field_path(error: ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        return f"{path}.{missing}" if path else missing
    return path or "_form"


def french_message(error: ValidationError) -> str:
    kind, value = error.validator, error.validator_value
    if kind == "required":
        return "Ce champ est obligatoire."
    if kind == "type":
        expected = value if isinstance(value, str) else value[0]
        return f"Valeur attendue : {_TYPES.get(expected, expected)}."
    if kind == "enum":
        return "Choisissez une des valeurs proposées."
    if kind == "const":
        return "Cette valeur n'est pas acceptée ici."
    if kind == "minLength":
        return "Ce champ est obligatoire." if value == 1 else f"Au moins {value} caractères."
    if kind == "maxLength":
        return f"Au plus {value} caractères."
    if kind in ("minimum", "exclusiveMinimum"):
        return f"La valeur doit être supérieure {'ou égale ' if kind == 'minimum' else ''}à {value}."
    if kind in ("maximum", "exclusiveMaximum"):
        return f"La valeur doit être inférieure {'ou égale ' if kind == 'maximum' else ''}à {value}."
    if kind == "pattern":
        return "Le format de cette valeur n'est pas valide."
    if kind == "format":
        return {"date": "Date attendue (AAAA-MM-JJ).", "date-time": "Date et heure attendues.",
                "email": "Adresse électronique attendue."}.get(value, "Format non valide.")
    if kind == "additionalProperties":
        return "Champ inconnu dans ce formulaire."
    if kind in ("minItems", "maxItems"):
        return f"Nombre d'éléments {'minimal' if kind == 'minItems' else 'maximal'} : {value}."
    return "Valeur non valide."


FORBIDDEN_CHARACTER = "Caractère non autorisé."


def forbidden_characters(data: Any) -> dict[str, str]:
    """Field path -> French message for every text (value or key) holding a NUL byte, which PostgreSQL cannot
    store, or a lone UTF-16 surrogate, which cannot be encoded at all: refused, never silently stripped, whatever
    the entry point (page, API, HL7)."""
    errors: dict[str, str] = {}
    pending: list[tuple[Any, str]] = [(data, "")]
    while pending:
        value, path = pending.pop()
        if isinstance(value, str):
            if not storable_text(value):
                errors.setdefault(path or "_form", FORBIDDEN_CHARACTER)
        elif isinstance(value, dict):
            for key, child in value.items():
                if isinstance(key, str) and not storable_text(key):
                    errors.setdefault(path or "_form", FORBIDDEN_CHARACTER)
                    continue
                pending.append((child, f"{path}.{key}" if path else str(key)))
        elif isinstance(value, list):
            pending.extend((child, f"{path}.{index}" if path else str(index)) for index, child in enumerate(value))
    return errors


def storable_text(text: str) -> bool:
    """False for a text with a NUL byte or a lone surrogate."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def collect_errors(errors: Any) -> dict[str, str]:
    result: dict[str, str] = {}
    for error in sorted(errors, key=lambda e: (len(list(e.absolute_path)), str(list(e.absolute_path)))):
        result.setdefault(field_path(error), french_message(error))
    return result
