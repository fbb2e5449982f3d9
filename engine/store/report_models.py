"""The report's own records beside the workflow state: the author's draft of a report task (autosaved, read only by
its author) and the signed addenda added after release (append-only). engine.services.report_drafts and
engine.services.report_addenda use them; the signature of the report itself is in the case data
(engine.services.report_signature)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models import Base, BigId, UTCDateTime


class ReportDraft(Base):
    """The fields of a report form as its author left them; deleted when the task is completed."""

    __tablename__ = "report_draft"

    task_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    author: Mapped[str] = mapped_column(String(128), primary_key=True)
    instance_id: Mapped[int] = mapped_column(BigId, ForeignKey("process_instance.id"), index=True)
    content: Mapped[str] = mapped_column(Text)  # JSON object of the form's fields
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReportAddendum(Base):
    """A signed addendum to a released report; never updated nor deleted (the original stays as it was)."""

    __tablename__ = "report_addendum"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance_id: Mapped[int] = mapped_column(BigId, ForeignKey("process_instance.id"), index=True)
    author: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
