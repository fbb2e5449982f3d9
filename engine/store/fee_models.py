"""Acts and fees (CH-7): CCAM tables by date of effect, the CCAM acts of each case, monthly statements and their
adjustments (engine.services.ccam_tables, engine.services.case_acts, engine.services.fee_statements).

An issued statement is never changed nor deleted: besides the services (which have no update of a statement), the
database refuses it (triggers of migration 0028) and the ORM refuses to flush one (below). A correction is a
FeeAdjustment, carried into the next statement of the same radiologist or site."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models import Base, BigId, UTCDateTime

Money = Numeric(12, 2)


class CcamTable(Base):
    """One loaded CCAM table; the one in effect on a day is the latest effective_from on or before it."""

    __tablename__ = "ccam_table"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    effective_from: Mapped[date] = mapped_column(Date, index=True)
    source_name: Mapped[str] = mapped_column(String(200))
    sample: Mapped[bool] = mapped_column(Boolean, default=False)  # the shipped SAMPLE table, never a tariff
    act_count: Mapped[int] = mapped_column(Integer)
    loaded_by: Mapped[str] = mapped_column(String(128))
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # telerad-csv (Telerad's CSV) or cnam-excel (the CNAM's CCAM workbook, engine.services.ccam_ameli)
    source_format: Mapped[str] = mapped_column(String(16), default="telerad-csv", server_default="telerad-csv")
    # the technical fees of the remuneration document added to the CNAM's CT and MRI tariffs (cnam-excel only)
    ct_technical_fee_eur: Mapped[Decimal | None] = mapped_column(Money)
    mri_technical_fee_eur: Mapped[Decimal | None] = mapped_column(Money)


class CcamTableAct(Base):
    __tablename__ = "ccam_table_act"
    __table_args__ = (UniqueConstraint("table_id", "code", name="uq_ccam_table_act"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    table_id: Mapped[int] = mapped_column(BigId, ForeignKey("ccam_table.id"), index=True)
    code: Mapped[str] = mapped_column(String(7))
    label: Mapped[str] = mapped_column(String(400))
    modality: Mapped[str] = mapped_column(String(8))
    family: Mapped[str] = mapped_column(String(32))
    price_eur: Mapped[Decimal] = mapped_column(Money)
    technical_share_eur: Mapped[Decimal | None] = mapped_column(Money)


class CaseAct(Base):
    """A CCAM act the case's radiologist chose for the case, with its modifiers; editable until a statement
    covering it is issued."""

    __tablename__ = "case_act"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("process_instance.id"), index=True)
    code: Mapped[str] = mapped_column(String(7))
    urgency: Mapped[bool] = mapped_column(Boolean, default=False)  # urgency modifier
    on_call: Mapped[bool] = mapped_column(Boolean, default=False)  # done on call: the on-call fee (CH-7.5)
    radiologist: Mapped[str] = mapped_column(String(128), index=True)
    chosen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FeeStatement(Base):
    """An issued monthly statement of a radiologist or a site: a frozen JSON snapshot."""

    __tablename__ = "fee_statement"
    __table_args__ = (UniqueConstraint("scope", "scope_id", "month", name="uq_fee_statement"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # radiologist or site
    scope_id: Mapped[str] = mapped_column(String(128), index=True)
    month: Mapped[str] = mapped_column(String(7))  # 2026-11
    snapshot: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    issued_by: Mapped[str] = mapped_column(String(128))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FeeAdjustment(Base):
    """An audited correction, carried into the next statement issued for its radiologist or site."""

    __tablename__ = "fee_adjustment"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    scope_id: Mapped[str] = mapped_column(String(128), index=True)
    amount_eur: Mapped[Decimal] = mapped_column(Money)  # added to (negative: taken from) the radiologist's due
    reason: Mapped[str] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("process_instance.id"))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    statement_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("fee_statement.id"), index=True)
    site_id: Mapped[str | None] = mapped_column(String(64))  # the case's site: the site's statement carries it too
    site_statement_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("fee_statement.id"))


class ImmutableStatement(RuntimeError):
    """An issued fee statement was about to be changed or deleted."""


@event.listens_for(FeeStatement, "before_update")
@event.listens_for(FeeStatement, "before_delete")
def _refuse_change(_mapper: Any, _connection: Any, target: FeeStatement) -> None:
    raise ImmutableStatement(f"fee statement {target.id} is issued: it is never changed (adjust the next one)")
