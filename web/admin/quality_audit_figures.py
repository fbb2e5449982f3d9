"""The indicators of a quality audit report (the JSON of engine.services.indicators, as frozen in the report) read
out in French section by section, with the same lines as the dashboard, its CSV and `telerad indicators`
(web.shared.indicator_labels)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from web.shared.indicator_labels import summary_rows


def sections(figures: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, str]]]] | None:
    """(French section title, [(French label, value)]) in the summary's order; None when the snapshot's figures do
    not have the shape this version reads (a report issued by another version: its JSON stays downloadable)."""
    try:
        rows = summary_rows(figures)
    except (KeyError, TypeError, AttributeError, ValueError):
        return None
    grouped: dict[str, list[tuple[str, str]]] = {}
    for section, label, value in rows:
        grouped.setdefault(section, []).append((label, value))
    return list(grouped.items())
