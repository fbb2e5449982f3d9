"""Administration of territories, sites and conventions (the routing directory), and of what an account may
do and where: roles, sites, radiologist credentials, active flag (CH-3.1, CH-3.2, CH-3.4, CH-6.1).
Administrators only; every change is one transaction recorded in the global audit chain. What administrators
may enter is checked in directory_checks and account_rules (each check returns the refusal, raised here)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.domain.account_roles import ACCOUNT_ROLES
from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.credentials import RadiologistCredentials
from engine.domain.data_checks import paris_date
from engine.errors import Forbidden
from engine.services.account_rules import (
    RADIOLOGIST_ROLES,
    lock_active_administrators,
    roles_refusal,
    rpps_refusal,
    unknown_sites_refusal,
    unknown_territory_refusal,
)
from engine.services.accounts_totp import unsealed
from engine.services.context import EngineContext
from engine.services.directory_checks import identifier_refusal, members_refusal, text_refusal
from engine.services.directory_conventions import activation_refusal
from engine.services.eligibility import lead_loss_refusal, medical_lead_refusal
from engine.store import audit
from engine.store.directory_models import (
    ConventionRadiologist,
    ConventionRow,
    SiteRow,
    TerritoryNeighbour,
    TerritoryRow,
    User,
    UserRole,
    UserSite,
)

CONVENTION_TIERS = (1, 2, 3)  # tier 4 (external company) is the convention's external_allowed flag


@dataclass(frozen=True)
class UserSummary:
    """An account as administrators see it; never its password hash or TOTP secret."""

    username: str
    display_name: str
    roles: tuple[str, ...]
    sites: tuple[str, ...]
    active: bool
    locked_until: datetime | None  # set only while the lock lasts
    failed_logins: int
    totp_enrolled: bool
    credentials: RadiologistCredentials
    territory_id: str | None
    external_company: str | None

    @property
    def is_radiologist(self) -> bool:
        return bool(RADIOLOGIST_ROLES.intersection(self.roles))


class DirectoryError(ValueError):
    """Refused with a French message."""


def _require_admin(actor: Actor) -> None:
    if not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur peut modifier l'annuaire.")


def create_territory(ctx: EngineContext, actor: Actor, territory_id: str, name: str, department: str, region: str,
                     neighbours: tuple[str, ...] = ()) -> None:
    _require_admin(actor)
    territory_id, name, department, region = territory_id.strip(), name.strip(), department.strip(), region.strip()
    _refuse(identifier_refusal(territory_id, "du territoire") or text_refusal(name, "le nom du territoire", 200)
            or text_refusal(department, "le département (par exemple 29)", 8) or text_refusal(region, "la région", 64))
    if territory_id in neighbours:
        raise DirectoryError("Un territoire ne peut pas être son propre voisin.")
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
    site_id, name = site_id.strip(), name.strip()
    _refuse(identifier_refusal(site_id, "du site") or text_refusal(name, "le nom du site", 200))
    with ctx.write() as session:
        if session.get(SiteRow, site_id) is not None:
            raise DirectoryError(f"Le site « {site_id} » existe déjà.")
        _refuse(unknown_territory_refusal(session, territory_id))
        session.add(SiteRow(id=site_id, name=name, territory_id=territory_id))
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "site.created", None, {
            "site": site_id, "territory": territory_id})], ctx.clock.now())
        session.commit()


@enforces("CH-3.4", "CH-6.1")
def create_convention(ctx: EngineContext, actor: Actor, site_id: str, radiologists: tuple[str, ...], *,
                      cme_validated: bool, approved_by_g4: bool, approved_by_council: bool,
                      external_allowed: bool = False, tiers: str = "1,2,3") -> int:
    _require_admin(actor)
    tiers = _tiers_text(tiers)
    with ctx.write() as session:
        if session.get(SiteRow, site_id) is None:
            raise DirectoryError(f"Site inconnu : {site_id}.")
        _refuse(members_refusal(session, radiologists))
        if cme_validated and approved_by_g4 and approved_by_council:  # CH-6.1: only for a site with its medical lead
            _refuse(medical_lead_refusal(session, site_id))
        row = ConventionRow(site_id=site_id, cme_validated=cme_validated, approved_by_g4=approved_by_g4,
                            approved_by_council=approved_by_council, external_allowed=external_allowed, tiers=tiers)
        session.add(row)
        session.flush()
        if cme_validated and approved_by_g4 and approved_by_council:  # never active without its content
            _refuse(activation_refusal(session, row, paris_date(ctx.clock.now())))
        session.add_all([ConventionRadiologist(convention_id=row.id, username=r) for r in sorted(set(radiologists))])
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "convention.created", None, {
            "convention": row.id, "site": site_id, "radiologists": sorted(set(radiologists)),
            "cme_validated": cme_validated, "approved_by_g4": approved_by_g4,
            "approved_by_council": approved_by_council, "external_allowed": external_allowed, "tiers": tiers,
            "active": cme_validated and approved_by_g4 and approved_by_council})], ctx.clock.now())
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
        secret = unsealed(ctx.keys, user.totp_secret)
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "user.totp_preenrolled", None,
                                                       {"username": username})], ctx.clock.now())
        session.commit()
        return secret


# --- reading (administrators) -----------------------------------------------------------------------------------

def territory_neighbours(ctx: EngineContext, actor: Actor) -> dict[str, tuple[str, ...]]:
    """Each territory's neighbours (the relation is symmetric, whichever side declared it)."""
    _require_admin(actor)
    neighbours: dict[str, set[str]] = {}
    with ctx.read() as session:
        for link in session.execute(select(TerritoryNeighbour)).scalars():
            neighbours.setdefault(link.territory_id, set()).add(link.neighbour_id)
            neighbours.setdefault(link.neighbour_id, set()).add(link.territory_id)
    return {territory: tuple(sorted(others)) for territory, others in neighbours.items()}


