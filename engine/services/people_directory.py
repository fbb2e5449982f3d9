"""The people of the directory as a picker shows them (name, role, place) and the physicians of a site: what the
people search (engine.services.people_search) offers and what the attestation of presence is checked against
(engine.services.task_checks). It reads the directory only, never a task, so the form checks can use it."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from engine.domain.charter import enforces
from engine.services.context import EngineContext
from engine.store.directory_models import SiteRow, TerritoryRow, User, UserRole, UserSite

PHYSICIAN_ROLES = ("requester", "local_radiologist", "radiologist", "site_lead")
ROLE_WORDS = {"radiologist": "radiologue", "tele_expert": "télé-expert", "local_radiologist": "radiologue du site",
              "requester": "médecin demandeur", "site_lead": "médecin responsable du site"}
# The first role of a person that describes him, in this order.
_ROLE_ORDER = ("radiologist", "tele_expert", "local_radiologist", "site_lead", "requester")


@dataclass(frozen=True)
class PickablePerson:
    username: str
    display_name: str
    detail: str  # role and place, e.g. "radiologue, Morlaix"

    def as_json(self) -> dict[str, str]:
        return {"username": self.username, "display_name": self.display_name, "detail": self.detail}


def folded(text: str) -> str:
    """Lower case without accents or control characters: "Kerléo" and "KERLEO" match."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c) and unicodedata.category(c)[0] != "C"
                   ).casefold().strip()


PRESENCE_FIELD = "physician_name"


@enforces("CH-4.1.10")
def check_physician_present(ctx: EngineContext, site_id: str | None, data: Mapping[str, Any],
                            case: Mapping[str, Any]) -> dict[str, str]:
    """TaskCheck (engine.services.task_checks) of the attestation of presence: a name that designates an account
    of the directory (its name or its username) must be an active physician of the case's site. A name the
    directory does not know stays allowed: an emergency doctor may have no account; the charter asks for a name."""
    typed = data.get(PRESENCE_FIELD)
    if not isinstance(typed, str) or not folded(typed):
        return {}
    wanted = folded(typed)
    eligible = site_physicians(ctx, site_id)
    if any(wanted in (folded(p.display_name), folded(p.username)) for p in eligible):
        return {}
    with ctx.read() as session:
        accounts = session.execute(select(User.username, User.display_name)).tuples().all()
    named = next((name for username, name in accounts if wanted in (folded(name), folded(username))), None)
    if named is None:
        return {}
    return {PRESENCE_FIELD: f"{named} n'est pas un médecin actif de ce site : nommez le médecin physiquement "
                            "présent auprès du manipulateur (choisissez-le dans la liste ou tapez son nom)."}


@enforces("CH-4.1.10")
def site_physicians(ctx: EngineContext, site_id: str | None) -> list[PickablePerson]:
    if not site_id:
        return []
    with ctx.read() as session:
        usernames = session.execute(
            select(User.username).join(UserSite, UserSite.username == User.username)
            .join(UserRole, UserRole.username == User.username)
            .where(UserSite.site_id == site_id, User.active.is_(True), UserRole.role.in_(PHYSICIAN_ROLES))
            .distinct()).scalars().all()
    return described(ctx, usernames, site_id=site_id)


def described(ctx: EngineContext, usernames: Iterable[str], site_id: str | None = None) -> list[PickablePerson]:
    """Name, first describing role and place (the given site's name, else the person's territory) of each."""
    wanted = sorted(set(usernames))
    if not wanted:
        return []
    with ctx.read() as session:
        users = session.execute(select(User.username, User.display_name, TerritoryRow.name)
                                .outerjoin(TerritoryRow, TerritoryRow.id == User.territory_id)
                                .where(User.username.in_(wanted))).tuples().all()
        roles: dict[str, set[str]] = {}
        for username, role in session.execute(select(UserRole.username, UserRole.role)
                                              .where(UserRole.username.in_(wanted))).tuples():
            roles.setdefault(username, set()).add(role)
        site = session.get(SiteRow, site_id) if site_id else None
        site_name = site.name if site is not None else None
    people = []
    for username, name, territory in users:
        role = next((ROLE_WORDS[r] for r in _ROLE_ORDER if r in roles.get(username, set())), "")
        place = site_name or territory or ""
        people.append(PickablePerson(username, name, ", ".join(part for part in (role, place) if part)))
    return sorted(people, key=lambda p: (folded(p.display_name), p.username))
