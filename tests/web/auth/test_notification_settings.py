"""'Mes notifications': each person edits their own email, phone and preferences; nobody else's (the page has no
user in its address, a username field in the form is ignored, and the service refuses another person)."""

from __future__ import annotations

import html

import pytest

from engine.domain.actors import Actor
from engine.errors import Forbidden
from engine.services.notification_contacts import (
    EMAIL,
    NO_RADIOLOGIST,
    OFFER,
    URGENT_OFFER,
    WEBHOOK,
    get_contact,
    update_contact,
)
from tests.demo_app import demo_ctx, login, web_app
from web.auth import notification_settings
from web.cli.demo_data import DEMO_PHONES

__all__ = ["demo_ctx"]


@pytest.fixture
def app(demo_ctx, database_url, tmp_path):
    application = web_app(demo_ctx, database_url, tmp_path)
    if "notification_settings" not in application.blueprints:  # until web/auth lists it in its BLUEPRINTS
        application.register_blueprint(notification_settings.bp)
    return application


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_the_page_shows_the_defaults_of_a_night_on_call(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    page = _text(client.get("/account/notifications"))
    assert 'value="dr.legall@telerad.localhost"' in page
    assert f'value="{URGENT_OFFER}:{WEBHOOK}" id="pref-{URGENT_OFFER}-{WEBHOOK}"  checked' in page
    assert f'value="{OFFER}:{EMAIL}" id="pref-{OFFER}-{EMAIL}" >' in page  # a scheduled offer wakes nobody


def test_each_person_saves_their_own_contact_and_preferences(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    answer = client.post("/account/notifications", data={
        "email": "yann.legall@mssante.fr", "phone": "06 12 34 56 78", "username": "dr.morvan",
        "pref": [f"{URGENT_OFFER}:{EMAIL}", f"{NO_RADIOLOGIST}:{WEBHOOK}"]})
    assert answer.status_code == 302
    mine = get_contact(demo_ctx, Actor("dr.legall"))
    assert (mine.email, mine.phone) == ("yann.legall@mssante.fr", "+33612345678")
    assert mine.channels(URGENT_OFFER) == (EMAIL,) and mine.channels(NO_RADIOLOGIST) == (WEBHOOK,)
    assert mine.channels(OFFER) == ()
    other = get_contact(demo_ctx, Actor("dr.morvan"))
    assert other.email == "dr.morvan@telerad.localhost" and other.phone is None  # untouched


def test_bad_input_is_shown_beside_the_fields_and_keeps_what_was_typed(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.martin")
    answer = client.post("/account/notifications", data={"email": "pas-une-adresse", "phone": "12"})
    page = _text(answer)
    assert answer.status_code == 400
    assert "Numéro de téléphone invalide" in page and 'value="12"' in page
    assert get_contact(demo_ctx, Actor("dr.martin")).phone == DEMO_PHONES["dr.martin"]  # unchanged


def test_nobody_edits_someone_elses_preferences(demo_ctx):
    with pytest.raises(Forbidden):
        update_contact(demo_ctx, Actor("dr.martin", frozenset({"requester"})), "dr.legall", "x@y.fr", "", {})
    with pytest.raises(Forbidden):
        update_contact(demo_ctx, Actor("admin", frozenset({"administrator"})), "dr.legall", "x@y.fr", "", {})
    with pytest.raises(Forbidden):
        get_contact(demo_ctx, Actor("dr.martin"), "dr.legall")


def test_anonymous_visitors_are_sent_to_the_login(app):
    answer = app.test_client().get("/account/notifications")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