def list_users_with_roles(ctx: EngineContext, actor: Actor) -> list[UserSummary]:
    _require_admin(actor)
    now = ctx.clock.now()
    with ctx.read() as session:
        roles = _grouped(session.execute(select(UserRole.username, UserRole.role)).tuples())
        sites = _grouped(session.execute(select(UserSite.username, UserSite.site_id)).tuples())
        users = session.execute(select(User).order_by(User.username)).scalars().all()
        return [_summary(u, roles.get(u.username, ()), sites.get(u.username, ()), now) for u in users]


def user_summary(ctx: EngineContext, actor: Actor, username: str) -> UserSummary:
    _require_admin(actor)
    with ctx.read() as session:
        user = session.get(User, username)
        if user is None:
            raise DirectoryError(f"Compte inconnu : « {username} ».")
        roles = session.execute(select(UserRole.role).where(UserRole.username == username)).scalars().all()
        sites = session.execute(select(UserSite.site_id).where(UserSite.username == username)).scalars().all()
        return _summary(user, sorted(roles), sorted(sites), ctx.clock.now())


# --- changes (administrators) -----------------------------------------------------------------------------------

@enforces("CH-5.3")
def update_user_roles_sites(ctx: EngineContext, actor: Actor, username: str, roles: Collection[str],
                            sites: Collection[str]) -> bool:
    """Replace an account's roles and sites; False when nothing changed (then nothing is recorded)."""
    _require_admin(actor)
    role_set, site_set = frozenset(roles), frozenset(sites)
    _refuse(roles_refusal(role_set))
    with ctx.write() as session:
        admins = lock_active_administrators(session)
        user = _lock_user(session, username)
        before_roles = frozenset(session.execute(select(UserRole.role)
                                                 .where(UserRole.username == username)).scalars())
        before_sites = frozenset(session.execute(select(UserSite.site_id)
                                                 .where(UserSite.username == username)).scalars())
        if (before_roles, before_sites) == (role_set, site_set):
            return False
        _refuse(unknown_sites_refusal(session, site_set))
        if user.active and "administrator" in before_roles - role_set and admins == {username}:
            raise DirectoryError("Il doit rester au moins un administrateur actif : attribuez d'abord ce rôle "
                                 "à une autre personne.")
        session.execute(delete(UserRole).where(UserRole.username == username, UserRole.role.not_in(role_set)))
        session.execute(delete(UserSite).where(UserSite.username == username, UserSite.site_id.not_in(site_set)))
        session.add_all([UserRole(username=username, role=r) for r in sorted(role_set - before_roles)])
        session.add_all([UserSite(username=username, site_id=s) for s in sorted(site_set - before_sites)])
        user.end_sessions()  # the sessions opened with the old roles and sites end
        if "site_lead" in before_roles:  # the sites he stops leading keep a lead
            _check_leads_kept(session, before_sites if "site_lead" not in role_set else before_sites - site_set)
        _audit(session, ctx, actor, "user.access_changed", username=username, roles=sorted(role_set),
               sites=sorted(site_set), roles_added=sorted(role_set - before_roles),
               roles_removed=sorted(before_roles - role_set), sites_added=sorted(site_set - before_sites),
               sites_removed=sorted(before_sites - site_set))
        session.commit()
    return True


