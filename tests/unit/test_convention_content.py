"""What a convention must hold before it may be active, its expiry, and its reminder stages (engine.domain
.convention_content, engine.services.convention_reminders.due_stage): each missing item is named in French."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from engine.domain.convention_content import (
    DOCUMENT_KINDS,
    NUMBERS,
    TEXTS,
    ConventionFacts,
    expired,
    missing_items,
    refusal_text,
)
from engine.services.convention_reminders import EXPIRED, EXPIRY_SOON, RENEWAL, due_stage

TODAY = date(2026, 6, 1)
COMPLETE = ConventionFacts(
    texts={name: "texte" for name in TEXTS}, numbers={name: 10 for name in NUMBERS}, medical_lead="dr.lead",
    approved_on={"cme": date(2026, 1, 1), "g4": date(2026, 2, 1), "council": date(2026, 3, 1)},
    documents=frozenset(DOCUMENT_KINDS), remuneration_declared=True, expires_on=date(2028, 12, 31),
    renewal_on=date(2028, 6, 30))


def test_a_complete_convention_lacks_nothing():
    assert missing_items(COMPLETE, TODAY) == []
    assert refusal_text([]) == ""


@pytest.mark.charter("CH-3.4", negative=True)
@pytest.mark.parametrize(("change", "named"), [
    ({"approved_on": {"cme": None, "g4": date(2026, 2, 1), "council": date(2026, 3, 1)}},
     "la date de la validation par la commission médicale d'établissement (CME)"),
    ({"approved_on": {"cme": date(2026, 1, 1), "g4": None, "council": date(2026, 3, 1)}},
     "la date de l'approbation du G4 régional"),
    ({"approved_on": {"cme": date(2026, 1, 1), "g4": date(2026, 2, 1), "council": None}},
     "la date de l'approbation du conseil départemental de l'Ordre des médecins"),
    ({"documents": frozenset({"g4", "council", "remuneration"})},
     "le document de la validation par la commission médicale d'établissement (CME)"),
    ({"documents": frozenset({"cme", "council", "remuneration"})}, "le document de l'approbation du G4 régional"),
    ({"documents": frozenset({"cme", "g4", "remuneration"})},
     "le document de l'approbation du conseil départemental de l'Ordre des médecins"),
    ({"medical_lead": None}, "le médecin responsable de l'organisation médicale du site"),
    ({"documents": frozenset({"cme", "g4", "council"})}, "le document de rémunération"),
    ({"remuneration_declared": False}, "ni clause de productivité ni clause d'exclusivité"),
    ({"expires_on": None}, "la date d'échéance"),
    ({"expires_on": date(2026, 5, 31)}, "une date d'échéance à venir (échue le 31/05/2026)"),
    ({"renewal_on": None}, "la date de renouvellement"),
])
def test_each_missing_approval_document_or_date_is_named(change, named):
    missing = missing_items(replace(COMPLETE, **change), TODAY)
    assert len(missing) == 1 and named in missing[0]
    assert refusal_text(missing).startswith("La convention ne peut pas être activée : il manque ")


@pytest.mark.charter("CH-6.1", negative=True)
@pytest.mark.charter("CH-6.2", negative=True)
@pytest.mark.parametrize("name", [*TEXTS, *NUMBERS])
def test_each_missing_text_or_technical_figure_is_named(name):
    facts = replace(COMPLETE, texts={**COMPLETE.texts, **({name: "  "} if name in TEXTS else {})},
                    numbers={**COMPLETE.numbers, **({name: None} if name in NUMBERS else {})})
    assert missing_items(facts, TODAY) == [{**TEXTS, **NUMBERS}[name]]


def test_a_convention_is_valid_through_its_expiry_day():
    assert not expired(date(2026, 6, 1), TODAY) and expired(date(2026, 5, 31), TODAY) and not expired(None, TODAY)


def test_reminder_stages_renewal_then_thirty_days_before_then_expired():
    expires, renewal = date(2027, 6, 30), date(2027, 3, 31)
    assert due_stage(expires, renewal, date(2027, 3, 30)) is None
    assert due_stage(expires, renewal, date(2027, 3, 31)) == RENEWAL
    assert due_stage(expires, renewal, date(2027, 5, 30)) == RENEWAL
    assert due_stage(expires, renewal, date(2027, 5, 31)) == EXPIRY_SOON
    assert due_stage(expires, renewal, date(2027, 6, 30)) == EXPIRY_SOON
    assert due_stage(expires, renewal, date(2027, 7, 1)) == EXPIRED
    assert due_stage(expires, None, date(2027, 5, 1)) is None
