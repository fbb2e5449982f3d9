"""The documents of a convention (CH-3.4, CH-6.4: the CME validation, the G4 and Council approvals, the
remuneration document) and the expiry reminders already sent (engine.services.convention_reminders)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, LargeBinary, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.domain.convention_content import NUMBERS, TEXTS, ConventionFacts, expired, missing_items
from engine.store.directory_models import ConventionRow
from engine.store.models import Base, BigId, UTCDateTime


class ConventionDocument(Base):
    """One uploaded document of a convention; the latest of each kind is the one in force, the earlier ones stay
    (what was approved is kept). The bytes live in the row: an upload is one transaction, never half-written."""

    __tablename__ = "convention_document"
    __table_args__ = (Index("ix_convention_document_kind", "convention_id", "kind", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    convention_id: Mapped[int] = mapped_column(ForeignKey("convention.id"))
    kind: Mapped[str] = mapped_column(String(16))  # cme, g4, council, remuneration
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))  # checked from the content, not the browser's word
    size: Mapped[int] = mapped_column(BigId)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str] = mapped_column(String(128))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConventionReminder(Base):
    """A reminder of a convention's renewal or expiry, sent once per stage and expiry date."""

    __tablename__ = "convention_reminder"
    __table_args__ = (UniqueConstraint("convention_id", "stage", "expires_on", name="uq_convention_reminder"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    convention_id: Mapped[int] = mapped_column(ForeignKey("convention.id"))
    stage: Mapped[str] = mapped_column(String(16))  # renewal, expiry_soon, expired
    expires_on: Mapped[date] = mapped_column(Date)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)


def document_kinds(session: Session, convention_ids: Iterable[int]) -> dict[int, frozenset[str]]:
    """The kinds of document on file for each of these conventions."""
    wanted = set(convention_ids)
    kinds: dict[int, set[str]] = {}
    if wanted:
        for convention_id, kind in session.execute(
                select(ConventionDocument.convention_id, ConventionDocument.kind).distinct()
                .where(ConventionDocument.convention_id.in_(wanted))).tuples():
            kinds.setdefault(convention_id, set()).add(kind)
    return {convention_id: frozenset(kinds.get(convention_id, ())) for convention_id in wanted}


def convention_facts(row: ConventionRow, documents: frozenset[str]) -> ConventionFacts:
    """What engine.domain.convention_content checks, read from the convention's row and its documents' kinds."""
    return ConventionFacts(
        texts={name: getattr(row, name) for name in TEXTS}, numbers={name: getattr(row, name) for name in NUMBERS},
        medical_lead=row.medical_lead,
        approved_on={"cme": row.cme_validated_on, "g4": row.g4_approved_on, "council": row.council_approved_on},
        documents=documents, remuneration_declared=row.remuneration_declared_at is not None,
        expires_on=row.expires_on, renewal_on=row.renewal_on)


def routes_cases(row: ConventionRow, documents: frozenset[str], today: date) -> bool:
    """The convention opens routing today: approved (CH-3.4), complete (or active before its content was asked,
    legacy_incomplete) and not expired."""
    if not (row.cme_validated and row.approved_by_g4 and row.approved_by_council):
        return False
    if expired(row.expires_on, today):
        return False
    return row.legacy_incomplete or not missing_items(convention_facts(row, documents), today)
