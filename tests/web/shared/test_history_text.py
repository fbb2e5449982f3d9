"""The case history speaks French of what happened and of who acted (issue 17, item 1): a timer's setting by its
label, never its id; a hospital's interface, the image reception or the system by what they are; a person by
name."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_babel import Babel

from web.shared.history import actor_label, history_text, recipient_label


@pytest.fixture(scope="module")
def request_context():
    app = Flask(__name__)
    Babel(app)  # French, the catalogue's source language
    with app.test_request_context("/"):
        yield


def test_a_fired_timer_says_which_delay_not_its_id(request_context):
    entry = {"action": "timer.fired", "actor": "system", "actor_name": "system",
             "detail": {"timer": "accept_timeout", "task_id": "x", "setting": "accept_oncall"}}
    text = history_text(entry)
    assert text == "Délai écoulé : Acceptation — radiologue de garde (Telerad (automatique))"
    assert "accept_timeout" not in text and "accept_oncall" not in text


def test_a_claimed_task_names_the_step_and_the_person(request_context):
    entry = {"action": "task.claimed", "actor": "dr.legall", "actor_name": "Dr Yann Le Gall",
             "detail": {"task": "td_accept", "title": "Accepter la demande"}}
    assert history_text(entry) == "Tâche prise : Accepter la demande (Dr Yann Le Gall)"


def test_a_completed_step_says_its_summary(request_context):
    assert history_text({"action": "task.completed", "actor": "dr.legall", "summary": "Protocole choisi : Scanner",
                         "detail": {}}) == "Protocole choisi : Scanner"


def test_an_unknown_event_is_not_shown_by_its_code(request_context):
    text = history_text({"action": "something.new", "actor": "dicom", "detail": {"task": "raw_id"}})
    assert text == "Événement du dossier (Réception des images)"


def test_machine_actors_and_recipients_by_what_they_are(request_context):
    assert actor_label("hl7:RIS@CHBREST") == "Système de l'hôpital (RIS)"
    assert actor_label("cli") == "Administration (ligne de commande)"
    assert actor_label("dr.legall", "Dr Yann Le Gall") == "Dr Yann Le Gall"
    assert recipient_label("patient") == "Patient"
    assert recipient_label("local_radiologist") == "Radiologue de proximité"
