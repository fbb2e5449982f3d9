"""Administrators switch an organisation (a territory, or a convention) to a charter pack from a date (CH-9.1):
audited on the global chain; new cases of its sites follow that pack from that date, running cases keep theirs
(engine.services.charter_routing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from engine.domain import charter_packs as packs
from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.data_checks import paris_date
from engine.errors import Forbidden
from engine.services.charter_screen import assignment_for_site
from engine.services.context import EngineContext
from engine.store import audit
from engine.store.charter_pack_models import CaseCharterPack, CharterPackAssignment
from engine.store.directory_models import ConventionRow, SiteRow, TerritoryRow

ASSIGNED_EVENT = "charter.pack_assigned"
MAX_CAP_PERCENT = 100


class PackError(ValueError):
    """Refused with a French message."""


@dataclass(frozen=True)
class AssignmentView:
    id: int
    organisation: str  # "territory:<id>" or "convention:<id>"
    organisation_label: str
    pack: str
    effective_from: date
    share_cap_percent: int | None
    over_cap_mode: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class Organisation:
    key: str  # "territory:<id>" or "convention:<id>"
    label: str


def _require_admin(actor: Actor) -> None:
    if not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur peut choisir la version de la charte d'une organisation.")


def organisations(ctx: EngineContext) -> list[Organisation]:
    """The territories and the conventions (by their site), for the choice of an organisation."""
    with ctx.read() as session:
        territories = session.execute(select(TerritoryRow.id, TerritoryRow.name).order_by(TerritoryRow.name)).all()
        conventions = session.execute(select(ConventionRow.id, SiteRow.name).join(
            SiteRow, SiteRow.id == ConventionRow.site_id).order_by(SiteRow.name, ConventionRow.id)).all()
    return ([Organisation(f"territory:{tid}", f"Territoire {name}") for tid, name in territories]
            + [Organisation(f"convention:{cid}", f"Convention n° {cid} ({name})") for cid, name in conventions])


def _parse_organisation(key: str) -> tuple[str | None, int | None]:
    kind, _, value = (key or "").partition(":")
    if kind == "territory" and value:
        return value, None
    if kind == "convention" and value.isascii() and value.isdecimal() and len(value) <= 12:
        return None, int(value)
    raise PackError("Choisissez une organisation : un territoire ou une convention.")


@enforces("CH-9.1")
def assign_pack(ctx: EngineContext, actor: Actor, organisation: str, pack: str, effective_from: date,
                share_cap_percent: int | None = None, over_cap_mode: str = packs.SKIP) -> int:
    """From `effective_from` (Paris date, today or later), the organisation's new cases follow `pack`. One
    transaction with its audit event; a date in the past is refused (the cases already started keep theirs)."""
    _require_admin(actor)
    chosen = packs.get_pack(pack) if pack in packs.PACKS else None
    if chosen is None:
        raise PackError(f"Version de charte inconnue : « {pack} » (versions : {', '.join(sorted(packs.PACKS))}).")
    if over_cap_mode not in packs.OVER_CAP_MODES:
        raise PackError("Au-delà du plafond, choisissez « écarter » ou « avertir seulement ».")
    if share_cap_percent is not None and not 1 <= share_cap_percent <= MAX_CAP_PERCENT:
        raise PackError("Le plafond de la part de téléradiologie est un pourcentage entre 1 et 100.")
    if effective_from < paris_date(ctx.clock.now()):
        raise PackError("La date d'application ne peut pas être passée : les dossiers déjà commencés gardent "
                        "leur version de la charte.")
    territory_id, convention_id = _parse_organisation(organisation)
    now = ctx.clock.now()
    with ctx.write() as session:
        if territory_id is not None and session.get(TerritoryRow, territory_id) is None:
            raise PackError(f"Territoire inconnu : {territory_id}.")
        if convention_id is not None and session.get(ConventionRow, convention_id) is None:
            raise PackError(f"Convention inconnue : n° {convention_id}.")
        row = CharterPackAssignment(territory_id=territory_id, convention_id=convention_id, pack=chosen.id,
                                    effective_from=effective_from, share_cap_percent=share_cap_percent,
                                    over_cap_mode=over_cap_mode, created_at=now, created_by=actor.user_id)
        session.add(row)
        session.flush()
        audit.append_global(session, [audit.AuditEntry(actor.user_id, ASSIGNED_EVENT, None, {
            "assignment": row.id, "organisation": organisation, "pack": chosen.id, "version": chosen.version,
            "from": effective_from.isoformat(), "share_cap_percent": share_cap_percent,
            "over_cap_mode": over_cap_mode})], now)
        session.commit()
        return row.id


def list_assignments(ctx: EngineContext) -> list[AssignmentView]:
    labels = {o.key: o.label for o in organisations(ctx)}
    with ctx.read() as session:
        rows = session.execute(select(CharterPackAssignment).order_by(
            CharterPackAssignment.effective_from.desc(), CharterPackAssignment.id.desc())).scalars().all()
    views = []
    for row in rows:
        key = f"territory:{row.territory_id}" if row.territory_id else f"convention:{row.convention_id}"
        views.append(AssignmentView(row.id, key, labels.get(key, key), row.pack, row.effective_from,
                                    row.share_cap_percent, row.over_cap_mode, row.created_at, row.created_by))
    return views


def pack_for_site(ctx: EngineContext, site_id: str, on: date | None = None) -> packs.PackAssignment:
    with ctx.read() as session:
        return assignment_for_site(session, site_id, on or paris_date(ctx.clock.now()))


def case_pack(ctx: EngineContext, case_id: int) -> str | None:
    """The pack a case follows (recorded when it started); None for a case from before packs."""
    with ctx.read() as session:
        row = session.get(CaseCharterPack, case_id)
        return row.pack if row is not None else None
