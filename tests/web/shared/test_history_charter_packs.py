"""CH-3.5 (2025 pack): the case timeline says in French why routing skipped a radiologist, by name, never a code."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_babel import Babel

from web.shared.history import history_text


@pytest.fixture(scope="module")
def request_context():
    app = Flask(__name__)
    Babel(app)
    with app.test_request_context("/"):
        yield


@pytest.mark.charter("CH-3.5.1")
def test_over_the_cap_reads_as_a_sentence_with_the_cap_but_not_his_share(request_context):
    text = history_text({"action": "routing.radiologist_skipped", "actor": "system", "detail": {
        "radiologist": "dr.kerhoas", "radiologist_name": "Dr Anne Kerhoas", "reason": "over_cap", "share": 0.3,
        "cap": 20, "pack": "2025", "tier": 1}})
    assert text == ("Radiologue écarté de l'offre (charte) : la part de téléradiologie de Dr Anne Kerhoas sur 12 mois "
                    "dépasse le plafond de 20 % de la charte 2025 (Telerad (automatique))")
    # Everyone who may see the case reads the timeline: his share itself is for him and the administrators only.
    assert "over_cap" not in text and "dr.kerhoas" not in text and "30 %" not in text


@pytest.mark.charter("CH-3.5.2")
def test_an_exclusive_teleradiologist_and_a_warning(request_context):
    text = history_text({"action": "routing.radiologist_warned", "actor": "system", "detail": {
        "radiologist": "dr.x", "radiologist_name": "Dr X", "reason": "exclusive", "share": None, "cap": 20,
        "pack": "2025"}})
    assert text.startswith("Radiologue proposé malgré la charte (avertissement) : Dr X n'a déclaré aucune activité "
                           "locale")
