"""INS (NIR) key, identity status, identity traits and RPPS (CH-4.1.6, CH-8.1, CH-3.1)."""

from __future__ import annotations

import pytest

from engine.domain.identity import (
    IDENTITY_STATUS_LABELS,
    MANDATORY_TRAITS,
    TRAIT_LABELS,
    IdentityStatus,
    InvalidIns,
    identity_status_label,
    identity_traits_complete,
    is_valid_ins,
    is_valid_rpps,
    luhn_is_valid,
    may_share_ins,
    nir_key,
    normalise_ins,
)


def reference_key(body: str) -> int:
    """The key computed independently of the module, straight from the published rule."""
    number = body.replace("2A", "19", 1) if body[5:7] == "2A" else body
    number = number.replace("2B", "18", 1) if body[5:7] == "2B" else number
    return 97 - int(number) % 97


def with_key(body: str) -> str:
    return f"{body}{reference_key(body):02d}"


def luhn_check_digit(payload: str) -> str:
    """Test-side Luhn generator: the digit that makes payload + digit pass."""
    total = 0
    for position, char in enumerate(reversed(payload)):
        value = int(char)
        if position % 2 == 0:  # these become the odd positions once the check digit is appended
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


# sex, year, month, department, commune, order
MAN_PARIS = "1" "85" "05" "75" "056" "084"
WOMAN_ABROAD = "2" "91" "12" "99" "350" "012"
CORSE_DU_SUD = "1" "72" "03" "2A" "004" "031"
HAUTE_CORSE = "2" "64" "11" "2B" "033" "112"


@pytest.mark.charter("CH-4.1.6")
@pytest.mark.parametrize("body", [MAN_PARIS, WOMAN_ABROAD, CORSE_DU_SUD, HAUTE_CORSE])
def test_CH4_1_6_nir_key_matches_the_published_formula(body: str) -> None:
    assert nir_key(body) == reference_key(body)
    assert is_valid_ins(with_key(body))


@pytest.mark.charter("CH-4.1.6")
def test_CH4_1_6_ins_key_corsica_2a_counts_as_19_and_2b_as_18() -> None:
    same_digits_2a = "1" "72" "03" "2A" "004" "031"
    same_digits_2b = "1" "72" "03" "2B" "004" "031"
    assert nir_key(same_digits_2a) == 97 - int("1720319004031") % 97
    assert nir_key(same_digits_2b) == 97 - int("1720318004031") % 97
    assert nir_key(same_digits_2a) != nir_key(same_digits_2b)
    # the 2A key must not validate the 2B number, and the reverse
    assert not is_valid_ins(same_digits_2b + f"{nir_key(same_digits_2a):02d}")
    assert not is_valid_ins(same_digits_2a + f"{nir_key(same_digits_2b):02d}")


@pytest.mark.charter("CH-4.1.6")
@pytest.mark.parametrize("ins", ["295109912611193", "253072B07300470", "253072A07300443"])
def test_CH4_1_6_ins_published_examples_are_valid(ins: str) -> None:
    """Examples documented by python-stdnum (fr.nir), cross-checking the Corsica substitution."""
    assert is_valid_ins(ins)


@pytest.mark.charter("CH-4.1.6")
def test_CH4_1_6_ins_accepts_spaces_and_lower_case_corsica_letters() -> None:
    ins = with_key(CORSE_DU_SUD)
    spaced = " ".join([ins[0], ins[1:3], ins[3:5], ins[5:7], ins[7:10], ins[10:13], ins[13:]])
    assert is_valid_ins(spaced)
    assert is_valid_ins(spaced.lower())
    assert is_valid_ins(f"\u00a0{spaced}\u202f")
    assert normalise_ins(spaced.lower()) == ins


@pytest.mark.charter("CH-4.1.6")
def test_CH4_1_6_ins_wrong_key_is_refused_with_a_french_message() -> None:
    good = with_key(MAN_PARIS)
    wrong = good[:-2] + f"{(reference_key(MAN_PARIS) % 97) + 1:02d}"
    assert not is_valid_ins(wrong)
    with pytest.raises(InvalidIns, match="clé"):
        normalise_ins(wrong)


@pytest.mark.charter("CH-4.1.6")
def test_CH4_1_6_ins_single_digit_typo_is_caught() -> None:
    good = with_key(WOMAN_ABROAD)
    for index in range(1, 13):
        typo = good[:index] + str((int(good[index]) + 1) % 10) + good[index + 1:]
        assert not is_valid_ins(typo), typo


@pytest.mark.charter("CH-4.1.6")
@pytest.mark.parametrize("length", [13, 14, 16, 17])
def test_CH4_1_6_ins_bad_length(length: int) -> None:
    ins = (with_key(MAN_PARIS) * 2)[:length]
    assert not is_valid_ins(ins)
    with pytest.raises(InvalidIns, match="15 caractères"):
        normalise_ins(ins)


@pytest.mark.charter("CH-4.1.6")
@pytest.mark.parametrize("first", ["0", "5", "6", "9"])
def test_CH4_1_6_ins_first_digit_outside_sex_codes(first: str) -> None:
    body = first + MAN_PARIS[1:]
    assert not is_valid_ins(with_key(body))
    with pytest.raises(InvalidIns, match="premier chiffre"):
        normalise_ins(with_key(body))


