"""A convention between a site and radiologists as administrators see it (CH-3.4: active only once validated by
the CME and approved by the G4 and the Medical Council, with its content: engine.domain.convention_content), read
from its row, its members' rows and its documents; and why it may not become active yet."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from engine.domain.charter import enforces
from engine.domain.convention_content import NUMBERS, TEXTS, expired, missing_items, refusal_text
from engine.store.convention_models import convention_facts, document_kinds, routes_cases
from engine.store.directory_models import ConventionRow

CONTENT_FIELDS = ("cme_validated_on", "g4_approved_on", "council_approved_on", "medical_lead", *TEXTS, *NUMBERS,
                  "expires_on", "renewal_on", "visit_interval_days")


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
    content: dict[str, Any] = field(default_factory=dict)  # CONTENT_FIELDS -> value
    documents: frozenset[str] = frozenset()  # kinds on file
    remuneration_declared_by: str | None = None
    missing: tuple[str, ...] = ()  # what it lacks to be active (French), at today's date
    legacy_incomplete: bool = False  # active before its content was asked (migration 0024)
    expired: bool = False
    routes_cases: bool = False  # approved, complete (or legacy) and not expired: routing opens to its members

    @property
    def active(self) -> bool:
        """CH-3.4: active only once validated by the CME and approved by the G4 and the Medical Council."""
        return self.cme_validated and self.approved_by_g4 and self.approved_by_council

    @property
    def visit_interval_days(self) -> int:
        return int(self.content.get("visit_interval_days") or 365)


def convention_from_row(row: ConventionRow, members: Iterable[str], documents: frozenset[str] = frozenset(),
                        today: date | None = None) -> ConventionSummary:
    tiers = tuple(sorted(int(t) for t in row.tiers.split(",") if t.strip().isdigit()))
    missing = tuple(missing_items(convention_facts(row, documents), today)) if today is not None else ()
    return ConventionSummary(
        row.id, row.site_id, tuple(members), row.cme_validated, row.approved_by_g4, row.approved_by_council,
        row.external_allowed, tiers, {name: getattr(row, name) for name in CONTENT_FIELDS}, documents,
        row.remuneration_declared_by, missing, bool(row.legacy_incomplete),
        today is not None and expired(row.expires_on, today),
        today is not None and routes_cases(row, documents, today))


@enforces("CH-3.4", "CH-6.1", "CH-6.2", "CH-6.4")
def activation_refusal(session: Session, row: ConventionRow, today: date) -> str | None:
    """Why this convention may not become active: everything it still lacks, in French; None when complete."""
    session.flush()
    missing = missing_items(convention_facts(row, document_kinds(session, [row.id])[row.id]), today)
    return refusal_text(missing) or None
