"""Who a person picker may offer: a search over the directory limited to the people eligible for one purpose.

A form field that names a person declares ``"x-picker": {"purpose": "<purpose>"}`` in its schema; the page asks
``search_people`` as the person types. Purposes:

- ``expert`` (CH-3.4, CH-4.2.1): the tele-experts the case's site may ask today, as ``eligible_experts`` decides
  (bound by an active convention, valid credentials), never the person who asks;
- ``physician_present`` (CH-4.1.10): active accounts of the case's site holding a physician role
  (``PHYSICIAN_ROLES``: requesting physician, local radiologist, radiologist, site's medical lead). The field
  keeps a free name: the physician present may be an emergency doctor without an account, so the list only
  suggests;
- ``oncall`` (CH-5.5): active radiologists whose credentials are valid today, for the administrators' on-call
  page.

A case purpose needs the caller to hold an open task of the case whose form declares that purpose; ``oncall``
needs an administrator. The answer names people only (username, name, role and place): never a patient.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.credentials import credential_problems
from engine.domain.data_checks import paris_date
from engine.errors import Conflict, Forbidden, NotFound
from engine.services.context import EngineContext
from engine.services.eligibility import eligible_experts
from engine.services.tasks import TaskView, get_task, list_tasks
from engine.store.directory_models import SiteRow, TerritoryRow, User, UserRole, UserSite
from engine.store.sql_directory import SqlDirectory

PICKER_KEY = "x-picker"
PURPOSES = ("expert", "physician_present", "oncall")
CASE_PURPOSES = frozenset({"expert", "physician_present"})
PHYSICIAN_ROLES = ("requester", "local_radiologist", "radiologist", "site_lead")
MAX_RESULTS = 20
MAX_QUERY = 100  # characters of the query kept: a name is never longer
ROLE_WORDS = {"radiologist": "radiologue", "tele_expert": "télé-expert", "local_radiologist": "radiologue du site",
              "requester": "médecin demandeur", "site_lead": "médecin responsable du site"}
# The first role of a person that describes him, in this order.
_ROLE_ORDER = ("radiologist", "tele_expert", "local_radiologist", "site_lead", "requester")


class UnknownPurpose(ValueError):
    """The purpose is not one a picker may ask for."""


@dataclass(frozen=True)
class PickablePerson:
    username: str
    display_name: str
    detail: str  # role and place, e.g. "radiologue, Morlaix"

    def as_json(self) -> dict[str, str]:
        return {"username": self.username, "display_name": self.display_name, "detail": self.detail}


def picker_purposes(schema: Mapping[str, Any]) -> dict[str, str]:
    """Field name -> picker purpose, for the top-level properties of a form schema that declare ``x-picker``."""
    found: dict[str, str] = {}
    properties = schema.get("properties")
    for name, prop in (properties.items() if isinstance(properties, Mapping) else ()):
        picker = prop.get(PICKER_KEY) if isinstance(prop, Mapping) else None
        if isinstance(picker, Mapping) and picker.get("purpose") in PURPOSES:
            found[name] = str(picker["purpose"])
    return found


def folded(text: str) -> str:
    """Lower case without accents or control characters: "Kerléo" and "KERLEO" match."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c) and unicodedata.category(c)[0] != "C"
                   ).casefold().strip()


def search_people(ctx: EngineContext, actor: Actor, purpose: str, query: str = "", *, task_id: str | None = None,
                  case_id: int | None = None) -> list[PickablePerson]:
    """At most MAX_RESULTS eligible people whose name or username contains the query (any case, any accent),
    sorted by name. Raises UnknownPurpose, or Forbidden when the caller has no right to this purpose here."""
    if purpose not in PURPOSES:
        raise UnknownPurpose(purpose)
    wanted = folded(query[:MAX_QUERY])
    people = [p for p in eligible_people(ctx, actor, purpose, task_id=task_id, case_id=case_id)
              if not wanted or wanted in folded(p.display_name) or wanted in folded(p.username)]
    return people[:MAX_RESULTS]


def eligible_people(ctx: EngineContext, actor: Actor, purpose: str, *, task_id: str | None = None,
                    case_id: int | None = None) -> list[PickablePerson]:
    """Everyone eligible for the purpose, sorted by name (permission checked as in ``search_people``)."""
    if purpose == "oncall":
        if not (actor.is_system or "administrator" in actor.roles):
            raise Forbidden("Seul un administrateur organise les gardes.")
        return oncall_candidates(ctx)
    if purpose not in CASE_PURPOSES:
        raise UnknownPurpose(purpose)
    task = _picker_task(ctx, actor, purpose, task_id, case_id)
    if purpose == "expert":
        experts = eligible_experts(ctx, task.site_id, exclude={actor.user_id})
        return _described(ctx, [e.user_id for e in experts])
    return _site_physicians(ctx, task.site_id)


def _picker_task(ctx: EngineContext, actor: Actor, purpose: str, task_id: str | None, case_id: int | None
                 ) -> TaskView:
    """The open task of the caller whose form declares this purpose: the given task, or one of the given case."""
    candidates: list[TaskView] = []
    if task_id:
        try:
            candidates = [get_task(ctx, actor, task_id)]
        except (NotFound, Conflict):
            candidates = []
    elif case_id is not None:
        candidates = [t for t in list_tasks(ctx, actor) if t.instance_id == case_id]
    for task in candidates:
        if task.form_key and purpose in picker_purposes(ctx.forms.schema(task.form_key)).values():
            return task
    raise Forbidden("Vous ne tenez aucune étape de ce dossier qui demande de choisir cette personne.")


@enforces("CH-5.5")
def oncall_candidates(ctx: EngineContext) -> list[PickablePerson]:
    """Active radiologists whose credentials are valid at today's Paris date, sorted by name."""
    today = paris_date(ctx.clock.now())
    directory = ctx.directory if ctx.directory is not None else SqlDirectory(ctx.reader)
    fit = [r.user_id for r in directory.radiologists() if not credential_problems(r.credentials, today)]
    return _described(ctx, fit)


def oncall_refusal(ctx: EngineContext, username: str) -> str | None:
    """Why this person cannot be put on call, in French; None when he may."""
    if any(p.username == username for p in oncall_candidates(ctx)):
        return None
    return (f"« {username[:MAX_QUERY]} » n'est pas un radiologue actif dont l'autorisation d'exercer et "
            "l'assurance sont valides : choisissez un radiologue dans la liste.")


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
    eligible = _site_physicians(ctx, site_id)
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
def _site_physicians(ctx: EngineContext, site_id: str | None) -> list[PickablePerson]:
    if not site_id:
        return []
    with ctx.read() as session:
        usernames = session.execute(
            select(User.username).join(UserSite, UserSite.username == User.username)
            .join(UserRole, UserRole.username == User.username)
            .where(UserSite.site_id == site_id, User.active.is_(True), UserRole.role.in_(PHYSICIAN_ROLES))
            .distinct()).scalars().all()
    return _described(ctx, usernames, site_id=site_id)


def _described(ctx: EngineContext, usernames: Iterable[str], site_id: str | None = None) -> list[PickablePerson]:
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
