"""Administrators with or without sites, for the tests of what an administrator may read of a patient (CH-5.3):
the demo's ``admin`` belongs to no site."""

from __future__ import annotations

from engine.domain.actors import Actor
from engine.services.accounts import create_user
from engine.services.directory import mark_totp_enrolled
from web.cli.demo_data import DEMO_PASSWORD


def add_admin(ctx, username: str, sites: tuple[str, ...] = ()) -> Actor:
    """An administrator account of these sites, with the demo password (``tests.demo_app.login`` signs it in)."""
    create_user(ctx, Actor.system(), username, f"Administrateur {username}", DEMO_PASSWORD, ("administrator",),
                sites)
    mark_totp_enrolled(ctx, Actor.system(), username)
    return Actor(username, frozenset({"administrator"}), frozenset(sites))
