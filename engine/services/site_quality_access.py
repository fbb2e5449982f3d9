"""Who may see and record the site quality records (CH-5.6, CH-5.2), and which radiologist is bound to which site.

A radiologist is bound to a site while an active convention of the site names him (CH-3.4, CH-6.1): he visits the
site periodically, at the interval of that convention (the shortest if several), and validates its imaging devices.
Administrators see every site; a site's medical lead sees his sites; a radiologist sees the sites he is bound to
and his own records; nobody else sees anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.domain.data_checks import paris_date
from engine.errors import Forbidden, TeleradError
from engine.services.context import EngineContext
from engine.services.directory_conventions import convention_from_row
from engine.store.convention_models import document_kinds
from engine.store.directory_models import ConventionRadiologist, ConventionRow, SiteRow, User

DEFAULT_VISIT_INTERVAL_DAYS = 365
RADIOLOGIST_ROLES = frozenset({"radiologist", "tele_expert", "local_radiologist"})
SITE_LEAD = "site_lead"
ADMINISTRATOR = "administrator"
MAX_TEXT = 4000
MAX_LINE = 200


class SiteQualityError(TeleradError):
    """Refused with a French message; `field` names the form field at fault, if one is."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def is_admin(actor: Actor) -> bool:
    return actor.is_system or ADMINISTRATOR in actor.roles


def is_radiologist(actor: Actor) -> bool:
    return bool(RADIOLOGIST_ROLES & actor.roles)


def is_site_lead(actor: Actor) -> bool:
    return SITE_LEAD in actor.roles


def require_any_role(actor: Actor) -> None:
    """Administrators, site medical leads and radiologists only."""
    if not (is_admin(actor) or is_site_lead(actor) or is_radiologist(actor)):
        raise Forbidden("Ces informations sont réservées aux radiologues, aux médecins responsables de site et "
                        "aux administrateurs.")


@dataclass(frozen=True)
class Binding:
    site_id: str
    radiologist: str
    interval_days: int


def bindings(session: Session, today: date, site_id: str | None = None, radiologist: str | None = None) -> dict[
        tuple[str, str], Binding]:
    """(site, radiologist) -> the binding, from the conventions in force `today` (approved, complete or flagged
    legacy_incomplete, not expired: ConventionSummary.routes_cases, the same as routing): the shortest visit
    interval (`visit_interval_days`, 365 days by default) of those of the site that name him."""
    query = select(ConventionRow).order_by(ConventionRow.id)
    if site_id is not None:
        query = query.where(ConventionRow.site_id == site_id)
    rows = session.execute(query).scalars().all()
    members: dict[int, list[str]] = {}
    if rows:
        for convention_id, username in session.execute(select(
                ConventionRadiologist.convention_id, ConventionRadiologist.username).where(
                ConventionRadiologist.convention_id.in_([row.id for row in rows]))).tuples():
            members.setdefault(convention_id, []).append(username)
    documents = document_kinds(session, [row.id for row in rows])
    found: dict[tuple[str, str], Binding] = {}
    for row in rows:
        names = sorted(members.get(row.id, ()))
        summary = convention_from_row(row, names, documents.get(row.id, frozenset()), today)
        if not summary.routes_cases:
            continue
        interval = summary.visit_interval_days if summary.visit_interval_days > 0 else DEFAULT_VISIT_INTERVAL_DAYS
        for username in names:
            if radiologist is not None and username != radiologist:
                continue
            key = (row.site_id, username)
            known = found.get(key)
            if known is None or interval < known.interval_days:
                found[key] = Binding(row.site_id, username, interval)
    return found


def visible_sites(session: Session, actor: Actor, today: date) -> set[str] | None:
    """The sites whose records the actor sees: None for every site (administrators)."""
    if is_admin(actor):
        return None
    sites: set[str] = set(actor.sites) if is_site_lead(actor) else set()
    if is_radiologist(actor):
        sites |= {site for site, _user in bindings(session, today, radiologist=actor.user_id)}
    return sites


def require_site_visible(session: Session, actor: Actor, site_id: str, today: date) -> None:
    """NotFound-like refusal for an unknown site, Forbidden for a site the actor may not see."""
    if session.get(SiteRow, site_id) is None:
        raise SiteQualityError(f"Site inconnu : {site_id[:64]}.", "site_id")
    sites = visible_sites(session, actor, today)
    if sites is not None and site_id not in sites:
        raise Forbidden("Ce site n'est pas l'un des vôtres.")


def names_of(session: Session, usernames: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(usernames))
    if not wanted:
        return {}
    return dict(session.execute(select(User.username, User.display_name).where(
        User.username.in_(wanted))).tuples().all())


def site_names(session: Session, site_ids: Iterable[str] | None = None) -> dict[str, str]:
    query = select(SiteRow.id, SiteRow.name)
    if site_ids is not None:
        query = query.where(SiteRow.id.in_(sorted(set(site_ids))))
    return dict(session.execute(query).tuples().all())


def parse_day(value: object, label: str, field: str, today: date) -> date:
    """A calendar date typed as YYYY-MM-DD (a date input), not after today."""
    if isinstance(value, date):
        day = value
    else:
        try:
            day = date.fromisoformat(str(value or "").strip())
        except ValueError:
            raise SiteQualityError(f"{label} : indiquez une date valide (jj/mm/aaaa).", field) from None
    if day > today:
        raise SiteQualityError(f"{label} : la date ne peut pas être dans le futur.", field)
    if day.year < 1990:
        raise SiteQualityError(f"{label} : la date est trop ancienne.", field)
    return day


def clean_text(value: object, label: str, field: str, *, required: bool = True, limit: int = MAX_LINE) -> str:
    text = str(value or "").strip()
    if required and not text:
        raise SiteQualityError(f"{label} : ce champ est obligatoire.", field)
    if len(text) > limit:
        raise SiteQualityError(f"{label} : {limit} caractères au plus.", field)
    if any(ord(c) < 32 and c not in "\n\r\t" for c in text):
        raise SiteQualityError(f"{label} : caractères de contrôle refusés.", field)
    return text


def check_site_visible(ctx: EngineContext, actor: Actor, site_id: str) -> None:
    """For a page filtered by site: Forbidden unless the actor may see that site's records."""
    require_any_role(actor)
    with ctx.read() as session:
        require_site_visible(session, actor, site_id, paris_date(ctx.clock.now()))
