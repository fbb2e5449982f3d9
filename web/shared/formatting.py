"""Dates and languages as the pages show them: times are stored in UTC and shown in Europe/Paris."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
LANGUAGES = ("fr", "en")


def paris_time(moment: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    if moment is None:
        return "—"
    return moment.astimezone(PARIS).strftime(fmt)


def french_date(value: object) -> str:
    """A date as people read it here (dd/mm/yyyy), from ISO (1960-09-21) or DICOM (19600921); "—" when absent,
    and an unreadable value as it is."""
    text = str(value or "").strip()
    digits = text.replace("-", "")
    if not text:
        return "—"
    if len(digits) == 8 and digits.isdigit():
        return f"{digits[6:8]}/{digits[4:6]}/{digits[0:4]}"
    return text
