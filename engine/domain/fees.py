"""How the value of a teleradiology act is shared (CH-7, the G4's position on remuneration).

- CH-7.1 Only CCAM acts: split_fee takes a CcamAct (a code of 4 letters and 3 digits from a CCAM
  table) and nothing else. There is deliberately no function taking a flat rate.
- CH-7.2 CT and MRI (families "scanner", "irm"): the radiologist receives the whole intellectual
  fee (price - technical share) plus 20 % of the technical share; the site keeps the rest.
- CH-7.3 Conventional radiology (family "radiologie", mammography included): 32 % of the price is
  the intellectual part, all the radiologist's, plus 20 % of the operating part (the other 68 %).
- CH-7.4 Teleexpertise: the tele-expert receives a specific fee for the second opinion, instead of a
  share of the act, which the local team performed, read and billed. The amount is a SETTING.
- CH-7.5 On-call duty: the site's on-call fee the caller attributes to this act is added whole, on
  top, and paid by the site.
- CH-7.6 Transmission costs are borne by the requesting site: they are taken from the site's net,
  never from the radiologist's share (there is no parameter that could do so).

Money is Decimal, rounded to the cent with ROUND_HALF_UP; each rounded share is taken from its whole
and the other party gets the remainder, so the act's price is always shared to the exact cent.
Floats are refused: pass Decimal, int or a string such as "12.50".
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from importlib import resources
from pathlib import Path

from engine.domain.radioprotection import CR, CT, DX, MG, MR, XR

CT_FAMILY, MRI_FAMILY, CONVENTIONAL_FAMILY = "scanner", "irm", "radiologie"
_FAMILY_MODALITIES = {CT_FAMILY: {CT}, MRI_FAMILY: {MR}, CONVENTIONAL_FAMILY: {XR, CR, DX, MG}}

CROSS_SECTIONAL_TECHNICAL_RATE = Decimal("0.20")  # CH-7.2: share of the technical fee for the radiologist
CONVENTIONAL_INTELLECTUAL_RATE = Decimal("0.32")  # CH-7.3: intellectual part of a conventional act
CONVENTIONAL_OPERATING_RATE = Decimal("0.20")  # CH-7.3: share of the operating part (68 %) for the radiologist

# SETTING (CH-7.4): fee of a second opinion. The charter only says it is specific and refers to the
# fee of a one-off expert opinion in the conventional care pathway; the organisation fixes the amount
# in its remuneration document (CH-6.4). Illustrative default, not an official tariff.
DEFAULT_TELEEXPERTISE_FEE_EUR = Decimal("50.00")

RADIOLOGIST, SITE = "radiologist", "site"
# CH-6.4, CH-7.1: words of a flat-rate, bonus or productivity line, refused in a CCAM label or a statement line
REFUSED_FEE_WORDS = ("forfait", "flat_rate", "productivite", "productivité", "productivity", "prime", "rendement")
CCAM_COLUMNS = ("code", "label", "modality", "family", "price_eur", "technical_share_eur")
SAMPLE_TABLE = "ccam_sample.csv"

_CENT = Decimal("0.01")
_CCAM_CODE = re.compile(r"^[A-Z]{4}[0-9]{3}$")
_PLAIN_AMOUNT = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_TABLE_AMOUNT = Decimal("100000")  # euros, a price or a technical share of a CCAM table

Money = Decimal | int | str


class FeeError(ValueError):
    """An amount or an act the fee rules cannot work with."""


class CcamTableError(ValueError):
    """A CCAM table file that cannot be loaded."""


def _cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _money(value: object, what: str) -> Decimal:
    """A non-negative amount in euros, rounded to the cent."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise TypeError(f"{what}: pass a Decimal, an int or a str, not {type(value).__name__}")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise FeeError(f"{what} : montant illisible {value!r} (exemple : 12.50)") from None
    if not amount.is_finite():
        raise FeeError(f"{what} : montant illisible {value!r} (exemple : 12.50)")
    if amount < 0:
        raise FeeError(f"{what} : le montant ne peut pas être négatif ({value})")
    return _cents(amount)


