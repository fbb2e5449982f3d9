"""Downtime incidents (CH-5.5): an administrator, or a site's medical lead for his own site, declares an IT or network
failure (which side: the requesting site, or the radiologists / Telerad) with its start; every page of the site's
users shows it (``open_incidents``: one indexed query); it is closed with its end and its duration, and counted in
the indicators. While an incident covers a moment, a step handled by phone or on paper at that moment may be
entered afterwards (engine.services.incident_backentry). Each change is one transaction with its global audit
event (incident.declared, incident.closed)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.errors import Forbidden, NotFound
from engine.services.audit import record_global_event
from engine.services.context import EngineContext
from engine.store.directory_models import SiteRow
from engine.store.incident_models import KINDS, SIDES, IncidentRow

MAX_DESCRIPTION = 2_000
MAX_AGE = timedelta(days=31)  # an incident is declared within a month of its start
FUTURE_SLACK = timedelta(minutes=5)  # clocks of a browser and the server may differ a little
KIND_LABELS = {"it": "Panne informatique", "network": "Panne du réseau"}
SIDE_LABELS = {"site": "côté établissement demandeur", "telerad": "côté radiologues (Telerad)"}


class IncidentError(ValueError):
    """A declaration or closing refused, in French; `field` names the form field at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class IncidentView:
    id: int
    site_id: str
    site_name: str
    kind: str
    side: str
    description: str
    started_at: datetime
    ended_at: datetime | None
    declared_by: str
    closed_by: str | None
    closing_note: str | None

    @property
    def is_open(self) -> bool:
        return self.ended_at is None

    @property
    def label(self) -> str:
        return f"{KIND_LABELS.get(self.kind, self.kind)} {SIDE_LABELS.get(self.side, self.side)}"

    def duration_minutes(self, now: datetime) -> int:
        return max(0, int(((self.ended_at or now) - self.started_at).total_seconds() // 60))


def may_manage(actor: Actor, site_id: str) -> bool:
    """Administrators for every site, a site's medical lead for the sites he belongs to."""
    if actor.is_system or "administrator" in actor.roles:
        return True
    return "site_lead" in actor.roles and site_id in actor.sites


def sees_every_site(actor: Actor) -> bool:
    """Administrators, and the radiologists who serve sites from afar (no site of their own), see every site's
    incidents (no patient data in them); anyone else those of his sites."""
    return actor.is_system or bool({"administrator", "radiologist", "tele_expert"} & actor.roles)


def _require_manager(actor: Actor, site_id: str) -> None:
    if not may_manage(actor, site_id):
        raise Forbidden("Seuls un administrateur et le médecin responsable du site déclarent ou clôturent "
                         "un incident de ce site.")


def _moment(value: object, label: str, field: str) -> datetime:
    if not isinstance(value, datetime):
        raise IncidentError(f"{label} : indiquez une date et une heure.", field)
    if value.tzinfo is None:
        raise IncidentError(f"{label} : fuseau horaire manquant.", field)
    if not 2000 <= value.year <= 2100:
        raise IncidentError(f"{label} : date hors de la période acceptée (2000-2100).", field)
    return value


def _view(row: IncidentRow, site_name: str) -> IncidentView:
    return IncidentView(row.id, row.site_id, site_name, row.kind, row.side, row.description, row.started_at,
                        row.ended_at, row.declared_by, row.closed_by, row.closing_note)


@enforces("CH-5.5")
def declare_incident(ctx: EngineContext, actor: Actor, site_id: str, kind: str, side: str, started_at: object,
                     description: object = "") -> int:
    """Declare a failure at `site_id`; refused if the same failure (kind and side) is already open there."""
    site_id = str(site_id or "").strip()
    _require_manager(actor, site_id)
    if kind not in KINDS:
        raise IncidentError("Nature de la panne : informatique ou réseau.", "kind")
    if side not in SIDES:
        raise IncidentError("Côté de la panne : établissement demandeur ou radiologues.", "side")
    start = _moment(started_at, "Début de l'incident", "started_at")
    now = ctx.clock.now()
    if start > now + FUTURE_SLACK:
        raise IncidentError("Début de l'incident : il ne peut pas être dans le futur.", "started_at")
    if start < now - MAX_AGE:
        raise IncidentError("Début de l'incident : plus d'un mois avant aujourd'hui ; un incident se déclare "
                            "pendant ou juste après la panne.", "started_at")
    text = str(description or "").strip()
    if len(text) > MAX_DESCRIPTION:
        raise IncidentError(f"Description : {MAX_DESCRIPTION} caractères au plus.", "description")
    with ctx.write() as session:
        if session.get(SiteRow, site_id) is None:
            raise IncidentError(f"Site inconnu : {site_id[:64]}.", "site_id")
        same = session.execute(select(IncidentRow.id).where(
            IncidentRow.site_id == site_id, IncidentRow.ended_at.is_(None), IncidentRow.kind == kind,
            IncidentRow.side == side)).first()
        if same is not None:
            raise IncidentError(f"Cet incident est déjà déclaré et en cours (n° {same[0]}).", "kind")
        row = IncidentRow(site_id=site_id, kind=kind, side=side, description=text, started_at=start,
                          declared_by=actor.user_id, declared_at=now)
        session.add(row)
        session.flush()
        record_global_event(session, actor.user_id, "incident.declared", {
            "incident": row.id, "site": site_id, "kind": kind, "side": side, "started_at": start.isoformat()}, now)
        session.commit()
        return row.id


@enforces("CH-5.5")
def close_incident(ctx: EngineContext, actor: Actor, incident_id: int, ended_at: object | None = None,
                   note: object = "") -> int:
    """Close an open incident at `ended_at` (default now); returns its duration in minutes."""
    now = ctx.clock.now()
    end = now if ended_at is None else _moment(ended_at, "Fin de l'incident", "ended_at")
    text = str(note or "").strip()
    if len(text) > MAX_DESCRIPTION:
        raise IncidentError(f"Note de clôture : {MAX_DESCRIPTION} caractères au plus.", "note")
    with ctx.write() as session:
        row = session.get(IncidentRow, incident_id, with_for_update=True)
        if row is None:
            raise NotFound("Incident inconnu.")
        _require_manager(actor, row.site_id)
        if row.ended_at is not None:
            raise IncidentError("Cet incident est déjà clos.")
        if end < row.started_at:
            raise IncidentError("Fin de l'incident : elle précède son début.", "ended_at")
        if end > now + FUTURE_SLACK:
            raise IncidentError("Fin de l'incident : elle ne peut pas être dans le futur.", "ended_at")
        row.ended_at, row.closed_by, row.closing_note = end, actor.user_id, text or None
        minutes = max(0, int((end - row.started_at).total_seconds() // 60))
        record_global_event(session, actor.user_id, "incident.closed", {
            "incident": row.id, "site": row.site_id, "ended_at": end.isoformat(), "minutes": minutes}, now)
        session.commit()
        return minutes


def _names(session: Session, site_ids: Iterable[str]) -> dict[str, str]:
    ids = sorted(set(site_ids))
    if not ids:
        return {}
    return dict(session.execute(select(SiteRow.id, SiteRow.name).where(SiteRow.id.in_(ids))).tuples().all())


def list_incidents(ctx: EngineContext, actor: Actor, open_only: bool = False, site_id: str | None = None,
                   limit: int = 200) -> list[IncidentView]:
    """Incidents the actor may see, newest first: all (sees_every_site), those of his sites (anyone else)."""
    query = select(IncidentRow).order_by(IncidentRow.started_at.desc(), IncidentRow.id.desc()).limit(limit)
    if not sees_every_site(actor):
        query = query.where(IncidentRow.site_id.in_(sorted(actor.sites) or [""]))
    if open_only:
        query = query.where(IncidentRow.ended_at.is_(None))
    if site_id:
        query = query.where(IncidentRow.site_id == site_id)
    with ctx.read() as session:
        rows = list(session.execute(query).scalars())
        names = _names(session, (r.site_id for r in rows))
    return [_view(r, names.get(r.site_id, r.site_id)) for r in rows]


def get_incident(ctx: EngineContext, actor: Actor, incident_id: int) -> IncidentView:
    with ctx.read() as session:
        row = session.get(IncidentRow, incident_id)
        if row is None or not (sees_every_site(actor) or row.site_id in actor.sites):
            raise NotFound("Incident inconnu.")
        return _view(row, _names(session, [row.site_id]).get(row.site_id, row.site_id))


def open_incidents(ctx: EngineContext, actor: Actor) -> list[IncidentView]:
    """The open incidents a page's banner shows to `actor`: his sites' (all for administrators and radiologists).
    One query on the open-incident index."""
    if not (actor.sites or sees_every_site(actor)):
        return []
    return list_incidents(ctx, actor, open_only=True, limit=20)


def has_recent_incident(ctx: EngineContext, site_id: str | None) -> bool:
    """Whether an incident of the site started in the last month: its steps may then be back-entered (the task
    page links to the back-entry page; the back-entry itself checks the moment)."""
    if not site_id:
        return False
    with ctx.read() as session:
        return session.execute(select(IncidentRow.id).where(
            IncidentRow.site_id == site_id, IncidentRow.started_at >= ctx.clock.now() - MAX_AGE).limit(1)).first() \
            is not None


def incident_covering(session: Session, site_id: str, moment: datetime, now: datetime) -> int | None:
    """The id of an incident of `site_id` whose period (start to end, or to now while open) holds `moment`."""
    if moment > now:
        return None
    found = session.execute(select(IncidentRow.id).where(
        IncidentRow.site_id == site_id, IncidentRow.started_at <= moment,
        or_(IncidentRow.ended_at.is_(None), IncidentRow.ended_at >= moment),
    ).order_by(IncidentRow.started_at).limit(1)).first()
    return int(found[0]) if found is not None else None


def incident_figures(session: Session, since: datetime, until: datetime, site_id: str | None,
                     territory_id: str | None = None, now: datetime | None = None) -> dict[str, int]:
    """Declared incidents that overlap [since, until) and their minutes within it (an open one up to `until`), for
    the indicators (engine.services.indicators_extra): of one site, of a territory's sites, or of all. An open
    incident counts up to `now` when given."""
    query = select(IncidentRow.started_at, IncidentRow.ended_at).where(
        IncidentRow.started_at < until, or_(IncidentRow.ended_at.is_(None), IncidentRow.ended_at >= since))
    if site_id is not None:
        query = query.where(IncidentRow.site_id == site_id)
    if territory_id is not None:
        query = query.where(IncidentRow.site_id.in_(select(SiteRow.id).where(SiteRow.territory_id == territory_id)))
    rows = session.execute(query).all()
    minutes = sum(max(0, int((min(end or now or until, until) - max(start, since)).total_seconds() // 60))
                  for start, end in rows)
    return {"downtime_incidents": len(rows), "downtime_minutes": minutes}
