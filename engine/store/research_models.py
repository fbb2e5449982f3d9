"""De-identified research exports (CH-8.2): a researcher's request, its approval or refusal, and the export
produced from it (engine.services.research). The request row is the record of the export: who asked, under which
protocol and approval, who approved, when it was produced, which cases it holds (manifest) and when it was
downloaded (once)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models import Base, BigId, UTCDateTime


class ResearchRequest(Base):
    __tablename__ = "research_request"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    requester: Mapped[str] = mapped_column(String(128), index=True)
    protocol: Mapped[str] = mapped_column(String(300))
    approval_ref: Mapped[str] = mapped_column(String(300))
    fields: Mapped[str] = mapped_column(Text)  # JSON list of engine.domain.research.CASE_FIELDS
    images: Mapped[bool] = mapped_column(Boolean)
    retain_dates: Mapped[bool] = mapped_column(Boolean)
    clean_pixels: Mapped[bool] = mapped_column(Boolean)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    sites: Mapped[str] = mapped_column(Text)  # JSON list of site ids
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(String(300))
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    # Each claim of the production (start, or restart by the worker after an interruption) increments the attempt;
    # the producer holding an older attempt can no longer record progress or finish. The heartbeat is refreshed
    # as the production advances: a RUNNING request whose heartbeat is stale has lost its producer.
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    produced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    file_name: Mapped[str | None] = mapped_column(String(200))  # under <instance>/research
    sha256: Mapped[str | None] = mapped_column(String(64))
    manifest: Mapped[str | None] = mapped_column(Text)  # JSON: cases (ids), images kept and left out with reasons
    error: Mapped[str | None] = mapped_column(Text)
    downloaded_by: Mapped[str | None] = mapped_column(String(128))
    downloaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
