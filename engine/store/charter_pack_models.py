"""Charter rule packs per organisation (CH-9.1), the pack each case follows, and the activity radiologists declare
for their teleradiology share (CH-3.5). Migration 0023; engine.services.charter_packs and share use them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models import Base, BigId, UTCDateTime


class CharterPackAssignment(Base):
    """An organisation (a territory, or a convention) follows this pack from this date; never updated: a new row
    replaces the previous choice from its own date."""

    __tablename__ = "charter_pack_assignment"
    __table_args__ = (
        CheckConstraint("(territory_id IS NULL) <> (convention_id IS NULL)", name="one_organisation"),
        Index("ix_charter_pack_territory", "territory_id", "effective_from"),
        Index("ix_charter_pack_convention", "convention_id", "effective_from"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    territory_id: Mapped[str | None] = mapped_column(ForeignKey("territory.id"))
    convention_id: Mapped[int | None] = mapped_column(ForeignKey("convention.id"))
    pack: Mapped[str] = mapped_column(String(16))
    effective_from: Mapped[date] = mapped_column(Date)
    share_cap_percent: Mapped[int | None] = mapped_column(Integer)
    over_cap_mode: Mapped[str] = mapped_column(String(8))  # skip or warn
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))


class CaseCharterPack(Base):
    """The pack a case follows, recorded when it starts (running cases keep theirs), and the last routing screen
    whose skipped radiologists were written on the case's timeline."""

    __tablename__ = "case_charter_pack"

    instance_id: Mapped[int] = mapped_column(BigId, ForeignKey("process_instance.id"), primary_key=True)
    pack: Mapped[str] = mapped_column(String(16))
    version: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_screen: Mapped[str | None] = mapped_column(String(64))


class ActivityDeclaration(Base):
    """A radiologist's total activity (number of acts, all practice included) over a period, declared by himself or
    by an administrator; the denominator of his teleradiology share."""

    __tablename__ = "activity_declaration"
    __table_args__ = (
        CheckConstraint("total_acts >= 0", name="acts"),
        CheckConstraint("period_end >= period_start", name="period"),
        Index("ix_activity_declaration_user", "username", "period_end"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(ForeignKey("app_user.username"))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    total_acts: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    declared_by: Mapped[str] = mapped_column(String(128))
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime)
