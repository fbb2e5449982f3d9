"""Who may serve a site: the tele-experts a site may ask (CH-3.4, CH-4.2, with the credentials of CH-3.1 and
CH-3.2), and whether a site may have an active convention at all (CH-6.1: one person responsible for the medical
organisation of each site, the "médecin responsable du site").

Dates are French calendar dates (Europe/Paris), as on the certificates the credentials come from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.charter import enforces
from engine.domain.credentials import credential_problems
from engine.domain.data_checks import paris_date
from engine.domain.routing import Radiologist, active_conventions
from engine.ports import Directory
from engine.services.charter_screen import screened_out
from engine.services.context import EngineContext
from engine.store.directory_models import ConventionRow, SiteRow, User, UserRole, UserSite
from engine.store.sql_directory import SqlDirectory

MEDICAL_LEAD_ROLE = "site_lead"
EXPERT_FIELD = "expert_id"


@dataclass(frozen=True)
class Expert:
    user_id: str
    name: str


# --- tele-experts -----------------------------------------------------------------------------------------------

def _directory(ctx: EngineContext, directory: Directory | None) -> Directory:
    """The directory given, else the context's (the one the engine's operations and gates read), else the
    database's."""
    if directory is not None:
        return directory
    return ctx.directory if ctx.directory is not None else SqlDirectory(ctx.reader)


def _bound(directory: Directory, site_id: str | None) -> frozenset[str]:
    """Radiologists bound to the site by an active convention (CH-3.4)."""
    if not site_id:
        return frozenset()
    members: set[str] = set()
    for convention in active_conventions(site_id, directory.conventions(site_id)):
        members |= convention.radiologist_ids
    return frozenset(members)


@enforces("CH-3.4", "CH-4.2.1")
def eligible_experts(ctx: EngineContext, site_id: str | None, *, exclude: Iterable[str] = (),
                     directory: Directory | None = None) -> list[Expert]:
    """The tele-experts this site may ask today: radiologists (or tele-experts) with an active account, bound to the
    site by an active convention, whose credentials are valid at today's Paris date; sorted by name. For the
    choices of the expert forms."""
    found = _directory(ctx, directory)
    today = paris_date(ctx.clock.now())
    excluded = set(exclude)
    bound = _bound(found, site_id) - excluded
    excluded |= set(screened_out(ctx, site_id, bound))  # the charter pack of the site (2025: the share cap)
    experts = []
    for user_id in sorted(bound - excluded):
        person = found.radiologist(user_id)
        if person is not None and not credential_problems(person.credentials, today):
            experts.append(Expert(person.user_id, person.name))
    return sorted(experts, key=lambda e: (e.name, e.user_id))


def _expert_problem(person: Radiologist | None, expert_id: str, bound: frozenset[str], ctx: EngineContext) -> str:
    if person is None:
        return (f"« {expert_id} » n'est pas un radiologue ou un télé-expert actif de la plateforme : choisissez un "
                "télé-expert parmi les radiologues liés au site par une convention active.")
    if person.user_id not in bound:
        return (f"{person.name} n'est lié au site demandeur par aucune convention active : choisissez un "
                "télé-expert parmi les radiologues conventionnés du site.")
    problems = credential_problems(person.credentials, paris_date(ctx.clock.now()))
    if problems:
        return f"{person.name} ne peut pas être sollicité : {problems[0]}"
    return ""


def _pack_problem(ctx: EngineContext, site_id: str | None, person: Radiologist) -> str:
    reason = screened_out(ctx, site_id, [person.user_id]).get(person.user_id)
    return f"{person.name} ne peut pas être sollicité : {reason}." if reason else ""


