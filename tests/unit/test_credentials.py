"""Authorization, insurance and extraterritorial radiologists (CH-3.1, CH-3.2)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from engine.domain.credentials import (
    EXTRATERRITORIAL_NOTICE,
    RadiologistCredentials,
    credential_problems,
    extraterritorial_notice,
    may_be_assigned,
)


def luhn_complete(payload: str) -> str:
    total = 0
    for position, char in enumerate(reversed(payload)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return payload + str((10 - total % 10) % 10)


TODAY = date(2026, 11, 27)
RPPS = luhn_complete("1000123456")
BAD_RPPS = RPPS[:-1] + str((int(RPPS[-1]) + 1) % 10)

DOMESTIC = RadiologistCredentials(
    rpps=RPPS,
    authorization_expires=date(2027, 12, 31),
    insurance_expires=date(2026, 12, 31),
)
ABROAD = RadiologistCredentials(
    rpps=None,
    authorization_expires=date(2027, 6, 30),
    insurance_expires=date(2027, 6, 30),
    extraterritorial=True,
    foreign_authorization_on_file=True,
    foreign_insurance_on_file=True,
)


@pytest.mark.charter("CH-3.1")
def test_CH3_1_complete_credentials_may_be_assigned() -> None:
    assert credential_problems(DOMESTIC, TODAY) == []
    assert may_be_assigned(DOMESTIC, TODAY)


@pytest.mark.charter("CH-3.1")
def test_CH3_1_missing_authorization_blocks_assignment() -> None:
    creds = replace(DOMESTIC, authorization_expires=None)
    problems = credential_problems(creds, TODAY)
    assert len(problems) == 1 and problems[0].startswith("Autorisation d'exercice absente")
    assert not may_be_assigned(creds, TODAY)


@pytest.mark.charter("CH-3.1")
def test_CH3_1_expiry_day_itself_is_still_valid_and_the_next_day_is_not() -> None:
    expires = date(2026, 12, 31)
    creds = replace(DOMESTIC, authorization_expires=expires, insurance_expires=expires)
    assert may_be_assigned(creds, expires)
    problems = credential_problems(creds, expires + timedelta(days=1))
    assert len(problems) == 2
    assert problems[0].startswith("Autorisation d'exercice expirée") and "31/12/2026" in problems[0]
    assert problems[1].startswith("Assurance RCP expirée") and "31/12/2026" in problems[1]


@pytest.mark.charter("CH-3.1")
def test_CH3_1_missing_or_expired_rcp_insurance_blocks_assignment() -> None:
    missing = credential_problems(replace(DOMESTIC, insurance_expires=None), TODAY)
    assert len(missing) == 1 and "responsabilité civile professionnelle (RCP) absente" in missing[0]
    expired = credential_problems(replace(DOMESTIC, insurance_expires=TODAY - timedelta(days=1)), TODAY)
    assert len(expired) == 1 and expired[0].startswith("Assurance RCP expirée")


@pytest.mark.charter("CH-3.1")
@pytest.mark.parametrize("rpps", [None, "", "   "])
def test_CH3_1_domestic_radiologist_needs_an_rpps(rpps: str | None) -> None:
    problems = credential_problems(replace(DOMESTIC, rpps=rpps), TODAY)
    assert len(problems) == 1 and problems[0].startswith("Numéro RPPS absent")


@pytest.mark.charter("CH-3.1")
@pytest.mark.parametrize("rpps", [BAD_RPPS, RPPS[:-1], "ABCDEFGHIJK"])
def test_CH3_1_invalid_rpps_blocks_assignment(rpps: str) -> None:
    problems = credential_problems(replace(DOMESTIC, rpps=rpps), TODAY)
    assert len(problems) == 1 and problems[0].startswith("Numéro RPPS invalide")


@pytest.mark.charter("CH-3.1")
def test_CH3_1_every_problem_is_listed_at_once() -> None:
    creds = RadiologistCredentials(rpps=None, authorization_expires=None, insurance_expires=None)
    assert len(credential_problems(creds, TODAY)) == 3


@pytest.mark.charter("CH-3.2")
def test_CH3_2_extraterritorial_with_documents_on_file_may_be_assigned_without_rpps() -> None:
    assert credential_problems(ABROAD, TODAY) == []
    assert may_be_assigned(ABROAD, TODAY)


@pytest.mark.charter("CH-3.2")
def test_CH3_2_extraterritorial_without_foreign_authorization_on_file() -> None:
    problems = credential_problems(replace(ABROAD, foreign_authorization_on_file=False), TODAY)
    assert len(problems) == 1
    assert "autorisation d'exercer" in problems[0] and "avant toute exposition du patient" in problems[0]
    assert "IRM" in problems[0]


@pytest.mark.charter("CH-3.2")
def test_CH3_2_extraterritorial_without_foreign_insurance_on_file() -> None:
    problems = credential_problems(replace(ABROAD, foreign_insurance_on_file=False), TODAY)
    assert len(problems) == 1 and "assurance RCP" in problems[0]
    assert not may_be_assigned(replace(ABROAD, foreign_insurance_on_file=False), TODAY)


@pytest.mark.charter("CH-3.2")
def test_CH3_2_extraterritorial_documents_still_need_validity_dates() -> None:
    creds = replace(ABROAD, authorization_expires=TODAY - timedelta(days=1), insurance_expires=None)
    problems = credential_problems(creds, TODAY)
    assert [p.split(" ")[0] for p in problems] == ["Autorisation", "Assurance"]


@pytest.mark.charter("CH-3.2")
def test_CH3_2_extraterritorial_rpps_is_optional_but_checked_when_given() -> None:
    assert may_be_assigned(replace(ABROAD, rpps=RPPS), TODAY)
    problems = credential_problems(replace(ABROAD, rpps=BAD_RPPS), TODAY)
    assert len(problems) == 1 and problems[0].startswith("Numéro RPPS invalide")


@pytest.mark.charter("CH-3.2")
def test_CH3_2_foreign_flags_are_irrelevant_for_a_radiologist_established_in_france() -> None:
    assert may_be_assigned(replace(DOMESTIC, foreign_authorization_on_file=False, foreign_insurance_on_file=False),
                           TODAY)


@pytest.mark.charter("CH-3.2")
@pytest.mark.charter("CH-4.1.7")
def test_CH3_2_patient_is_told_the_act_is_not_covered_by_french_insurance() -> None:
    assert extraterritorial_notice(ABROAD) == EXTRATERRITORIAL_NOTICE
    assert "pas pris en charge par l'assurance maladie obligatoire" in EXTRATERRITORIAL_NOTICE
    assert extraterritorial_notice(DOMESTIC) is None


def test_a_datetime_is_refused_to_avoid_utc_day_shifts() -> None:
    with pytest.raises(TypeError):
        credential_problems(DOMESTIC, datetime(2026, 11, 27, 23, 30))
