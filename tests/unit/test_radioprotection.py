"""Radioprotection flags: ionizing techniques, children, women of childbearing age (CH-4.1.3)."""

from __future__ import annotations

from datetime import date

import pytest

from engine.domain.radioprotection import (
    CHILDBEARING_AGE_MAX,
    CHILDBEARING_AGE_MIN,
    NOT_PREGNANT,
    PREGNANT,
    UNKNOWN,
    RadioprotectionFlags,
    UnknownModality,
    age_on,
    is_ionizing,
    pregnancy_status_problem,
    radioprotection_flags,
)

EXAM_DAY = date(2026, 11, 27)


def born_years_ago(years: int, *, days_before_birthday: int = 0) -> date:
    """A birth date making the patient exactly `years` old on EXAM_DAY, or turning `years` in N days."""
    birth = EXAM_DAY.replace(year=EXAM_DAY.year - years)
    return birth.replace(day=birth.day + days_before_birthday)


@pytest.mark.charter("CH-4.1.3")
@pytest.mark.parametrize("modality", ["CT", "XR", "CR", "DX", "MG", "XA", "RF", "NM", "PT", "PET", "ct", " mg "])
def test_CH4_1_3_ionizing_modalities(modality: str) -> None:
    assert is_ionizing(modality)


@pytest.mark.charter("CH-4.1.3")
@pytest.mark.parametrize("modality", ["US", "MR", "mr"])
def test_CH4_1_3_ultrasound_and_mri_are_not_ionizing(modality: str) -> None:
    assert not is_ionizing(modality)


@pytest.mark.charter("CH-4.1.3")
@pytest.mark.parametrize("modality", ["", "IRM", "XYZ", None])
def test_CH4_1_3_unknown_modality_is_refused_not_guessed(modality: str) -> None:
    with pytest.raises(UnknownModality, match="modalité inconnue"):
        is_ionizing(modality)


def test_age_in_completed_years() -> None:
    assert age_on(date(2000, 11, 27), EXAM_DAY) == 26
    assert age_on(date(2000, 11, 28), EXAM_DAY) == 25
    assert age_on(EXAM_DAY, EXAM_DAY) == 0


def test_age_of_someone_born_on_29_february() -> None:
    assert age_on(date(2008, 2, 29), date(2026, 2, 28)) == 17
    assert age_on(date(2008, 2, 29), date(2026, 3, 1)) == 18
    assert age_on(date(2008, 2, 29), date(2028, 2, 29)) == 20


def test_age_refuses_a_birth_after_the_exam_and_datetimes() -> None:
    with pytest.raises(ValueError, match="postérieure"):
        age_on(date(2027, 1, 1), EXAM_DAY)
    from datetime import datetime

    with pytest.raises(TypeError):
        age_on(datetime(2000, 1, 1), EXAM_DAY)


@pytest.mark.charter("CH-4.1.3")
def test_CH4_1_3_minor_until_the_eighteenth_birthday() -> None:
    assert radioprotection_flags("XR", "M", born_years_ago(17), EXAM_DAY).minor
    assert radioprotection_flags("XR", "M", born_years_ago(18, days_before_birthday=1), EXAM_DAY).minor
    assert not radioprotection_flags("XR", "M", born_years_ago(18), EXAM_DAY).minor


@pytest.mark.charter("CH-4.1.3")
def test_CH4_1_3_childbearing_age_bounds_are_15_and_49_inclusive() -> None:
    assert (CHILDBEARING_AGE_MIN, CHILDBEARING_AGE_MAX) == (15, 49)
    expected = {14: False, 15: True, 30: True, 49: True, 50: False}
    for years, childbearing in expected.items():
        flags = radioprotection_flags("CT", "F", born_years_ago(years), EXAM_DAY)
        assert flags.childbearing_age is childbearing, years
        assert flags.pregnancy_status_required is childbearing, years


