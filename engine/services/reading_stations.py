"""Each radiologist's reading workstations (CH-5.2): the station, its display, and his declaration that the display
meets the diagnostic display requirements ("écran de diagnostic conforme"), with its date and the reference and
quality controls it rests on. Declared, not checked by software. Each radiologist records and removes only his own;
administrators see every radiologist's. Not to be confused with the DICOM viewing stations that query Telerad
(integrations.dicom.workstations). Every change is one audited transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.data_checks import paris_date
from engine.errors import Forbidden, NotFound
from engine.services.audit import record_global_event
from engine.services.context import EngineContext
from engine.services.site_quality_access import (
    MAX_TEXT,
    SiteQualityError,
    clean_text,
    is_admin,
    is_radiologist,
    names_of,
    parse_day,
)
from engine.store.site_quality_models import ReadingStationRow

MAX_STATIONS = 20  # per radiologist


@dataclass(frozen=True)
class ReadingStationView:
    id: int
    username: str
    owner_name: str
    name: str
    display_model: str
    conformity_declared: bool
    declared_on: date
    reference: str
    created_at: datetime


def _require_reader(actor: Actor) -> None:
    if not (is_admin(actor) or is_radiologist(actor)):
        raise Forbidden("Les postes de lecture sont ceux des radiologues.")


@enforces("CH-5.2")
def declare_station(ctx: EngineContext, actor: Actor, name: object, display_model: object, conformity: bool,
                    declared_on: object, reference: object) -> int:
    """A radiologist declares one of his own reading workstations with its display's conformity."""
    if not is_radiologist(actor):
        raise Forbidden("Chaque radiologue déclare lui-même ses postes de lecture.")
    label = clean_text(name, "Nom du poste", "name")
    display = clean_text(display_model, "Modèle d'écran", "display_model")
    if not conformity:
        raise SiteQualityError("Conformité : un poste de lecture n'est déclaré que si son écran est un écran de "
                               "diagnostic conforme ; cochez la déclaration.", "conformity")
    day = parse_day(declared_on, "Date de la déclaration", "declared_on", paris_date(ctx.clock.now()))
    basis = clean_text(reference, "Référence et contrôles", "reference", limit=MAX_TEXT)
    now = ctx.clock.now()
    with ctx.write() as session:
        count = len(session.execute(select(ReadingStationRow.id).where(
            ReadingStationRow.username == actor.user_id)).all())
        if count >= MAX_STATIONS:
            raise SiteQualityError(f"Vous avez déjà {MAX_STATIONS} postes de lecture : retirez-en un d'abord.")
        row = ReadingStationRow(username=actor.user_id, name=label, display_model=display, conformity_declared=True,
                                declared_on=day, reference=basis, created_at=now)
        session.add(row)
        session.flush()
        record_global_event(session, actor.user_id, "reading_station.declared", {
            "station": row.id, "name": label, "display_model": display, "declared_on": day.isoformat()}, now)
        session.commit()
        return row.id


def remove_station(ctx: EngineContext, actor: Actor, station_id: int) -> None:
    """Remove one of his own stations (anyone else's: not found)."""
    _require_reader(actor)
    with ctx.write() as session:
        row = session.get(ReadingStationRow, station_id)
        if row is None or row.username != actor.user_id:
            raise NotFound("Poste de lecture introuvable.")
        record_global_event(session, actor.user_id, "reading_station.removed", {
            "station": station_id, "name": row.name}, ctx.clock.now())
        session.delete(row)
        session.commit()


def list_stations(ctx: EngineContext, actor: Actor) -> list[ReadingStationView]:
    """His own stations (a radiologist), everyone's (administrators), by owner then name."""
    _require_reader(actor)
    query = select(ReadingStationRow).order_by(ReadingStationRow.username, ReadingStationRow.name,
                                               ReadingStationRow.id)
    if not is_admin(actor):
        query = query.where(ReadingStationRow.username == actor.user_id)
    with ctx.read() as session:
        rows = session.execute(query).scalars().all()
        names = names_of(session, [r.username for r in rows])
    return [ReadingStationView(r.id, r.username, names.get(r.username, r.username), r.name, r.display_model,
                               r.conformity_declared, r.declared_on, r.reference, r.created_at) for r in rows]
