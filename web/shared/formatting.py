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
