"""Periodic quality audits (CH-6.3): issued reports, frozen, and their follow-up actions
(engine.services.quality_audits).

An issued report is never changed nor deleted: issuing the same quarter again adds a version. Besides the services
(which have no update of a report), the database refuses it: triggers of migration 0026 abort any UPDATE or DELETE of
quality_audit_report, and the ORM refuses to flush one (below)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models import Base, BigId, UTCDateTime


class QualityAuditReport(Base):
    __tablename__ = "quality_audit_report"
    __table_args__ = (UniqueConstraint("scope", "scope_id", "quarter", "version", name="uq_quality_audit_report"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # site or territory (an organisation)
    scope_id: Mapped[str] = mapped_column(String(64), index=True)
    quarter: Mapped[str] = mapped_column(String(7))  # 2026-Q4
    version: Mapped[int] = mapped_column(Integer)  # 1, 2... per scope and quarter
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)  # inclusive
    snapshot: Mapped[str] = mapped_column(Text)  # JSON: indicators and notable cases as issued
    sha256: Mapped[str] = mapped_column(String(64))  # of snapshot, also in the audit event of the issue
    issued_by: Mapped[str] = mapped_column(String(128))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)


class QualityAuditAction(Base):
    __tablename__ = "quality_audit_action"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    report_id: Mapped[int] = mapped_column(BigId, ForeignKey("quality_audit_report.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(200))
    due_date: Mapped[date] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_by: Mapped[str | None] = mapped_column(String(128))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ImmutableReport(RuntimeError):
    """An issued quality audit report was about to be changed or deleted."""


@event.listens_for(QualityAuditReport, "before_update")
@event.listens_for(QualityAuditReport, "before_delete")
def _refuse_change(_mapper: Any, _connection: Any, target: QualityAuditReport) -> None:
    raise ImmutableReport(f"quality audit report {target.id} is issued: it is never changed (issue a new version)")
