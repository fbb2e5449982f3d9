"""QIDO-RS query parameters read and checked (PS3.18 8.3.4): the matching keys Telerad answers, the paging and
includefield parameters; anything else is refused with a French reason (HTTP 400), before any query runs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from integrations.dicom.storage import UID_PATTERN

STUDY, SERIES, INSTANCE = "study", "series", "instance"
MAX_LIMIT = 1000  # answers per request; a client pages with offset beyond it
DEFAULT_LIMIT = 1000
MAX_VALUE_LENGTH = 324  # the longest value any key matches (Person Name)
MAX_UIDS = 200  # UID list matching
_DATE = re.compile(r"\d{8}")
_INTEGER = re.compile(r"-?\d{1,9}")

#: Matching keys by level; a query at a level also matches on the keys of the levels above it (PS3.18 8.3.4.1).
LEVEL_KEYS = {
    STUDY: ("StudyInstanceUID", "AccessionNumber", "PatientID", "PatientName", "StudyDate", "StudyDescription",
            "ModalitiesInStudy"),
    SERIES: ("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription"),
    INSTANCE: ("SOPInstanceUID", "SOPClassUID", "InstanceNumber"),
}
UID_KEYS = frozenset({"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"})
WILDCARD_KEYS = frozenset({"PatientName", "PatientID", "AccessionNumber", "StudyDescription", "SeriesDescription"})
INTEGER_KEYS = frozenset({"SeriesNumber", "InstanceNumber"})
LIST_KEYS = frozenset({"ModalitiesInStudy", "Modality"}) | UID_KEYS


class BadQuery(ValueError):
    """A query parameter that cannot be answered; the message (French) says which and why."""


@dataclass(frozen=True)
class Query:
    level: str
    matches: dict[str, object] = field(default_factory=dict)  # keyword -> str, list of str, int or date range
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    include_all: bool = False
    include: tuple[str, ...] = ()  # keywords asked for with includefield


def keys_of(level: str) -> tuple[str, ...]:
    levels = {STUDY: (STUDY,), SERIES: (STUDY, SERIES), INSTANCE: (STUDY, SERIES, INSTANCE)}[level]
    return tuple(key for name in levels for key in LEVEL_KEYS[name])


def keyword_of(name: str) -> str | None:
    """The DICOM keyword a parameter names, by keyword or by tag (eight hexadecimal digits); None if neither."""
    if re.fullmatch(r"[0-9A-Fa-f]{8}", name):
        return keyword_for_tag(int(name, 16)) or None
    return name if tag_for_keyword(name) is not None else None


def check_uid(value: str, label: str = "UID") -> str:
    if not value or len(value) > 64 or not UID_PATTERN.match(value):
        raise BadQuery(f"{label} mal formé : {value[:80]!r}")
    return value


def parse_query(level: str, items: Iterable[tuple[str, str]]) -> Query:
    """The query of a QIDO-RS request at `level` from its parameters (name, value), repeated names included."""
    allowed = keys_of(level)
    matches: dict[str, object] = {}
    include: list[str] = []
    include_all = False
    limit, offset = DEFAULT_LIMIT, 0
    for name, value in items:
        if len(value) > 4 * MAX_VALUE_LENGTH or "\x00" in value:
            raise BadQuery(f"valeur trop longue ou invalide pour « {name[:40]} »")
        if name == "limit":
            limit = _bounded(name, value, 1, MAX_LIMIT)
        elif name == "offset":
            offset = _bounded(name, value, 0, 10**9)
        elif name == "fuzzymatching":
            if value not in ("true", "false"):
                raise BadQuery("fuzzymatching vaut true ou false")
        elif name == "includefield":
            for part in value.split(","):
                if part == "all":
                    include_all = True
                    continue
                keyword = keyword_of(part.strip())
                if keyword is None:
                    raise BadQuery(f"includefield : attribut DICOM inconnu « {part[:40]} »")
                include.append(keyword)
        else:
            keyword = keyword_of(name)
            if keyword is None:
                raise BadQuery(f"paramètre de requête inconnu « {name[:40]} »")
            if keyword not in allowed:
                raise BadQuery(f"recherche sur « {keyword} » non prise en charge à ce niveau (clés : "
                               f"{', '.join(allowed)})")
            if value == "":
                continue  # universal matching: every value, and the attribute returned
            matches[keyword] = _match_value(keyword, value)
    return Query(level, matches, limit, offset, include_all, tuple(dict.fromkeys(include)))


def _bounded(name: str, value: str, low: int, high: int) -> int:
    if not re.fullmatch(r"\d{1,10}", value) or not low <= int(value) <= high:
        raise BadQuery(f"{name} : entier de {low} à {high} attendu")
    return int(value)


def _match_value(keyword: str, value: str) -> object:
    if len(value) > MAX_VALUE_LENGTH and keyword not in UID_KEYS:
        raise BadQuery(f"valeur trop longue pour {keyword}")
    if keyword == "StudyDate":
        return date_range(value)
    if keyword in INTEGER_KEYS:
        if not _INTEGER.fullmatch(value):
            raise BadQuery(f"{keyword} : entier attendu")
        return int(value)
    if keyword in LIST_KEYS:
        values = [part.strip() for part in re.split(r"[,\\]", value) if part.strip()]
        if len(values) > MAX_UIDS:
            raise BadQuery(f"{keyword} : au plus {MAX_UIDS} valeurs")
        if keyword in UID_KEYS:
            values = [check_uid(v, keyword) for v in values]
        elif any(not re.fullmatch(r"[A-Z0-9 _]{1,16}", v) for v in values):
            raise BadQuery(f"{keyword} : code de modalité invalide")
        return values
    if keyword in WILDCARD_KEYS:
        return value
    raise BadQuery(f"recherche sur « {keyword} » non prise en charge")  # pragma: no cover - keys_of guards it


def date_range(value: str) -> tuple[str | None, str | None]:
    """(from, to), inclusive, YYYYMMDD each or None when open: "20240101", "20240101-20241231", "-20241231"."""
    first, dash, last = value.partition("-")
    if not dash:
        last = first
    bounds = (first or None, last or None)
    if bounds == (None, None) or any(b is not None and not _valid_date(b) for b in bounds):
        raise BadQuery(f"StudyDate : date AAAAMMJJ ou intervalle AAAAMMJJ-AAAAMMJJ attendu, pas {value[:40]!r}")
    return bounds


def _valid_date(text: str) -> bool:
    if not _DATE.fullmatch(text):
        return False
    month, day = int(text[4:6]), int(text[6:])
    return 1 <= month <= 12 and 1 <= day <= 31

