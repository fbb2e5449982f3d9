"""Periodic site visits (CH-5.6): each radiologist visits the sites he serves under an active convention to check
their installations and the knowledge of his protocols; each visit is recorded (date, findings, protocols
reviewed) by the radiologist himself, for himself only, or by an administrator, in one audited transaction.

The next visit is due one convention interval (`visit_interval_days`, 365 days by default) after the last one; a
radiologist bound to a site who never visited it is due at once (engine.domain.indicators.next_site_visit). Overdue
visits are listed for the indicators dashboard (`overdue_visits`) and notified to the radiologist and the site's
medical lead by a daily job (`notify_overdue_visits`), once a week at most per overdue visit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.data_checks import paris_date
from engine.domain.indicators import next_site_visit, site_visit_overdue
from engine.errors import Forbidden
from engine.services.audit import record_global_event
from engine.services.context import EngineContext
from engine.services.notification_contacts import CHANNELS, SITE_VISIT_OVERDUE
from engine.services.notifications import CaseFacts, Event, holders, write_rows
from engine.services.protocols import protocol_catalogue
from engine.services.site_quality_access import (
    MAX_TEXT,
    Binding,
    SiteQualityError,
    bindings,
    clean_text,
    is_admin,
    is_radiologist,
    is_site_lead,
    names_of,
    parse_day,
    require_any_role,
    site_names,
)
from engine.store.directory_models import NotificationOutbox, SiteRow, User
from engine.store.site_quality_models import SiteVisitRow

NOTIFY_EVERY = timedelta(days=7)  # an overdue visit is notified again at most once a week
MAX_PROTOCOLS = 50


@dataclass(frozen=True)
class VisitView:
    id: int
    site_id: str
    site_name: str
    radiologist: str
    radiologist_name: str
    visited_on: date
    findings: str
    protocols_reviewed: tuple[str, ...]
    protocol_labels: tuple[str, ...]
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True)
class VisitDue:
    """Where a radiologist bound to a site stands: his last visit, the next one due and whether it is late."""

    site_id: str
    site_name: str
    radiologist: str
    radiologist_name: str
    interval_days: int
    last_visit: date | None
    next_due: date
    overdue: bool
    days_late: int


@enforces("CH-5.6")
def record_visit(ctx: EngineContext, actor: Actor, site_id: str, radiologist: str, visited_on: object,
                 findings: object, protocols_reviewed: Iterable[str]) -> int:
    """Record a radiologist's visit to a site he is bound to (his own, or anyone's for an administrator)."""
    radiologist = str(radiologist or "").strip() or actor.user_id
    if not is_admin(actor):
        if not is_radiologist(actor):
            raise Forbidden("Seuls les radiologues et les administrateurs enregistrent les visites de site.")
        if radiologist != actor.user_id:
            raise Forbidden("Un radiologue n'enregistre que ses propres visites.")
    today = paris_date(ctx.clock.now())
    day = parse_day(visited_on, "Date de la visite", "visited_on", today)
    text = clean_text(findings, "Constats de la visite", "findings", limit=MAX_TEXT)
    catalogue = protocol_catalogue(ctx)
    chosen = list(dict.fromkeys(str(p).strip() for p in protocols_reviewed if str(p).strip()))
    if not chosen:
        raise SiteQualityError("Protocoles revus : choisissez au moins un protocole vu avec l'équipe du site.",
                               "protocols")
    unknown = [p for p in chosen if catalogue.get(p) is None]
    if unknown or len(chosen) > MAX_PROTOCOLS:
        raise SiteQualityError("Protocoles revus : protocole inconnu du catalogue : "
                               f"{', '.join(p[:64] for p in unknown[:5])}.", "protocols")
    now = ctx.clock.now()
    with ctx.write() as session:
        if session.get(SiteRow, site_id) is None:
            raise SiteQualityError(f"Site inconnu : {str(site_id)[:64]}.", "site_id")
        if session.get(User, radiologist) is None:
            raise SiteQualityError(f"Radiologue inconnu : {radiologist[:64]}.", "radiologist")
        if (site_id, radiologist) not in bindings(session, today, site_id=site_id, radiologist=radiologist):
            raise SiteQualityError("Ce radiologue n'est lié à ce site par aucune convention active : "
                                   "une visite ne s'enregistre que pour un site qu'il dessert.", "site_id")
        row = SiteVisitRow(site_id=site_id, radiologist=radiologist, visited_on=day, findings=text,
                           protocols_reviewed=json.dumps(chosen), recorded_by=actor.user_id, recorded_at=now)
        session.add(row)
        session.flush()
        record_global_event(session, actor.user_id, "site_visit.recorded", {
            "visit": row.id, "site": site_id, "radiologist": radiologist, "visited_on": day.isoformat(),
            "protocols": chosen}, now)
        session.commit()
        return row.id


def list_visits(ctx: EngineContext, actor: Actor, site_id: str | None = None,
                radiologist: str | None = None, limit: int = 500) -> list[VisitView]:
    """The visits the actor may see, newest first: all (administrators), those at the sites he leads (a site's
    medical lead), his own (a radiologist)."""
    require_any_role(actor)
    query = select(SiteVisitRow).order_by(SiteVisitRow.visited_on.desc(), SiteVisitRow.id.desc()).limit(limit)
    if not is_admin(actor):
        allowed = [SiteVisitRow.radiologist == actor.user_id] if is_radiologist(actor) else []
        if is_site_lead(actor):
            allowed.append(SiteVisitRow.site_id.in_(sorted(actor.sites) or [""]))
        query = query.where(or_(*allowed))
    if site_id:
        query = query.where(SiteVisitRow.site_id == site_id)
    if radiologist:
        query = query.where(SiteVisitRow.radiologist == radiologist)
    catalogue = protocol_catalogue(ctx)
    with ctx.read() as session:
        rows = session.execute(query).scalars().all()
        people = names_of(session, [r.radiologist for r in rows])
        places = site_names(session, [r.site_id for r in rows])
    views = []
    for row in rows:
        protocols = tuple(p for p in json.loads(row.protocols_reviewed or "[]") if isinstance(p, str))
        labels = tuple((catalogue.get(p).label if catalogue.get(p) is not None else p)  # type: ignore[union-attr]
                       for p in protocols)
        views.append(VisitView(row.id, row.site_id, places.get(row.site_id, row.site_id), row.radiologist,
                               people.get(row.radiologist, row.radiologist), row.visited_on, row.findings,
                               protocols, labels, row.recorded_by, row.recorded_at))
    return views


def _status(session: Session, today: date, found: dict[tuple[str, str], Binding]) -> list[VisitDue]:
    if not found:
        return []
    last_visits = dict(((site, user), day) for site, user, day in session.execute(
        select(SiteVisitRow.site_id, SiteVisitRow.radiologist, func.max(SiteVisitRow.visited_on))
        .where(or_(*(and_(SiteVisitRow.site_id == site, SiteVisitRow.radiologist == user)
                     for site, user in sorted(found))))
        .group_by(SiteVisitRow.site_id, SiteVisitRow.radiologist)).tuples())
    people = names_of(session, [user for _site, user in found])
    places = site_names(session, [site for site, _user in found])
    result = []
    for (site, user), binding in sorted(found.items()):
        last = last_visits.get((site, user))
        interval = timedelta(days=binding.interval_days)
        due = next_site_visit(last, today, interval)
        late = site_visit_overdue(last, today, interval)
        result.append(VisitDue(site, places.get(site, site), user, people.get(user, user), binding.interval_days,
                               last, due, late, max((today - due).days, 0) if late else 0))
    return sorted(result, key=lambda v: (not v.overdue, v.next_due, v.site_name, v.radiologist_name))


@enforces("CH-5.6")
def overdue_visits(ctx: EngineContext, today: date, site_id: str | None = None,
                   radiologist: str | None = None) -> list[VisitDue]:
    """The visits overdue on `today` (a Paris calendar date): radiologists bound to a site by an active convention
    whose last visit is older than the convention's interval, or who never visited it; most overdue first. The
    caller decides who may see them (the indicators dashboard: administrators, a site lead for his site)."""
    with ctx.read() as session:
        return [v for v in _status(session, today, bindings(session, today, site_id=site_id, radiologist=radiologist))
                if v.overdue]


@enforces("CH-5.6")
def visit_schedule(ctx: EngineContext, actor: Actor, today: date | None = None) -> list[VisitDue]:
    """Every visit due that the actor may see (late ones first): his own bindings (a radiologist), the bindings of
    the sites he leads (a site's medical lead), all (administrators)."""
    require_any_role(actor)
    today = today or paris_date(ctx.clock.now())
    with ctx.read() as session:
        found = bindings(session, today)
        if not is_admin(actor):
            found = {key: b for key, b in found.items()
                     if (is_radiologist(actor) and key[1] == actor.user_id)
                     or (is_site_lead(actor) and key[0] in actor.sites)}
        return _status(session, today, found)


def bound_sites(ctx: EngineContext, radiologist: str) -> list[tuple[str, str]]:
    """(site id, name) of the sites a radiologist is bound to, for his visit form."""
    today = paris_date(ctx.clock.now())
    with ctx.read() as session:
        sites = sorted({site for site, _user in bindings(session, today, radiologist=radiologist)})
        names = site_names(session, sites)
    return [(site, names.get(site, site)) for site in sites]


def bound_radiologists(ctx: EngineContext, actor: Actor) -> list[tuple[str, str]]:
    """(username, name) of the radiologists bound to any site, for an administrator's visit form."""
    if not is_admin(actor):
        raise Forbidden("Réservé aux administrateurs.")
    with ctx.read() as session:
        users = sorted({user for _site, user in bindings(session, paris_date(ctx.clock.now()))})
        names = names_of(session, users)
    return sorted(((u, names.get(u, u)) for u in users), key=lambda item: item[1])


@enforces("CH-5.6")
def notify_overdue_visits(ctx: EngineContext, channels: Sequence[str] = CHANNELS,
                          today: date | None = None) -> int:
    """The daily job: tell the radiologist and the site's medical lead of each overdue visit, at most once in
    `NOTIFY_EVERY` (no clinical data: the site and the visit due). Returns how many outbox rows were written."""
    now = ctx.clock.now()
    today = today or paris_date(now)
    channels = tuple(c for c in channels if c in CHANNELS)
    if not channels:
        return 0
    written = 0
    with ctx.write() as session:
        for visit in _status(session, today, bindings(session, today)):
            if not visit.overdue:
                continue
            prefix = f"site_visit:{visit.site_id}:{visit.radiologist}:"
            recent = session.execute(select(NotificationOutbox.id).where(
                NotificationOutbox.event == SITE_VISIT_OVERDUE,
                NotificationOutbox.event_key.startswith(prefix, autoescape=True),
                NotificationOutbox.created_at > now - NOTIFY_EVERY).limit(1)).first()
            if recent is not None:
                continue
            people = [visit.radiologist, *holders(session, ["site_lead"], visit.site_id)]
            written += write_rows(session, CaseFacts(None, visit.site_id, None), [Event(
                SITE_VISIT_OVERDUE, prefix + today.isoformat(), tuple(people))], channels, now)
        session.commit()
    return written