@pytest.mark.charter("CH-4.1.3")
def test_CH4_1_3_childbearing_age_bounds_on_the_birthday() -> None:
    day_before_15 = radioprotection_flags("CT", "F", born_years_ago(15, days_before_birthday=1), EXAM_DAY)
    day_before_50 = radioprotection_flags("CT", "F", born_years_ago(50, days_before_birthday=1), EXAM_DAY)
    assert not day_before_15.childbearing_age
    assert day_before_50.childbearing_age  # still 49 the day before her 50th birthday


@pytest.mark.charter("CH-4.1.3")
def test_CH4_1_3_men_are_never_of_childbearing_age() -> None:
    for sex in ("M", "m", " M "):
        flags = radioprotection_flags("CT", sex, born_years_ago(30), EXAM_DAY)
        assert not flags.childbearing_age and not flags.pregnancy_status_required


@pytest.mark.charter("CH-4.1.3")
@pytest.mark.parametrize("sex", [None, "", "U", "O", "I"])
def test_CH4_1_3_unknown_sex_is_treated_like_a_woman(sex: str | None) -> None:
    flags = radioprotection_flags("CT", sex, born_years_ago(30), EXAM_DAY)
    assert flags.childbearing_age and flags.pregnancy_status_required


@pytest.mark.charter("CH-4.1.3")
def test_CH4_1_3_pregnancy_status_only_required_for_ionizing_techniques() -> None:
    for modality in ("MR", "US"):
        flags = radioprotection_flags(modality, "F", born_years_ago(30), EXAM_DAY)
        assert flags.childbearing_age and not flags.pregnancy_status_required
        assert flags.substitution_candidates == ()


@pytest.mark.charter("CH-4.1.3")
def test_CH4_1_3_substitution_offered_for_children_and_women_of_childbearing_age() -> None:
    child = radioprotection_flags("CT", "M", born_years_ago(8), EXAM_DAY)
    woman = radioprotection_flags("XR", "F", born_years_ago(32), EXAM_DAY)
    man = radioprotection_flags("CT", "M", born_years_ago(40), EXAM_DAY)
    older_woman = radioprotection_flags("MG", "F", born_years_ago(62), EXAM_DAY)
    assert child == RadioprotectionFlags(
        ionizing=True, minor=True, childbearing_age=False, pregnancy_status_required=False,
        substitution_candidates=("US", "MR"),
    )
    assert woman.substitution_candidates == ("US", "MR")
    assert man.substitution_candidates == ()
    assert older_woman.substitution_candidates == ()


@pytest.mark.charter("CH-4.1.3")
@pytest.mark.parametrize("status", [None, UNKNOWN])
def test_CH4_1_3_missing_or_unknown_pregnancy_status_is_a_problem(status: str | None) -> None:
    flags = radioprotection_flags("CT", "F", born_years_ago(25), EXAM_DAY)
    problem = pregnancy_status_problem(flags, status)
    assert problem is not None and problem.startswith("Statut de grossesse requis")


@pytest.mark.charter("CH-4.1.3")
@pytest.mark.parametrize("status", [NOT_PREGNANT, PREGNANT])
def test_CH4_1_3_a_stated_pregnancy_status_is_enough(status: str) -> None:
    flags = radioprotection_flags("CT", "F", born_years_ago(25), EXAM_DAY)
    assert pregnancy_status_problem(flags, status) is None


@pytest.mark.charter("CH-4.1.3")
def test_CH4_1_3_no_pregnancy_question_when_not_required() -> None:
    flags = radioprotection_flags("CT", "M", born_years_ago(25), EXAM_DAY)
    assert pregnancy_status_problem(flags, None) is None
    assert pregnancy_status_problem(flags, UNKNOWN) is None


@pytest.mark.charter("CH-4.1.3")
def test_CH4_1_3_unrecognised_pregnancy_status_is_reported() -> None:
    flags = radioprotection_flags("CT", "F", born_years_ago(25), EXAM_DAY)
    problem = pregnancy_status_problem(flags, "maybe")
    assert problem is not None and problem.startswith("Statut de grossesse non reconnu")
