"""What a request may carry before any use case sees it: the JSON API (web.api.routes) and the pages
(web.shared.errors.refuse_unstorable_input) share these checks.

One reader for JSON bodies and one check of parameters. What can never be valid data for Telerad is refused with
a 400, before anything is read or written: bodies that are not UTF-8 JSON, JSON nested deeper than any form,
NaN/Infinity, integers no database column holds, and texts with a NUL byte (which PostgreSQL cannot store) or a
lone UTF-16 surrogate (which no encoder can write)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Request
from flask_babel import gettext as _

from forms.validation import storable_text

#: Deeper than any task form (a few levels) with room to spare; well under the recursion limits of the JSON
#: decoder, jsonschema and the workflow serializer, which a deeper body would reach first.
MAX_DEPTH = 32
#: The largest integer a column holds (PostgreSQL bigint): a larger id or value cannot name or be anything.
MAX_ID = 2**63 - 1
_JSON_TYPES = ("application/json",)


class BadInput(ValueError):
    """Input that cannot be valid, refused with a French message (HTTP 400)."""


def read_json_body(request: Request) -> Any:
    """The decoded JSON body, or None when the request has no body; BadInput when it cannot be valid."""
    raw = request.get_data(cache=True)
    if not raw:
        return None
    mimetype = request.mimetype or ""
    if mimetype not in _JSON_TYPES and not mimetype.endswith("+json"):
        raise BadInput(_("Le corps de la requête doit être du JSON (en-tête Content-Type: application/json)."))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadInput(_("Le corps de la requête n'est pas encodé en UTF-8.")) from err
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as err:
        raise BadInput(_too_deep()) from err
    except BadInput:
        raise
    except ValueError as err:  # JSONDecodeError, and integers too long to convert
        raise BadInput(_("Le corps de la requête n'est pas du JSON valide.")) from err
    check_value(value)
    return value


def _refuse_constant(name: str) -> Any:
    raise BadInput(_("Valeur non autorisée dans le JSON : %(value)s.", value=name))


def check_value(value: Any) -> None:
    """BadInput unless every text (keys included), number and level of the value may be stored."""
    pending: list[tuple[Any, str, int]] = [(value, "", 1)]
    while pending:
        item, path, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise BadInput(_too_deep())
        if isinstance(item, str):
            _check_text(item, path)
        elif isinstance(item, bool):
            continue
        elif (isinstance(item, int) and not id_in_range(item)
              or isinstance(item, float) and not math.isfinite(item)):
            raise BadInput(_("Nombre hors limites dans « %(field)s ».", field=_printable(path)) if path
                           else _("Nombre hors limites."))
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else key
                _check_text(key, path)
                pending.append((child, child_path, depth + 1))
        elif isinstance(item, list):
            pending.extend((child, f"{path}[{index}]", depth + 1) for index, child in enumerate(item))


def check_parameters(values: Iterable[tuple[str, Any]]) -> None:
    """BadInput when a path or query parameter holds a text or a number that cannot be stored or searched."""
    for name, value in values:
        if isinstance(value, str):
            _check_text(value, name)
        elif isinstance(value, int) and not id_in_range(value):
            raise BadInput(_("Identifiant hors limites dans « %(field)s ».", field=_printable(name)))


def id_in_range(value: int) -> bool:
    """Whether an integer fits the id columns (PostgreSQL bigint)."""
    return -MAX_ID - 1 <= value <= MAX_ID


def request_parameters(view_args: Mapping[str, Any] | None, args: Any) -> list[tuple[str, Any]]:
    """The path parameters and every value of every query parameter, by name."""
    return [*(view_args or {}).items(), *args.items(multi=True)]


def _check_text(text: str, path: str) -> None:
    if not storable_text(text):
        raise BadInput(_("Caractère non autorisé dans « %(field)s ».", field=_printable(path)) if path
                       else _("Caractère non autorisé."))


def _too_deep() -> str:
    return _("JSON trop imbriqué (au plus %(depth)d niveaux).", depth=MAX_DEPTH)


def _printable(path: str) -> str:
    """The path as it may be echoed back: without the characters that made it invalid, and not too long."""
    clean = "".join("?" if char == "\x00" or "\ud800" <= char <= "\udfff" else char for char in path)
    return clean if len(clean) <= 80 else clean[:77] + "…"