@pytest.mark.charter("CH-4.1.6")
@pytest.mark.parametrize("first", ["1", "2", "3", "4", "7", "8"])
def test_CH4_1_6_ins_sex_and_provisional_codes_accepted(first: str) -> None:
    assert is_valid_ins(with_key(first + MAN_PARIS[1:]))


@pytest.mark.charter("CH-4.1.6")
@pytest.mark.parametrize(
    "body",
    [
        "1" "85" "05" "2C" "056" "084",  # only 2A and 2B exist
        "1" "85" "05" "3A" "056" "084",
        "1" "85" "05" "A2" "056" "084",
        "1" "8A" "05" "75" "056" "084",  # letter in the year
        "1" "85" "05" "75" "0B6" "084",  # letter in the commune
        "1" "85" "05" "75" "056" "08A",  # letter in the order number
        "1" "85" "05" "75" "056" "08\u0664",  # Arabic-Indic digit four
    ],
)
def test_CH4_1_6_ins_letters_only_at_the_department(body: str) -> None:
    with pytest.raises(InvalidIns):
        nir_key(body)
    assert not is_valid_ins(body + "01")


@pytest.mark.charter("CH-4.1.6")
def test_CH4_1_6_ins_key_must_be_two_digits() -> None:
    body = MAN_PARIS
    assert not is_valid_ins(body + "A1")
    with pytest.raises(InvalidIns, match="2 chiffres"):
        normalise_ins(body + "A1")
    assert not is_valid_ins(body + "00")  # a key is 01..97, never 00


@pytest.mark.charter("CH-4.1.6")
@pytest.mark.parametrize("value", [None, 185057505608436, b"185057505608436", ""])
def test_CH4_1_6_ins_non_text_or_empty_is_invalid(value: object) -> None:
    assert not is_valid_ins(value)


@pytest.mark.charter("CH-4.1.6")
def test_CH4_1_6_nir_key_refuses_bad_body_length() -> None:
    with pytest.raises(InvalidIns, match="13 caractères"):
        nir_key(MAN_PARIS[:-1])


@pytest.mark.charter("CH-8.1")
def test_CH8_1_only_a_qualified_identity_may_share_the_ins() -> None:
    assert may_share_ins(IdentityStatus.QUALIFIED)
    assert may_share_ins("qualified")
    for status in ("provisional", "recovered", "validated", "qualifiée", "QUALIFIED", "", None, 3):
        assert not may_share_ins(status), status


@pytest.mark.charter("CH-4.1.6")
def test_CH4_1_6_identity_status_codes_and_french_labels() -> None:
    assert [status.value for status in IdentityStatus] == ["provisional", "recovered", "validated", "qualified"]
    assert identity_status_label("provisional") == "provisoire"
    assert identity_status_label("recovered") == "récupérée"
    assert identity_status_label(IdentityStatus.VALIDATED) == "validée"
    assert identity_status_label("qualified") == "qualifiée"
    assert set(IDENTITY_STATUS_LABELS) == set(IdentityStatus)
    with pytest.raises(ValueError, match="statut d'identité inconnu"):
        identity_status_label("certified")


@pytest.mark.charter("CH-4.1.6")
def test_CH4_1_6_identity_traits_complete() -> None:
    complete = {
        "birth_name": "MARTIN",
        "first_names": ["Jeanne", "Marie"],
        "birth_date": "1985-05-12",
        "sex": "F",
        "birth_place_code": "2A004",
        "used_name": "",  # optional trait, ignored
    }
    assert identity_traits_complete(complete) == []


@pytest.mark.charter("CH-4.1.6")
def test_CH4_1_6_identity_traits_missing_blank_or_empty_are_reported_in_order() -> None:
    traits = {"birth_name": "  ", "first_names": [" ", ""], "sex": None, "birth_place_code": "99350"}
    assert identity_traits_complete(traits) == ["birth_name", "first_names", "birth_date", "sex"]
    assert identity_traits_complete({}) == list(MANDATORY_TRAITS)
    assert set(TRAIT_LABELS) == set(MANDATORY_TRAITS)


@pytest.mark.charter("CH-3.1")
@pytest.mark.parametrize("payload", ["1000000000", "1000517314", "1012345678", "1099999999"])
def test_CH3_1_rpps_with_generated_luhn_key_is_valid(payload: str) -> None:
    rpps = payload + luhn_check_digit(payload)
    assert is_valid_rpps(rpps)
    assert is_valid_rpps(f"{rpps[:2]} {rpps[2:7]} {rpps[7:]}")


@pytest.mark.charter("CH-3.1")
def test_CH3_1_rpps_every_wrong_check_digit_is_refused() -> None:
    payload = "1000517314"
    good = luhn_check_digit(payload)
    for digit in "0123456789":
        assert is_valid_rpps(payload + digit) == (digit == good)


@pytest.mark.charter("CH-3.1")
@pytest.mark.parametrize(
    "text", ["", "1000000000", "100000000000", "8" + "10000000008", "1000O000008", None, 10000000008]
)
def test_CH3_1_rpps_bad_format(text: object) -> None:
    assert not is_valid_rpps(text)


def test_luhn_reference_values() -> None:
    assert luhn_is_valid("79927398713")  # the classic worked example of the Luhn algorithm
    assert not luhn_is_valid("79927398710")
    assert not luhn_is_valid("")
    assert not luhn_is_valid("7992 7398713")
