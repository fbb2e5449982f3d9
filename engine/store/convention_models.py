"""The documents of a convention (CH-3.4, CH-6.4: the CME validation, the G4 and Council approvals, the
remuneration document) and the expiry reminders already sent (engine.services.convention_reminders)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

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
