"""Who may be assigned a case (CH-3.1 authorization and insurance, CH-3.2 radiologists established abroad).

Expiry dates are the LAST day of validity, inclusive, as printed on French certificates ("valable
jusqu'au 31/12/2026"): on that day the radiologist may still be assigned; from the next day on he
may not. Dates are calendar dates in France (Europe/Paris): callers convert their UTC instant
before asking, which is why a datetime is refused here.

Checking at assignment is what makes the documents be on file "before any exposure of the
patient" (CH-3.2): assignment precedes acquisition. Callers check again with the acquisition date
when acquisition happens on a later day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from engine.domain.charter import enforces
from engine.domain.identity import is_valid_rpps


@dataclass(frozen=True)
class RadiologistCredentials:
    """What the organisation holds on file for a radiologist.

    For a radiologist established outside France (extraterritorial), the expiry dates are those of his
    foreign authorization to practise and of his professional liability (RCP) insurance; an RPPS
    number is then optional.
    """

    rpps: str | None
    authorization_expires: date | None
    insurance_expires: date | None
    extraterritorial: bool = False
    foreign_authorization_on_file: bool = False
    foreign_insurance_on_file: bool = False


def _french(day: date) -> str:
    return day.strftime("%d/%m/%Y")


@enforces("CH-3.1", "CH-3.2")
def credential_problems(creds: RadiologistCredentials, on: date) -> list[str]:
    """Every reason, in French, why this radiologist cannot be assigned a case on this date (empty: none)."""
    if isinstance(on, datetime) or not isinstance(on, date):
        raise TypeError("`on` must be a calendar date (datetime.date) in France, not a datetime")
    problems: list[str] = []

    if creds.rpps is None or not creds.rpps.strip():
        if not creds.extraterritorial:
            problems.append("Numéro RPPS absent : saisissez le numéro RPPS du radiologue (11 chiffres).")
    elif not is_valid_rpps(creds.rpps):
        problems.append(
            "Numéro RPPS invalide : il compte 11 chiffres dont une clé de contrôle ; vérifiez la saisie."
        )

    if creds.authorization_expires is None:
        problems.append(
            "Autorisation d'exercice absente : enregistrez l'autorisation d'exercer et sa date de fin de validité."
        )
    elif creds.authorization_expires < on:
        problems.append(
            f"Autorisation d'exercice expirée (valable jusqu'au {_french(creds.authorization_expires)}) : "
            "enregistrez l'autorisation renouvelée."
        )

    if creds.insurance_expires is None:
        problems.append(
            "Assurance en responsabilité civile professionnelle (RCP) absente : "
            "enregistrez l'attestation couvrant la téléradiologie et sa date de fin de validité."
        )
    elif creds.insurance_expires < on:
        problems.append(
            f"Assurance RCP expirée (valable jusqu'au {_french(creds.insurance_expires)}) : "
            "enregistrez l'attestation renouvelée."
        )

    if creds.extraterritorial:
        if not creds.foreign_authorization_on_file:
            problems.append(
                "Radiologue établi hors de France : l'autorisation d'exercer délivrée dans son pays "
                "d'établissement doit figurer au dossier avant toute exposition du patient (rayons X comme IRM)."
            )
        if not creds.foreign_insurance_on_file:
            problems.append(
                "Radiologue établi hors de France : l'attestation d'assurance RCP doit figurer au dossier "
                "avant toute exposition du patient (rayons X comme IRM)."
            )
    return problems


@enforces("CH-3.1", "CH-3.2")
def may_be_assigned(creds: RadiologistCredentials, on: date) -> bool:
    """True when credential_problems finds nothing on this date."""
    return not credential_problems(creds, on)


EXTRATERRITORIAL_NOTICE = (
    "Le radiologue qui réalise cet acte est établi hors de France : l'acte n'est pas pris en charge "
    "par l'assurance maladie obligatoire française."
)


@enforces("CH-3.2", "CH-4.1.7")
def extraterritorial_notice(creds: RadiologistCredentials) -> str | None:
    """What the patient must be told when the radiologist is established abroad; None otherwise."""
    return EXTRATERRITORIAL_NOTICE if creds.extraterritorial else None
