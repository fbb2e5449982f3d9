"""What process designers work on before it becomes an immutable definition: diagram drafts and form schemas."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models import Base, BigId, UTCDateTime


class DiagramDraft(Base):
    """The work in progress on one process (one shared draft per process, saved with a revision counter so a
    designer never overwrites a colleague's newer save without knowing)."""

    __tablename__ = "diagram_draft"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    process_id: Mapped[str] = mapped_column(String(128), unique=True)
    base_definition_id: Mapped[int | None] = mapped_column(ForeignKey("process_definition.id"))
    files: Mapped[str] = mapped_column(Text)  # JSON {file name: XML text}
    revision: Mapped[int] = mapped_column(Integer)
    report: Mapped[str] = mapped_column(Text)  # JSON validation report of the saved files
    error_count: Mapped[int] = mapped_column(Integer)
    warning_count: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FormSchemaRow(Base):
    """A task form schema written in the designer. Immutable: editing a form stores a new key, so cases on
    older diagram versions keep the form they were built with."""

    __tablename__ = "form_schema"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    schema: Mapped[str] = mapped_column(Text)
    based_on: Mapped[str | None] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
