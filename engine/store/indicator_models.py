"""What the quality indicators keep of each case (engine.services.indicators): the moments and counts its tasks,
its timers and its data give, one small row per case, rebuilt from them whenever the case's version changed. The
indicators then read these rows only, not the cases' tasks (ten rows a case) nor their saved state (10-30 kB).

No index on the period: the indicators read most of the rows of their period, and a scan of the table in its
order is about ten times faster than reaching each row through an index (benchmarks/indicators.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models import Base, BigId, UTCDateTime


class CaseIndicator(Base):
    __tablename__ = "case_indicator"

    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("process_instance.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)  # the case's version these facts were read at
    process_id: Mapped[str] = mapped_column(String(128))
    site_id: Mapped[str | None] = mapped_column(String(64))
    urgency: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    week_number: Mapped[int] = mapped_column(Integer)  # weeks since Monday 3 January 2000 00:00, Paris winter time
    modality: Mapped[str | None] = mapped_column(String(8))  # the requested one (case data)
    refusal_reason: Mapped[str | None] = mapped_column(String(32))  # of the motivated refusal (case data)
    radiologist: Mapped[str | None] = mapped_column(String(128))  # who completed the report (or the opinion)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    offer_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted: Mapped[int] = mapped_column(Integer)
    reading_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Durations in minutes, computed once with the facts (docs/indicators.md): request -> release, images available
    # -> release, first offer -> acceptance, release -> acknowledgement, request -> opinion.
    turnaround_minutes: Mapped[float | None] = mapped_column(Float)
    report_minutes: Mapped[float | None] = mapped_column(Float)
    acceptance_minutes: Mapped[float | None] = mapped_column(Float)
    acknowledgement_minutes: Mapped[float | None] = mapped_column(Float)
    answer_minutes: Mapped[float | None] = mapped_column(Float)
    more_info: Mapped[int] = mapped_column(Integer)
    urgent_findings: Mapped[int] = mapped_column(Integer)
    phone_calls: Mapped[int] = mapped_column(Integer)
    announcements: Mapped[int] = mapped_column(Integer)
    announcements_confirmed: Mapped[int] = mapped_column(Integer)
    refusals: Mapped[int] = mapped_column(Integer)
    refusal_visits: Mapped[int] = mapped_column(Integer)
    refusal_fallbacks: Mapped[int] = mapped_column(Integer)
    te_loops: Mapped[int] = mapped_column(Integer)
    difficulties: Mapped[int] = mapped_column(Integer)
    no_radiologist: Mapped[int] = mapped_column(Integer)
    tier_after: Mapped[int] = mapped_column(Integer)
    report_late: Mapped[int] = mapped_column(Integer)
    te_late: Mapped[int] = mapped_column(Integer)
