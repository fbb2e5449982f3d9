"""Charter checks of the values that enter a case, whatever the entry point (form, API, HL7, service call).

JSON Schemas check shapes; these check what a schema cannot: the INS key (CH-4.1.6, CH-8.1) and that a
clinical examination is not dated in the future (CH-4.1.1). Each problem is keyed by the field's dotted
path, with a French message, so every entry point can report it in its own protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from zoneinfo import ZoneInfo

from engine.domain.charter import enforces
from engine.domain.identity import is_valid_ins

PARIS = ZoneInfo("Europe/Paris")

# Fields holding a calendar date that cannot lie in the future.
PAST_DATE_FIELDS = ("clinical_exam_date", "patient.birth_date")


def paris_date(moment: datetime) -> date:
    """The calendar date in France of an instant (credentials and exam dates are French calendar dates)."""
    if moment.tzinfo is None:
        raise ValueError("an aware datetime is required")
    return moment.astimezone(PARIS).date()


def _lookup(data: Mapping[str, object], path: str) -> object:
    value: object = data
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


@enforces("CH-4.1.1", "CH-4.1.6", "CH-8.1")
def data_problems(data: Mapping[str, object], today: date) -> dict[str, str]:
    """Problems of the charter-checked fields present in `data` (empty: none)."""
    problems: dict[str, str] = {}
    ins = _lookup(data, "patient.ins")
    if isinstance(ins, str) and ins.strip() and not is_valid_ins(ins):
        problems["patient.ins"] = ("INS invalide : les 15 caractères (NIR et clé) ne concordent pas ; "
                                   "vérifiez la saisie ou laissez le champ vide.")
    for path in PAST_DATE_FIELDS:
        value = _lookup(data, path)
        if not isinstance(value, str) or not value:
            continue
        try:
            day = date.fromisoformat(value[:10])
        except ValueError:
            continue  # the schema reports the format
        if day > today:
            problems[path] = f"Date dans le futur ({day:%d/%m/%Y}) : saisissez la date réelle."
    return problems