@dataclass(frozen=True)
class CcamAct:
    """One act of a CCAM table; price_eur is the whole value shared, technical share included."""

    code: str
    label: str
    modality: str
    family: str
    price_eur: Decimal
    technical_share_eur: Decimal | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or _CCAM_CODE.match(self.code) is None:
            raise FeeError(f"code CCAM invalide : {self.code!r} (4 lettres majuscules et 3 chiffres, ex. ZBQK002)")
        price = _money(self.price_eur, f"prix de l'acte {self.code}")
        if price == 0:
            raise FeeError(f"prix de l'acte {self.code} : il doit être positif")
        object.__setattr__(self, "price_eur", price)
        if self.technical_share_eur is not None:
            share = _money(self.technical_share_eur, f"part technique de l'acte {self.code}")
            if share > price:
                raise FeeError(f"part technique de l'acte {self.code} : elle dépasse le prix de l'acte")
            object.__setattr__(self, "technical_share_eur", share)
        allowed = _FAMILY_MODALITIES.get(self.family)
        if allowed is not None and self.modality not in allowed:
            raise FeeError(
                f"acte {self.code} : la modalité {self.modality!r} ne correspond pas à la famille {self.family!r}"
            )
        if self.family in (CT_FAMILY, MRI_FAMILY) and self.technical_share_eur is None:
            raise FeeError(f"acte {self.code} : un acte de scanner ou d'IRM doit indiquer sa part technique")


@dataclass(frozen=True)
class FeeLine:
    """One line of a split: `amount_eur` is added to (or, negative, taken from) `payee`'s total."""

    key: str
    label: str
    payee: str
    amount_eur: Decimal


@dataclass(frozen=True)
class FeeSplit:
    """radiologist_eur and site_eur are the sums of their lines in breakdown.

    site_eur is the requesting site's net: its share of the act, minus the on-call fee it pays the
    radiologist, minus the transmission costs it bears; it may be negative. For telediagnosis,
    radiologist_eur + site_eur + transmission costs == the act's price. The teleexpertise fee is
    not taken from the site: the charter does not say who pays it (the convention does).
    """

    radiologist_eur: Decimal
    site_eur: Decimal
    breakdown: tuple[FeeLine, ...]


def _act_lines(act: CcamAct) -> list[FeeLine]:
    if act.family in (CT_FAMILY, MRI_FAMILY):
        technical = act.technical_share_eur if act.technical_share_eur is not None else Decimal(0)
        to_radiologist = _cents(technical * CROSS_SECTIONAL_TECHNICAL_RATE)
        return [
            FeeLine("intellectual_fee", "Forfait intellectuel (intégralité)", RADIOLOGIST, act.price_eur - technical),
            FeeLine("technical_share_radiologist", "Forfait technique, part du radiologue (20 %)", RADIOLOGIST,
                    to_radiologist),
            FeeLine("technical_share_site", "Forfait technique, part du site (80 %)", SITE, technical - to_radiologist),
        ]
    if act.family == CONVENTIONAL_FAMILY:
        intellectual = _cents(act.price_eur * CONVENTIONAL_INTELLECTUAL_RATE)
        operating = act.price_eur - intellectual
        to_radiologist = _cents(operating * CONVENTIONAL_OPERATING_RATE)
        return [
            FeeLine("intellectual_fee", "Part intellectuelle (32 % de l'acte)", RADIOLOGIST, intellectual),
            FeeLine("operating_share_radiologist", "Frais de fonctionnement, part du radiologue (20 % des 68 %)",
                    RADIOLOGIST, to_radiologist),
            FeeLine("operating_share_site", "Frais de fonctionnement, part du site", SITE, operating - to_radiologist),
        ]
    raise FeeError(
        f"acte {act.code} (famille {act.family!r}) : la charte ne fixe de partage que pour le scanner, l'IRM "
        "et la radiologie conventionnelle ; fixez ce cas dans la convention de rémunération"
    )


