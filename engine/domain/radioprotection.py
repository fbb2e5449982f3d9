"""Radioprotection prompts for a request (CH-4.1.3): ionizing technique, children, women of childbearing age.

Modalities are DICOM Modality codes (0008,0060), upper case, plus XR, the usual generic code for
conventional radiography (DICOM splits it into CR and DX). "PET" is accepted for PT.

The rules here only raise flags; the radiologist decides (CH-4.1.3):
- minor: under AGE_OF_MAJORITY (18) on the exam date;
- childbearing age: a woman aged CHILDBEARING_AGE_MIN..CHILDBEARING_AGE_MAX (15..49) inclusive. When
  the sex is neither "F" nor "M" (unknown, other, missing) the patient is treated like a woman, so the
  pregnancy question is asked rather than skipped;
- pregnancy status required: childbearing age AND ionizing modality;
- substitution candidates: for an ionizing modality and a minor or a patient of childbearing age,
  ultrasound and MRI are offered as non-ionizing alternatives, ("US", "MR"); otherwise none. Whether
  one suits the clinical question is the radiologist's decision, not this module's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from engine.domain.charter import enforces

CT = "CT"  # scanner (tomodensitométrie)
XR = "XR"  # radiographie conventionnelle (generic)
CR = "CR"  # radiographie numérisée (DICOM)
DX = "DX"  # radiographie numérique (DICOM)
MG = "MG"  # mammographie
XA = "XA"  # angiographie
RF = "RF"  # radioscopie
NM = "NM"  # médecine nucléaire (scintigraphie)
PT = "PT"  # TEP (PET)
US = "US"  # échographie
MR = "MR"  # IRM

IONIZING_MODALITIES = frozenset({CT, XR, CR, DX, MG, XA, RF, NM, PT})
NON_IONIZING_MODALITIES = frozenset({US, MR})
MODALITIES = IONIZING_MODALITIES | NON_IONIZING_MODALITIES
_ALIASES = {"PET": PT}
NON_IONIZING_ALTERNATIVES = (US, MR)

AGE_OF_MAJORITY = 18
CHILDBEARING_AGE_MIN = 15
CHILDBEARING_AGE_MAX = 49

FEMALE, MALE = "F", "M"

NOT_PREGNANT, PREGNANT, UNKNOWN = "not_pregnant", "pregnant", "unknown"
PREGNANCY_STATUSES = (NOT_PREGNANT, PREGNANT, UNKNOWN)


class UnknownModality(ValueError):
    """A modality code this module does not know: it cannot say whether it is ionizing."""


def normalise_modality(modality: str) -> str:
    """Upper-cased, stripped DICOM modality code ("pet" -> "PT"); raise UnknownModality otherwise."""
    code = modality.strip().upper() if isinstance(modality, str) else ""
    code = _ALIASES.get(code, code)
    if code not in MODALITIES:
        raise UnknownModality(
            f"modalité inconnue : {modality!r} (attendu par exemple CT, XR, MG, NM, PT, US ou MR)"
        )
    return code


@enforces("CH-4.1.3")
def is_ionizing(modality: str) -> bool:
    """True for X-ray and nuclear techniques, False for ultrasound and MRI; unknown codes raise."""
    return normalise_modality(modality) in IONIZING_MODALITIES


def age_on(birth_date: date, on: date) -> int:
    """Age in completed years on a date. Someone born on 29 February gains a year on 1 March in common years."""
    for name, value in (("birth_date", birth_date), ("on", on)):
        if isinstance(value, datetime) or not isinstance(value, date):
            raise TypeError(f"`{name}` must be a datetime.date")
    if on < birth_date:
        raise ValueError("la date de naissance est postérieure à la date de l'examen : vérifiez-la")
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


@dataclass(frozen=True)
class RadioprotectionFlags:
    ionizing: bool
    minor: bool
    childbearing_age: bool
    pregnancy_status_required: bool
    substitution_candidates: tuple[str, ...]


@enforces("CH-4.1.3")
def radioprotection_flags(modality: str, sex: str | None, birth_date: date, on: date) -> RadioprotectionFlags:
    """Flags the request form and the radiologist's justification step show for this patient and modality."""
    ionizing = is_ionizing(modality)
    age = age_on(birth_date, on)
    minor = age < AGE_OF_MAJORITY
    may_be_female = (sex or "").strip().upper() != MALE
    childbearing_age = may_be_female and CHILDBEARING_AGE_MIN <= age <= CHILDBEARING_AGE_MAX
    return RadioprotectionFlags(
        ionizing=ionizing,
        minor=minor,
        childbearing_age=childbearing_age,
        pregnancy_status_required=childbearing_age and ionizing,
        substitution_candidates=NON_IONIZING_ALTERNATIVES if ionizing and (minor or childbearing_age) else (),
    )


@enforces("CH-4.1.3")
def pregnancy_status_problem(flags: RadioprotectionFlags, pregnancy_status: str | None) -> str | None:
    """A French message when the pregnancy status is required but missing or unknown, or not a known value.

    "pregnant" is an answer, not a problem: the radiologist then weighs substitution.
    """
    if pregnancy_status is not None and pregnancy_status not in PREGNANCY_STATUSES:
        return "Statut de grossesse non reconnu : choisissez « non enceinte », « enceinte » ou « inconnu »."
    if flags.pregnancy_status_required and pregnancy_status in (None, UNKNOWN):
        return (
            "Statut de grossesse requis avant un examen irradiant chez une patiente en âge de procréer : "
            "précisez si la patiente est enceinte ou non (test de grossesse en cas de doute)."
        )
    return None
