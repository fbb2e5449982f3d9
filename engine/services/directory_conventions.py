"""A convention between a site and radiologists as administrators see it (CH-3.4: active only once validated by
the CME and approved by the G4 and the Medical Council), read from its row and its members' rows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.store.directory_models import ConventionRow


@dataclass(frozen=True)
class ConventionSummary:
    id: int
    site_id: str
    radiologists: tuple[str, ...]
    cme_validated: bool
    approved_by_g4: bool
    approved_by_council: bool
    external_allowed: bool
    tiers: tuple[int, ...]

    @property
    def active(self) -> bool:
        """CH-3.4: active only once validated by the CME and approved by the G4 and the Medical Council."""
        return self.cme_validated and self.approved_by_g4 and self.approved_by_council


def convention_from_row(row: ConventionRow, members: Iterable[str]) -> ConventionSummary:
    tiers = tuple(sorted(int(t) for t in row.tiers.split(",") if t.strip().isdigit()))
    return ConventionSummary(row.id, row.site_id, tuple(members), row.cme_validated, row.approved_by_g4,
                             row.approved_by_council, row.external_allowed, tiers)
