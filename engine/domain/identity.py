"""Identifiers of patients and practitioners (CH-4.1.6 identity vigilance, CH-8.1 secure identification).

- INS: the "matricule INS" is the person's NIR (or NIA): 13 characters then a 2-digit key,
  key = 97 - (number mod 97). For people born in Corsica the department (characters 6-7) is
  "2A" or "2B"; they count as 19 and 18 when computing the key.
- Identity status of the INS referential (RNIV): provisional, recovered, validated, qualified.
  Only a qualified identity lets the INS be used and shared in exchanges.
- RPPS: 11 digits, the last one a Luhn check digit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum

from engine.domain.charter import enforces

NIR_BODY_LENGTH = 13
INS_LENGTH = 15
RPPS_LENGTH = 11

# First character: 1/2 (NIR, men/women), 3/4 (older provisional registrations of people born abroad),
# 7/8 (NIA, temporary numbers given while a NIR is being assigned).
SEX_DIGITS = "123478"
# Department position (characters 6-7): Corsica keeps its letters; they stand for these numbers in the key.
CORSICA_KEY_SUBSTITUTES = {"2A": "19", "2B": "18"}

# ASCII digits only: `\d` would also accept Arabic-Indic and other Unicode digits.
_NIR_BODY = re.compile(r"^[123478][0-9]{4}(?:[0-9]{2}|2[AB])[0-9]{6}$")
_DIGITS = re.compile(r"^[0-9]+$")


class InvalidIns(ValueError):
    """An INS (or the 13-character NIR body) that is malformed or fails its key check."""


def _compact(text: str) -> str:
    """Drop every whitespace (spaces, non-breaking spaces) and upper-case the Corsica letters."""
    return "".join(text.split()).upper()


def _check_body(body: str) -> None:
    if len(body) != NIR_BODY_LENGTH:
        raise InvalidIns(f"le NIR doit compter {NIR_BODY_LENGTH} caractères avant la clé ({len(body)} saisis)")
    if body[0] not in SEX_DIGITS:
        raise InvalidIns("le premier chiffre de l'INS doit être 1, 2, 3, 4, 7 ou 8 : vérifiez la saisie")
    if _NIR_BODY.match(body) is None:
        raise InvalidIns(
            "l'INS ne contient que des chiffres, sauf 2A ou 2B (Corse) à la place du département : vérifiez la saisie"
        )


@enforces("CH-4.1.6", "CH-8.1")
def nir_key(nir13: str) -> int:
    """The 2-digit key (1..97) of a 13-character NIR body; Corsica 2A/2B count as 19/18."""
    body = _compact(nir13)
    _check_body(body)
    department = body[5:7]
    if department in CORSICA_KEY_SUBSTITUTES:
        body = body[:5] + CORSICA_KEY_SUBSTITUTES[department] + body[7:]
    return 97 - int(body) % 97


@enforces("CH-4.1.6", "CH-8.1")
def normalise_ins(ins: str) -> str:
    """Return the INS as 15 characters without spaces, or raise InvalidIns with a French message."""
    if not isinstance(ins, str):
        raise InvalidIns("l'INS doit être saisi sous forme de texte (15 caractères)")
    compact = _compact(ins)
    if len(compact) != INS_LENGTH:
        raise InvalidIns(
            f"l'INS compte {INS_LENGTH} caractères (13 + clé de 2 chiffres), espaces non compris ; "
            f"{len(compact)} saisis"
        )
    body, key = compact[:NIR_BODY_LENGTH], compact[NIR_BODY_LENGTH:]
    _check_body(body)
    if _DIGITS.match(key) is None:
        raise InvalidIns("la clé de l'INS (2 derniers caractères) doit être composée de 2 chiffres")
    if int(key) != nir_key(body):
        raise InvalidIns("la clé de l'INS ne correspond pas au numéro : vérifiez chaque chiffre")
    return compact


@enforces("CH-4.1.6", "CH-8.1")
def is_valid_ins(ins: object) -> bool:
    """True for a well-formed INS whose key matches (15 characters, spaces allowed anywhere)."""
    if not isinstance(ins, str):
        return False
    try:
        normalise_ins(ins)
    except InvalidIns:
        return False
    return True


class IdentityStatus(StrEnum):
    """Status of a patient identity in the INS referential (codes stored in data)."""

    PROVISIONAL = "provisional"
    RECOVERED = "recovered"
    VALIDATED = "validated"
    QUALIFIED = "qualified"


IDENTITY_STATUS_LABELS: dict[str, str] = {
    IdentityStatus.PROVISIONAL: "provisoire",
    IdentityStatus.RECOVERED: "récupérée",
    IdentityStatus.VALIDATED: "validée",
    IdentityStatus.QUALIFIED: "qualifiée",
}


def identity_status_label(code: str) -> str:
    """French label of an identity status code, e.g. "qualified" -> "qualifiée"."""
    try:
        return IDENTITY_STATUS_LABELS[code]
    except (KeyError, TypeError):
        raise ValueError(
            f"statut d'identité inconnu : {code!r} (attendu : provisional, recovered, validated ou qualified)"
        ) from None


@enforces("CH-4.1.6", "CH-8.1")
def may_share_ins(status: object) -> bool:
    """Only a qualified identity lets the INS be used in exchanges and documents; anything else is False."""
    return isinstance(status, str) and status == IdentityStatus.QUALIFIED


MANDATORY_TRAITS = ("birth_name", "first_names", "birth_date", "sex", "birth_place_code")
TRAIT_LABELS: dict[str, str] = {
    "birth_name": "nom de naissance",
    "first_names": "prénom(s) de naissance",
    "birth_date": "date de naissance",
    "sex": "sexe",
    "birth_place_code": "code INSEE du lieu de naissance",
}


def _is_blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple):
        return all(_is_blank(item) for item in value)
    return False


@enforces("CH-4.1.6")
def identity_traits_complete(traits: Mapping[str, object]) -> list[str]:
    """The mandatory identity traits that are missing or blank, in a fixed order (empty list: complete).

    A list of first names counts as missing when it is empty or holds only blank names.
    French labels for the returned codes are in TRAIT_LABELS.
    """
    return [name for name in MANDATORY_TRAITS if _is_blank(traits.get(name))]


def luhn_is_valid(digits: str) -> bool:
    """Luhn (mod 10) check over a string of ASCII digits, the last being the check digit."""
    if _DIGITS.match(digits) is None:
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


@enforces("CH-3.1", "CH-8.1")
def is_valid_rpps(text: object) -> bool:
    """An RPPS number: 11 ASCII digits (spaces allowed) with a valid Luhn check digit.

    The 12-character national identifier (IDNPS, "8" + RPPS) is not an RPPS number and is refused.
    """
    if not isinstance(text, str):
        return False
    compact = "".join(text.split())
    return len(compact) == RPPS_LENGTH and luhn_is_valid(compact)
