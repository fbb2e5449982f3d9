"""A session copied before it ends does not outlive it (issue 16: a session cookie copied before logout still
worked after logout and after a password change). Logout ends that session, a copy of its cookie included; a new
password, a second-factor reset, a change of roles or sites and a deactivation end every session of the account."""

from __future__ import annotations

import pytest

from engine.domain.actors import Actor
from engine.services.accounts import reset_totp, set_password
from engine.services.directory import set_user_active, update_user_roles_sites
from tests import demo_app
from tests.demo_app import login

app, demo_ctx = demo_app.app, demo_app.demo_ctx  # the web app on the demo data (fixtures)
ADMIN = Actor("admin", frozenset({"administrator"}))


def copy_of(app, client):
    """A second browser holding a copy of the first one's session cookie."""
    thief = app.test_client()
    thief.set_cookie("telerad_session", client.get_cookie("telerad_session").value)
    return thief


def signed_in(client) -> bool:
    response = client.get("/inbox")
    return response.status_code == 200


@pytest.mark.charter("CH-8.1", negative=True)
def test_a_copied_cookie_dies_with_the_logout(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    thief = copy_of(app, client)
    clock.advance(seconds=30)  # a TOTP code is good once only
    other_device = login(app, demo_ctx, clock, "dr.legall")
    assert signed_in(thief) and signed_in(other_device)
    client.post("/logout")
    assert not signed_in(thief)
    assert signed_in(other_device)  # logging out ends that session only (the others: "Mes sessions")
    clock.advance(seconds=30)
    assert signed_in(login(app, demo_ctx, clock, "dr.legall"))  # logging in again works


@pytest.mark.charter("CH-8.1", negative=True)
@pytest.mark.parametrize("change", [
    lambda ctx: set_password(ctx, ADMIN, "dr.legall", "Un-nouveau-mot-de-passe-2026"),
    lambda ctx: update_user_roles_sites(ctx, ADMIN, "dr.legall", ["radiologist"], []),
    lambda ctx: set_user_active(ctx, ADMIN, "dr.legall", False),
    lambda ctx: reset_totp(ctx, ADMIN, "dr.legall"),
], ids=["password", "roles", "deactivation", "second_factor"])
def test_account_changes_end_every_session(app, demo_ctx, clock, change):
    client = login(app, demo_ctx, clock, "dr.legall")
    thief = copy_of(app, client)
    unrelated = login(app, demo_ctx, clock, "dr.martin")
    change(demo_ctx)
    assert not signed_in(client) and not signed_in(thief)
    assert signed_in(unrelated)  # another account's session is untouched