@enforces("CH-3.1", "CH-3.4", "CH-4.2.1")
def check_expert(ctx: EngineContext, site_id: str | None, data: Mapping[str, Any], case: Mapping[str, Any],
                 directory: Directory | None = None) -> dict[str, str]:
    """TaskCheck (engine.services.task_checks) of a form naming the tele-expert (``expert_id``): refused unless he
    is bound to the requesting site by an active convention and his credentials are valid at the Paris date;
    never the local radiologist who asks."""
    expert_id = data.get(EXPERT_FIELD)
    if not isinstance(expert_id, str) or not expert_id.strip():
        return {}  # the form's schema reports a missing expert
    expert_id = expert_id.strip()
    asking = case.get("local_radiologist_id")
    if isinstance(asking, str) and asking == expert_id:
        return {EXPERT_FIELD: "Vous ne pouvez pas être votre propre télé-expert : choisissez un autre radiologue."}
    found = _directory(ctx, directory)
    person = found.radiologist(expert_id)
    problem = _expert_problem(person, expert_id, _bound(found, site_id), ctx)
    if not problem and person is not None:
        problem = _pack_problem(ctx, site_id, person)  # CH-3.5: the 2025 pack's share cap and exclusivity
    return {EXPERT_FIELD: problem} if problem else {}


# --- medical lead of a site -------------------------------------------------------------------------------------

def sites_without_medical_lead(session: Session, site_ids: Iterable[str]) -> list[str]:
    """Of these sites, those where no active account holds the site lead role (CH-6.1), sorted."""
    wanted = set(site_ids)
    if not wanted:
        return []
    led = set(session.execute(
        select(UserSite.site_id).join(UserRole, UserRole.username == UserSite.username)
        .join(User, User.username == UserSite.username)
        .where(UserSite.site_id.in_(wanted), UserRole.role == MEDICAL_LEAD_ROLE, User.active.is_(True))).scalars())
    return sorted(wanted - led)


def sites_with_active_convention(session: Session, site_ids: Iterable[str]) -> set[str]:
    wanted = set(site_ids)
    if not wanted:
        return set()
    return set(session.execute(select(ConventionRow.site_id).where(
        ConventionRow.site_id.in_(wanted), ConventionRow.cme_validated.is_(True),
        ConventionRow.approved_by_g4.is_(True), ConventionRow.approved_by_council.is_(True))).scalars())


@enforces("CH-3.4", "CH-6.1")
def medical_lead_refusal(session: Session, site_id: str) -> str | None:
    """Why a convention of this site cannot be active (no medical lead), in French; None when it may."""
    if not sites_without_medical_lead(session, [site_id]):
        return None
    return (f"Le site « {_site_name(session, site_id)} » n'a pas de médecin responsable de l'organisation "
            "médicale : attribuez le rôle "
            "« Médecin responsable du site » à un médecin de ce site avant d'activer la convention.")


@enforces("CH-6.1")
def lead_loss_refusal(session: Session, site_ids: Iterable[str]) -> str | None:
    """After a change of accounts (flushed, not committed): why it cannot stand when it leaves a site that has an
    active convention without a medical lead; None when every such site still has one."""
    orphaned = sites_without_medical_lead(session, sites_with_active_convention(session, site_ids))
    if not orphaned:
        return None
    names = ", ".join(sorted(_site_name(session, s) for s in orphaned))
    return (f"Ce changement laisserait sans médecin responsable un site sous convention active ({names}) : "
            "désignez d'abord un autre médecin responsable du site.")


def _site_name(session: Session, site_id: str) -> str:
    site = session.get(SiteRow, site_id)
    return site.name if site is not None else site_id


def medical_leads(ctx: EngineContext) -> dict[str, tuple[str, ...]]:
    """Each site's medical leads (display names of active accounts with the site lead role), for administrators."""
    leads: dict[str, list[str]] = {}
    with ctx.read() as session:
        rows = session.execute(
            select(UserSite.site_id, User.display_name).join(UserRole, UserRole.username == UserSite.username)
            .join(User, User.username == UserSite.username)
            .where(UserRole.role == MEDICAL_LEAD_ROLE, User.active.is_(True))
            .order_by(UserSite.site_id, User.display_name)).tuples()
        for site_id, name in rows:
            leads.setdefault(site_id, []).append(name)
    return {site_id: tuple(names) for site_id, names in leads.items()}