def split_fee(
    act: CcamAct,
    *,
    teleexpertise: bool = False,
    on_call_fee_eur: Money = 0,
    teleexpertise_fee_eur: Money = DEFAULT_TELEEXPERTISE_FEE_EUR,
    transmission_costs_eur: Money = 0,
) -> FeeSplit:
    """Share one CCAM act between the radiologist and the requesting site.

    on_call_fee_eur: the site's on-call fee attributed to this act (the caller decides how a shift's
    fee maps to acts); added whole to the radiologist, without cap.
    teleexpertise: the radiologist is the tele-expert giving a second opinion on `act`; he receives
    teleexpertise_fee_eur (a setting, must be positive) instead of a share of the act.
    transmission_costs_eur: link set-up and subscription costs; taken from the site's net only.
    """
    if not isinstance(act, CcamAct):
        raise TypeError("split_fee takes a CcamAct: remuneration is based on CCAM acts only, never a flat rate")
    on_call = _money(on_call_fee_eur, "forfait de permanence des soins")
    transmission = _money(transmission_costs_eur, "frais de télétransmission")
    if teleexpertise:
        fee = _money(teleexpertise_fee_eur, "rémunération de la téléexpertise")
        if fee == 0:
            raise FeeError("rémunération de la téléexpertise : la charte prévoit une valorisation spécifique, "
                           "non nulle")
        lines = [FeeLine("teleexpertise_fee", f"Téléexpertise (second avis, acte {act.code})", RADIOLOGIST, fee)]
    else:
        lines = _act_lines(act)
    if on_call:
        lines.append(FeeLine("on_call_fee", "Forfait de permanence des soins (intégralité)", RADIOLOGIST, on_call))
        lines.append(FeeLine("on_call_fee_paid", "Forfait de permanence des soins versé au radiologue", SITE,
                             -on_call))
    if transmission:
        lines.append(FeeLine("transmission_costs", "Frais de télétransmission, à la charge du site", SITE,
                             -transmission))
    return FeeSplit(
        radiologist_eur=sum((line.amount_eur for line in lines if line.payee == RADIOLOGIST), Decimal("0.00")),
        site_eur=sum((line.amount_eur for line in lines if line.payee == SITE), Decimal("0.00")),
        breakdown=tuple(lines),
    )


def _read_table(path: str | Path | None) -> tuple[str, str]:
    if path is None:
        source = resources.files("engine.domain") / "data" / SAMPLE_TABLE
        return source.read_text(encoding="utf-8-sig"), SAMPLE_TABLE
    file = Path(path)
    try:
        return file.read_text(encoding="utf-8-sig"), file.name
    except (OSError, UnicodeDecodeError) as error:
        raise CcamTableError(f"table CCAM illisible ({file}) : {error}") from error


def _table_amount(text: str, where: str) -> Decimal:
    """An amount of a CCAM table written plainly ("21.28": no exponent, no "NaN"), below MAX_TABLE_AMOUNT."""
    if _PLAIN_AMOUNT.match(text) is None:
        raise CcamTableError(f"{where} : montant illisible « {text[:20]} » (exemple : 21.28)")
    amount = Decimal(text)
    if amount >= MAX_TABLE_AMOUNT:
        raise CcamTableError(f"{where} : montant hors limite « {text[:20]} » (moins de 100 000 €)")
    return amount


def load_ccam(path: str | Path | None = None) -> dict[str, CcamAct]:
    """Load a CCAM table (UTF-8 CSV with CCAM_COLUMNS) keyed by code; the shipped SAMPLE table by default.

    technical_share_eur is required for "scanner" and "irm" acts and may be left empty otherwise. Amounts are written
    plainly ("21.28", no exponent) and below 100,000 €; control characters (NUL...) of a field become spaces.
    """
    text, name = _read_table(path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [column for column in CCAM_COLUMNS if column not in (reader.fieldnames or ())]
    if missing:
        raise CcamTableError(f"table CCAM {name} : colonnes manquantes : {', '.join(missing)}")
    acts: dict[str, CcamAct] = {}
    for row in reader:
        where = f"table CCAM {name}, ligne {reader.line_num}"
        if row.get(None):  # DictReader puts surplus fields under None
            raise CcamTableError(f"{where} : trop de colonnes (un prix s'écrit avec un point : 21.28)")
        values = {column: " ".join(_CONTROL.sub(" ", row.get(column) or "").split()) for column in CCAM_COLUMNS}
        try:
            if not values["price_eur"]:
                raise FeeError("prix absent")
            act = CcamAct(
                code=values["code"],
                label=values["label"],
                modality=values["modality"].upper(),
                family=values["family"].lower(),
                price_eur=_table_amount(values["price_eur"], where),
                technical_share_eur=_table_amount(values["technical_share_eur"], where)
                if values["technical_share_eur"] else None,
            )
        except FeeError as error:
            raise CcamTableError(f"{where} : {error}") from None
        if act.code in acts:
            raise CcamTableError(f"{where} : le code {act.code} figure deux fois")
        acts[act.code] = act
    if not acts:
        raise CcamTableError(f"table CCAM {name} : aucun acte")
    return acts
