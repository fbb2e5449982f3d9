"""Who acts, and what a task asks of them."""

from __future__ import annotations

from dataclasses import dataclass, field

SYSTEM_USER = "system"
# Actors of the hospitals' systems (an HL7 sender: "hl7:APP@FACILITY"); people's usernames cannot contain ":".
INTERFACE_PREFIXES = ("hl7:",)


@dataclass(frozen=True)
class Actor:
    """A person (or the system) acting on cases: identity, roles and the sites they belong to."""

    user_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    sites: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def system(cls) -> Actor:
        return cls(SYSTEM_USER)

    @property
    def is_system(self) -> bool:
        return self.user_id == SYSTEM_USER

    @property
    def is_interface(self) -> bool:
        """The system itself or a hospital system speaking through an interface (not a person)."""
        return self.is_system or self.user_id.startswith(INTERFACE_PREFIXES)


def may_see_task(actor: Actor, lane: str | None, site_id: str | None, assignee: str | None,
                 offered: bool | None = None) -> bool:
    """A task is visible to its assignee, and to holders of its lane's role: at its site, or, when the
    task is offered to named users (routing, ``offered`` not None), only to those users wherever they are."""
    if assignee is not None and assignee == actor.user_id:
        return True
    if lane is not None and lane not in actor.roles:
        return False
    if offered is not None:
        return offered
    return site_id is None or site_id in actor.sites


def may_complete_task(actor: Actor, lane: str | None, site_id: str | None, assignee: str | None,
                      offered: bool | None = None) -> bool:
    """Completing needs visibility, and the task must be unclaimed or claimed by this actor."""
    if assignee is not None and assignee != actor.user_id:
        return False
    return may_see_task(actor, lane, site_id, assignee, offered)