@enforces("CH-3.1", "CH-3.2")
def update_radiologist_credentials(ctx: EngineContext, actor: Actor, username: str, *, rpps: str | None,
                                   authorization_expires: date | None, insurance_expires: date | None,
                                   extraterritorial: bool, foreign_authorization_on_file: bool,
                                   foreign_insurance_on_file: bool, territory_id: str | None,
                                   external_company: str | None) -> bool:
    """What the organisation holds on file for a radiologist; False when nothing changed."""
    _require_admin(actor)
    rpps = (rpps or "").strip() or None
    external_company = (external_company or "").strip() or None
    _refuse(rpps_refusal(rpps))
    if external_company is not None and len(external_company) > 200:
        raise DirectoryError("Le nom de la société de téléradiologie ne doit pas dépasser 200 caractères.")
    wanted: dict[str, Any] = {
        "rpps": rpps, "authorization_expires": authorization_expires, "insurance_expires": insurance_expires,
        "extraterritorial": extraterritorial, "foreign_authorization_on_file": foreign_authorization_on_file,
        "foreign_insurance_on_file": foreign_insurance_on_file, "territory_id": territory_id or None,
        "external_company": external_company}
    with ctx.write() as session:
        user = _lock_user(session, username)
        _refuse(unknown_territory_refusal(session, wanted["territory_id"]))
        changes = {name: value for name, value in wanted.items() if getattr(user, name) != value}
        if not changes:
            return False
        for name, value in changes.items():
            setattr(user, name, value)
        _audit(session, ctx, actor, "user.credentials_changed", username=username, changes=changes)
        session.commit()
    return True


@enforces("CH-5.3")
def set_user_active(ctx: EngineContext, actor: Actor, username: str, active: bool) -> bool:
    """Deactivate (no more login, sessions and API tokens stop working) or reactivate an account."""
    _require_admin(actor)
    if not active and username == actor.user_id:
        raise DirectoryError("Vous ne pouvez pas désactiver votre propre compte.")
    with ctx.write() as session:
        admins = lock_active_administrators(session)
        user = _lock_user(session, username)
        if user.active == active:
            return False
        if not active and admins == {username}:
            raise DirectoryError("Il doit rester au moins un administrateur actif : ce compte est le dernier.")
        user.active = active
        user.end_sessions()
        if not active and session.get(UserRole, (username, "site_lead")) is not None:
            _check_leads_kept(session, session.execute(select(UserSite.site_id)
                                                       .where(UserSite.username == username)).scalars())
        _audit(session, ctx, actor, "user.reactivated" if active else "user.deactivated", username=username)
        session.commit()
    return True


