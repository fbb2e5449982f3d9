"""User accounts as the web layer needs them: who someone is, what they may do, where."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from engine.domain.actors import Actor
from engine.services.context import EngineContext
from engine.store.directory_models import User, UserRole, UserSite


@dataclass(frozen=True)
class Profile:
    username: str
    display_name: str
    roles: frozenset[str]
    sites: frozenset[str]
    active: bool
    language: str
    totp_enrolled: bool

    @property
    def actor(self) -> Actor:
        return Actor(self.username, self.roles, self.sites)


def load_profile(ctx: EngineContext, username: str) -> Profile | None:
    with ctx.read() as session:
        user = session.get(User, username)
        if user is None:
            return None
        roles = frozenset(session.execute(select(UserRole.role).where(UserRole.username == username)).scalars())
        sites = frozenset(session.execute(select(UserSite.site_id).where(UserSite.username == username)).scalars())
        return Profile(user.username, user.display_name, roles, sites, user.active, user.language,
                       user.totp_enrolled_at is not None)
