"""Administration of territories, sites and conventions (the routing directory). Administrators only."""

from __future__ import annotations

from sqlalchemy import select

from engine.domain.actors import Actor
from engine.errors import Forbidden
from engine.services.context import EngineContext
from engine.store import audit
from engine.store.directory_models import (
    ConventionRadiologist,
    ConventionRow,
    SiteRow,
    TerritoryNeighbour,
    TerritoryRow,
    User,
)


class DirectoryError(ValueError):
    """Refused with a French message."""


def _require_admin(actor: Actor) -> None:
    if not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur peut modifier l'annuaire.")


def create_territory(ctx: EngineContext, actor: Actor, territory_id: str, name: str, department: str, region: str,
                     neighbours: tuple[str, ...] = ()) -> None:
    _require_admin(actor)
    with ctx.write() as session:
        if session.get(TerritoryRow, territory_id) is not None:
            raise DirectoryError(f"Le territoire « {territory_id} » existe déjà.")
        session.add(TerritoryRow(id=territory_id, name=name, department=department, region=region))
        session.flush()
        for other in neighbours:
            if session.get(TerritoryRow, other) is None:
                raise DirectoryError(f"Territoire voisin inconnu : {other}.")
            session.add(TerritoryNeighbour(territory_id=territory_id, neighbour_id=other))
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "territory.created", None, {
            "territory": territory_id, "neighbours": list(neighbours)})], ctx.clock.now())
        session.commit()


def create_site(ctx: EngineContext, actor: Actor, site_id: str, name: str, territory_id: str) -> None:
    _require_admin(actor)
    with ctx.write() as session:
        if session.get(SiteRow, site_id) is not None:
            raise DirectoryError(f"Le site « {site_id} » existe déjà.")
        if session.get(TerritoryRow, territory_id) is None:
            raise DirectoryError(f"Territoire inconnu : {territory_id}.")
        session.add(SiteRow(id=site_id, name=name, territory_id=territory_id))
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "site.created", None, {
            "site": site_id, "territory": territory_id})], ctx.clock.now())
        session.commit()


def create_convention(ctx: EngineContext, actor: Actor, site_id: str, radiologists: tuple[str, ...], *,
                      cme_validated: bool, approved_by_g4: bool, approved_by_council: bool,
                      external_allowed: bool = False, tiers: str = "1,2,3") -> int:
    _require_admin(actor)
    with ctx.write() as session:
        if session.get(SiteRow, site_id) is None:
            raise DirectoryError(f"Site inconnu : {site_id}.")
        known = set(session.execute(select(User.username).where(User.username.in_(radiologists))).scalars())
        if set(radiologists) - known:
            raise DirectoryError(f"Radiologue inconnu : {', '.join(sorted(set(radiologists) - known))}.")
        row = ConventionRow(site_id=site_id, cme_validated=cme_validated, approved_by_g4=approved_by_g4,
                            approved_by_council=approved_by_council, external_allowed=external_allowed, tiers=tiers)
        session.add(row)
        session.flush()
        session.add_all([ConventionRadiologist(convention_id=row.id, username=r) for r in sorted(set(radiologists))])
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "convention.created", None, {
            "site": site_id, "radiologists": sorted(set(radiologists)), "active":
                cme_validated and approved_by_g4 and approved_by_council})], ctx.clock.now())
        session.commit()
        return row.id


def list_sites(ctx: EngineContext) -> list[tuple[str, str, str]]:
    with ctx.read() as session:
        return [(s.id, s.name, s.territory_id) for s in session.execute(select(SiteRow).order_by(SiteRow.id)).scalars()]


def list_territories(ctx: EngineContext) -> list[tuple[str, str, str, str]]:
    with ctx.read() as session:
        return [(t.id, t.name, t.department, t.region)
                for t in session.execute(select(TerritoryRow).order_by(TerritoryRow.id)).scalars()]


def mark_totp_enrolled(ctx: EngineContext, actor: Actor, username: str) -> str:
    """Demo accounts only: declare the second factor enrolled (its secret is printed to the newcomer)."""
    _require_admin(actor)
    with ctx.write() as session:
        user = session.get(User, username)
        if user is None:
            raise DirectoryError(f"Compte inconnu : {username}.")
        user.totp_enrolled_at = ctx.clock.now()
        secret = user.totp_secret
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "user.totp_preenrolled", None,
                                                       {"username": username})], ctx.clock.now())
        session.commit()
        return secret
