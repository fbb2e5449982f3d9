"""On-call duty administration (CH-5.5): slots per territory and the gaps in H24 coverage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from engine.domain.actors import Actor
from engine.domain.oncall import OnCallSlot, coverage_gaps
from engine.errors import Forbidden, NotFound
from engine.services.context import EngineContext
from engine.store import audit
from engine.store.directory_models import OnCallSlotRow, TerritoryRow, User, UserRole

MAX_SLOT = timedelta(days=7)


class OnCallError(ValueError):
    """Refused with a French message."""


@dataclass(frozen=True)
class SlotView:
    id: int
    territory_id: str
    username: str
    display_name: str
    starts_at: datetime
    ends_at: datetime


def _require_admin(actor: Actor) -> None:
    if not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur peut organiser les gardes.")


def add_slot(ctx: EngineContext, actor: Actor, territory_id: str, username: str, starts_at: datetime,
             ends_at: datetime) -> int:
    _require_admin(actor)
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise OnCallError("Dates sans fuseau horaire.")
    if ends_at <= starts_at:
        raise OnCallError("La fin de la garde doit suivre son début.")
    if ends_at - starts_at > MAX_SLOT:
        raise OnCallError("Une garde dure au plus sept jours : découpez-la.")
    with ctx.write() as session:
        if session.get(TerritoryRow, territory_id) is None:
            raise OnCallError(f"Territoire inconnu : {territory_id}.")
        is_radiologist = session.execute(select(UserRole).where(
            UserRole.username == username, UserRole.role == "radiologist")).first()
        if session.get(User, username) is None or not is_radiologist:
            raise OnCallError(f"« {username} » n'est pas un radiologue.")
        row = OnCallSlotRow(territory_id=territory_id, username=username, starts_at=starts_at, ends_at=ends_at)
        session.add(row)
        session.flush()
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "oncall.added", None, {
            "slot": row.id, "territory": territory_id, "radiologist": username,
            "from": starts_at.isoformat(), "to": ends_at.isoformat()})], ctx.clock.now())
        session.commit()
        return row.id


def remove_slot(ctx: EngineContext, actor: Actor, slot_id: int) -> None:
    _require_admin(actor)
    with ctx.write() as session:
        row = session.get(OnCallSlotRow, slot_id)
        if row is None:
            raise NotFound("garde introuvable")
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "oncall.removed", None, {
            "slot": slot_id, "territory": row.territory_id, "radiologist": row.username})], ctx.clock.now())
        session.delete(row)
        session.commit()


def list_slots(ctx: EngineContext, start: datetime, end: datetime) -> list[SlotView]:
    with ctx.read() as session:
        rows = session.execute(
            select(OnCallSlotRow, User.display_name).join(User, User.username == OnCallSlotRow.username)
            .where(OnCallSlotRow.ends_at > start, OnCallSlotRow.starts_at < end)
            .order_by(OnCallSlotRow.territory_id, OnCallSlotRow.starts_at)).all()
    return [SlotView(r.id, r.territory_id, r.username, name, r.starts_at, r.ends_at) for r, name in rows]


def gaps(ctx: EngineContext, start: datetime, end: datetime) -> dict[str, list[tuple[datetime, datetime]]]:
    """Per territory, the out-of-hours periods nobody covers between start and end."""
    slots = [OnCallSlot(s.territory_id, s.username, s.starts_at, s.ends_at) for s in list_slots(ctx, start, end)]
    with ctx.read() as session:
        territories = list(session.execute(select(TerritoryRow.id).order_by(TerritoryRow.id)).scalars())
    return {t: coverage_gaps(slots, t, start, end) for t in territories}
