"""During and after a downtime incident (CH-5.5): the degraded-mode procedure of the site's convention (whom to call,
the on-call radiologist and the medical lead with their phone numbers, H24 support), and the back-entry of a step
handled by phone or on paper.

A back-entered step goes through ``engine.services.tasks.complete_task`` like any other: the same diagram, form
validation, charter gates and permission checks; only its ``task.completed`` audit event carries, in
``back_entry``, the real moment the step happened, the people involved and the incident that covered it (the
event's own time stays the true time of entry). It is refused unless an incident declared for the task's site
covers that moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.services.context import EngineContext
from engine.services.incidents import IncidentError, incident_covering
from engine.services.notification_contacts import contacts_of
from engine.services.notifications import on_call_of
from engine.services.tasks import complete_task, get_task
from engine.store.directory_models import ConventionRow, User, UserRole, UserSite

MAX_PEOPLE = 500


@dataclass(frozen=True)
class Person:
    username: str
    name: str
    phone: str | None


@dataclass(frozen=True)
class Procedure:
    """What the banner's "procédure" page shows for one site."""

    site_id: str
    fallback_procedure: str
    emergency_pathway: str
    emergency_duties: str
    restoration_delay_hours: int | None
    on_call: Person | None
    medical_leads: tuple[Person, ...]
    support_contact: str

    @property
    def h24(self) -> bool:
        """H24 7/7 support is shown where on-call duty covers the site now (CH-5.5)."""
        return self.on_call is not None


def degraded_procedure(ctx: EngineContext, site_id: str, support_contact: str = "") -> Procedure:
    """The degraded-mode procedure of the site's approved convention (the newest), with the people to call."""
    on_call = on_call_of(ctx, site_id)
    with ctx.read() as session:
        convention = session.execute(select(ConventionRow).where(
            ConventionRow.site_id == site_id, ConventionRow.cme_validated.is_(True),
            ConventionRow.approved_by_g4.is_(True), ConventionRow.approved_by_council.is_(True))
            .order_by(ConventionRow.id.desc()).limit(1)).scalar_one_or_none()
        leads = list(session.execute(select(User.username).join(UserSite, UserSite.username == User.username)
                                     .join(UserRole, UserRole.username == User.username)
                                     .where(UserSite.site_id == site_id, UserRole.role == "site_lead",
                                            User.active.is_(True)).order_by(User.username)).scalars())
        wanted = [*leads, *([on_call] if on_call else [])]
        names = dict(session.execute(select(User.username, User.display_name)
                                     .where(User.username.in_(wanted or [""]))).tuples().all())
        contacts = contacts_of(session, wanted)

    def person(username: str) -> Person:
        contact = contacts.get(username)
        return Person(username, names.get(username, username), contact.phone if contact else None)

    return Procedure(
        site_id, (convention.fallback_procedure or "") if convention else "",
        (convention.emergency_pathway or "") if convention else "",
        (convention.emergency_duties or "") if convention else "",
        convention.restoration_delay_hours if convention else None,
        person(on_call) if on_call else None, tuple(person(u) for u in leads), support_contact.strip())


@enforces("CH-5.5")
def complete_back_entered(ctx: EngineContext, actor: Actor, task_id: str, data: dict[str, Any],
                          occurred_at: object, people: object) -> int:
    """Complete a task handled by phone or on paper during an incident, entered afterwards: refused unless an
    incident of the task's site covers `occurred_at`; then exactly a live completion (complete_task)."""
    task = get_task(ctx, actor, task_id)
    if not isinstance(occurred_at, datetime) or occurred_at.tzinfo is None:
        raise IncidentError("Moment réel de l'étape : indiquez une date et une heure.", "occurred_at")
    who = str(people or "").strip()
    if not who:
        raise IncidentError("Personnes impliquées : indiquez qui a réalisé l'étape (par téléphone ou sur papier).",
                            "people")
    if len(who) > MAX_PEOPLE:
        raise IncidentError(f"Personnes impliquées : {MAX_PEOPLE} caractères au plus.", "people")
    now = ctx.clock.now()
    if occurred_at > now:
        raise IncidentError("Moment réel de l'étape : il ne peut pas être dans le futur.", "occurred_at")
    with ctx.read() as session:
        incident = incident_covering(session, task.site_id or "", occurred_at, now)
    if incident is None:
        raise IncidentError("Aucun incident déclaré pour ce site ne couvre ce moment : une étape ne se saisit "
                            "après coup que pour la durée d'un incident (panne informatique ou réseau).",
                            "occurred_at")
    return complete_task(ctx, actor, task_id, data, back_entry={
        "occurred_at": occurred_at.isoformat(), "people": who, "incident": incident})
