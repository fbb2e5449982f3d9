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

from collections.abc import Mapping
from typing import Any

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.credentials import credential_problems
from engine.domain.data_checks import paris_date
from engine.errors import Conflict, Forbidden, NotFound
from engine.services.context import EngineContext
from engine.services.eligibility import eligible_experts
from engine.services.people_directory import PickablePerson, described, folded, site_physicians
from engine.services.tasks import TaskView, get_task, list_tasks
from engine.store.sql_directory import SqlDirectory

PICKER_KEY = "x-picker"
PURPOSES = ("expert", "physician_present", "oncall")
CASE_PURPOSES = frozenset({"expert", "physician_present"})
REQUESTING_ROLES = frozenset({"local_radiologist"})  # who may start a teleexpertise (its diagram's first lane)
MAX_RESULTS = 20
MAX_QUERY = 100  # characters of the query kept: a name is never longer


class UnknownPurpose(ValueError):
    """The purpose is not one a picker may ask for."""


def picker_purposes(schema: Mapping[str, Any]) -> dict[str, str]:
    """Field name -> picker purpose, for the top-level properties of a form schema that declare ``x-picker``."""
    found: dict[str, str] = {}
    properties = schema.get("properties")
    for name, prop in (properties.items() if isinstance(properties, Mapping) else ()):
        picker = prop.get(PICKER_KEY) if isinstance(prop, Mapping) else None
        if isinstance(picker, Mapping) and picker.get("purpose") in PURPOSES:
            found[name] = str(picker["purpose"])
    return found


def search_people(ctx: EngineContext, actor: Actor, purpose: str, query: str = "", *, task_id: str | None = None,
                  site_id: str | None = None,
                  case_id: int | None = None) -> list[PickablePerson]:
    """At most MAX_RESULTS eligible people whose name or username contains the query (any case, any accent),
    sorted by name. Raises UnknownPurpose, or Forbidden when the caller has no right to this purpose here."""
    if purpose not in PURPOSES:
        raise UnknownPurpose(purpose)
    wanted = folded(query[:MAX_QUERY])
    people = [p for p in eligible_people(ctx, actor, purpose, task_id=task_id, case_id=case_id, site_id=site_id)
              if not wanted or wanted in folded(p.display_name) or wanted in folded(p.username)]
    return people[:MAX_RESULTS]


def eligible_people(ctx: EngineContext, actor: Actor, purpose: str, *, task_id: str | None = None,
                    case_id: int | None = None, site_id: str | None = None) -> list[PickablePerson]:
    """Everyone eligible for the purpose, sorted by name (permission checked as in ``search_people``). A new
    teleexpertise request has no case yet: its expert is searched for the requesting site (``site_id``), by a
    member of that site who may ask for a teleexpertise."""
    if purpose == "oncall":
        if not (actor.is_system or "administrator" in actor.roles):
            raise Forbidden("Seul un administrateur organise les gardes.")
        return oncall_candidates(ctx)
    if purpose not in CASE_PURPOSES:
        raise UnknownPurpose(purpose)
    if purpose == "expert" and task_id is None and case_id is None and site_id is not None:
        if site_id not in actor.sites or not REQUESTING_ROLES & actor.roles:
            raise Forbidden("Seul un membre de ce site qui peut demander une téléexpertise choisit son expert.")
        return described(ctx, [e.user_id for e in eligible_experts(ctx, site_id, exclude={actor.user_id})])
    task = _picker_task(ctx, actor, purpose, task_id, case_id)
    if purpose == "expert":
        experts = eligible_experts(ctx, task.site_id, exclude={actor.user_id})
        return described(ctx, [e.user_id for e in experts])
    return site_physicians(ctx, task.site_id)


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
    return described(ctx, fit)


def oncall_refusal(ctx: EngineContext, username: str) -> str | None:
    """Why this person cannot be put on call, in French; None when he may."""
    if any(p.username == username for p in oncall_candidates(ctx)):
        return None
    return (f"« {username[:MAX_QUERY]} » n'est pas un radiologue actif dont l'autorisation d'exercer et "
            "l'assurance sont valides : choisissez un radiologue dans la liste.")


