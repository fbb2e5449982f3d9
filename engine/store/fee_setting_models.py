"""Settings of the remuneration document (CH-6.4, CH-7.4 to CH-7.6): the on-call fee per act done on call, the
teleexpertise fee and the site's monthly transmission costs, organisation-wide or for one site (its own
remuneration document), each in force from a date of effect (engine.services.fee_settings).

The history is append-only: a change is a new row, never an update; the ORM refuses to flush a change or a deletion
(below) and the database refuses it too (triggers of migration 0032)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Numeric, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models import Base, BigId, UTCDateTime

SETTING_NAMES = ("on_call_fee", "teleexpertise_fee", "transmission_costs")


class FeeSetting(Base):
    """One value of a setting from `effective_from` (Paris date), organisation-wide (site_id None) or for a site.
    The value in force on a day is the latest effective_from on or before it (the latest row set for one date)."""

    __tablename__ = "fee_setting"
    __table_args__ = (
        CheckConstraint("amount_eur >= 0", name="amount"),
        CheckConstraint("name IN ('on_call_fee', 'teleexpertise_fee', 'transmission_costs')", name="name"),
        Index("ix_fee_setting_lookup", "name", "site_id", "effective_from"),
        Index("ix_fee_setting_effective_from", "effective_from"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(32))
    site_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("site.id"))
    amount_eur: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    effective_from: Mapped[date] = mapped_column(Date)
    set_by: Mapped[str] = mapped_column(String(128))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)


class ImmutableSetting(RuntimeError):
    """A recorded value of a remuneration setting was about to be changed or deleted."""


@event.listens_for(FeeSetting, "before_update")
@event.listens_for(FeeSetting, "before_delete")
def _refuse_change(_mapper: Any, _connection: Any, target: FeeSetting) -> None:
    raise ImmutableSetting(f"fee setting {target.id} is history: never changed (set a new value from a date)")
