"""Downtime incidents (CH-5.5): an IT or network failure declared at a requesting site or on the radiologists'
(Telerad) side, open until closed. While an incident covers a moment, the steps of a case handled by phone or on
paper at that moment may be entered afterwards (engine.services.incidents). Rows are written by audited use cases
only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models import Base, BigId, UTCDateTime

KINDS = ("it", "network")
SIDES = ("site", "telerad")


class IncidentRow(Base):
    """One failure: what failed (kind), on which side, at which site, from when until when (ended_at NULL: open)."""

    __tablename__ = "downtime_incident"
    __table_args__ = (Index("ix_downtime_incident_open", "ended_at", "site_id"),
                      Index("ix_downtime_incident_site", "site_id", "started_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id"))
    kind: Mapped[str] = mapped_column(String(16))  # it | network
    side: Mapped[str] = mapped_column(String(16))  # site | telerad
    description: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    declared_by: Mapped[str] = mapped_column(String(128))
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(128))
    closing_note: Mapped[str | None] = mapped_column(Text)