@enforces("CH-3.4", "CH-6.1")
def update_convention(ctx: EngineContext, actor: Actor, convention_id: int, radiologists: Iterable[str], *,
                      cme_validated: bool, approved_by_g4: bool, approved_by_council: bool,
                      external_allowed: bool, tiers: str) -> bool:
    """Record a convention's approvals, members and tiers; False when nothing changed."""
    _require_admin(actor)
    tiers = _tiers_text(tiers)
    members = frozenset(radiologists)
    with ctx.write() as session:
        row = session.execute(select(ConventionRow).where(ConventionRow.id == convention_id)
                              .with_for_update()).scalar_one_or_none()
        if row is None:
            raise DirectoryError(f"Convention inconnue : n° {convention_id}.")
        before = frozenset(session.execute(select(ConventionRadiologist.username)
                                           .where(ConventionRadiologist.convention_id == convention_id)).scalars())
        wanted = {"cme_validated": cme_validated, "approved_by_g4": approved_by_g4,
                  "approved_by_council": approved_by_council, "external_allowed": external_allowed, "tiers": tiers}
        changes: dict[str, Any] = {name: value for name, value in wanted.items() if getattr(row, name) != value}
        if not changes and members == before:
            return False
        _refuse(members_refusal(session, members - before))
        was_active = row.cme_validated and row.approved_by_g4 and row.approved_by_council
        if not was_active and cme_validated and approved_by_g4 and approved_by_council:  # CH-6.1, as at creation
            _refuse(medical_lead_refusal(session, row.site_id))
            _refuse(activation_refusal(session, row, paris_date(ctx.clock.now())))  # with all its content
        if was_active and not (cme_validated and approved_by_g4 and approved_by_council):
            row.legacy_incomplete = False  # deactivated: active again only once complete
        for name, value in changes.items():
            setattr(row, name, value)
        session.execute(delete(ConventionRadiologist).where(ConventionRadiologist.convention_id == convention_id,
                                                            ConventionRadiologist.username.not_in(members)))
        session.add_all([ConventionRadiologist(convention_id=convention_id, username=r)
                         for r in sorted(members - before)])
        _audit(session, ctx, actor, "convention.updated", convention=convention_id, site=row.site_id,
               changes=changes, radiologists_added=sorted(members - before),
               radiologists_removed=sorted(before - members),
               active=cme_validated and approved_by_g4 and approved_by_council)
        session.commit()
    return True


# --- helpers ----------------------------------------------------------------------------------------------------

def _grouped(pairs: Iterable[tuple[Any, str]]) -> dict[Any, tuple[str, ...]]:
    groups: dict[Any, list[str]] = {}
    for key, value in pairs:
        groups.setdefault(key, []).append(value)
    return {key: tuple(sorted(values)) for key, values in groups.items()}


def _summary(user: User, roles: Iterable[str], sites: Iterable[str], now: datetime) -> UserSummary:
    locked = user.locked_until if user.locked_until is not None and user.locked_until > now else None
    return UserSummary(
        user.username, user.display_name, tuple(r for r in ACCOUNT_ROLES if r in set(roles)), tuple(sites), user.active,
        locked, user.failed_logins, user.totp_enrolled_at is not None,
        RadiologistCredentials(user.rpps, user.authorization_expires, user.insurance_expires, user.extraterritorial,
                               user.foreign_authorization_on_file, user.foreign_insurance_on_file),
        user.territory_id, user.external_company)


def _tiers_text(tiers: str) -> str:
    """"1,2,3" -> "1,2,3"; refuses anything but the proximity tiers 1 to 3 (tier 4 is external_allowed)."""
    parts = [t.strip() for t in tiers.split(",") if t.strip()]
    if not all(t.isdigit() and int(t) in CONVENTION_TIERS for t in parts):
        raise DirectoryError("Niveaux invalides : choisissez parmi 1 (territoire), 2 (territoires voisins) et "
                             "3 (département puis région) ; le niveau 4 (société externe) se règle à part.")
    return ",".join(str(t) for t in sorted({int(t) for t in parts}))


def _check_leads_kept(session: Session, sites: Iterable[str]) -> None:
    """CH-6.1: no change of accounts leaves a site under an active convention without its medical lead."""
    session.flush()
    _refuse(lead_loss_refusal(session, sites))


def _refuse(refusal: str | None) -> None:
    if refusal:
        raise DirectoryError(refusal)


def _lock_user(session: Session, username: str) -> User:
    user = session.execute(select(User).where(User.username == username).with_for_update()).scalar_one_or_none()
    if user is None:
        raise DirectoryError(f"Compte inconnu : « {username} ».")
    return user


def _audit(session: Session, ctx: EngineContext, actor: Actor, action: str, **detail: Any) -> None:
    audit.append_global(session, [audit.AuditEntry(actor.user_id, action, None, detail)], ctx.clock.now())
