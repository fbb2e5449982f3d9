"""Reader of the CNAM's own CCAM release (CH-7.1): the Excel file of the CCAM published on ameli.fr (.xls; .xlsx or
.ods read the same way), read with python-calamine, keeping the imaging acts Telerad values as the domain's CcamActs.

What it expects (docs/fees.md, engine/domain/data/README.md):

- The first sheet that has a header row: a row with a cell "Code", a cell "Texte" (or "Libellé") and a cell
  containing "Tarif"; the comparison ignores accents, case and spacing. "Activité" and "Phase" are used when present.
  Rows above the header (titles, version, date) are ignored.
- The tariff column is the first whose header contains "tarif" and "secteur 1" or "OPTAM" without "hors secteur" or
  "non adhérent" (the tariff of sector 1 / OPTAM members); else the first containing "tarif".
- Below the header, each row is one of:
  - blank: ignored;
  - without a CCAM code in the Code column (chapter numbers such as "01.01.01", notes, titles): skipped, counted as
    ``no_code``;
  - an act whose label does not begin with "Scanographie" (CT, family scanner), "Remnographie" (MR, irm),
    "Mammographie" (MG, radiologie) or "Radiographie" (XR, radiologie): skipped, ``not_imaging``;
  - an imaging act of another activity than 1 or another phase than 0 (blank counts as 1 and 0): skipped,
    ``other_activity_phase``;
  - an imaging act without a tariff (empty, 0, "Non pris en charge" or any text without a digit): skipped,
    ``no_tariff``;
  - otherwise kept. A row with a tariff whose Code cell is not a CCAM code (4 letters and 3 digits)
    or a chapter number, a tariff with digits that is not an amount, or a code kept twice refuses the whole file.
- The CCAM tariff of a CT or MRI act is the intellectual act only: the technical fee is billed apart, agreed in the
  remuneration document. Its price is tariff + the technical fee given, and its technical share that fee; a file
  with CT (MRI) acts and no CT (MRI) fee is refused."""

from __future__ import annotations

import io
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import python_calamine

from engine.domain.fees import CONVENTIONAL_FAMILY, CT_FAMILY, MRI_FAMILY, CcamAct, CcamTableError, FeeError
from engine.domain.radioprotection import CT, MG, MR, XR

CNAM_EXCEL = "cnam-excel"
SUFFIXES = (".xls", ".xlsx", ".ods")
# the label's first word -> (modality, family); radiography is XR as in the sample table
IMAGING = {"scanographie": (CT, CT_FAMILY), "remnographie": (MR, MRI_FAMILY),
           "mammographie": (MG, CONVENTIONAL_FAMILY), "radiographie": (XR, CONVENTIONAL_FAMILY)}
SKIP_REASONS = ("no_code", "not_imaging", "other_activity_phase", "no_tariff")

_CODE = re.compile(r"^[A-Z]{4}[0-9]{3}$")
_CHAPTER = re.compile(r"^[0-9]{1,2}(\.[0-9]{1,2})*\.?$")
_OLE, _ZIP = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"PK\x03\x04"
Cell = object


@dataclass(frozen=True)
class CnamTable:
    """The acts kept, keyed by code, with what was kept per family and skipped per reason (SKIP_REASONS)."""

    acts: dict[str, CcamAct]
    kept: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    sheet: str = ""
    header_row: int = 0


def looks_like_workbook(content: bytes) -> bool:
    """An .xls (OLE compound file) or an .xlsx/.ods (zip), whatever its name."""
    return content.startswith(_OLE) or content.startswith(_ZIP)


def _norm(value: Cell) -> str:
    text = unicodedata.normalize("NFKD", value if isinstance(value, str) else "")
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return " ".join(text.split())


def _text(value: Cell) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split()) if value is not None else ""


def _columns(row: Sequence[Cell]) -> dict[str, int] | None:
    """The header's columns (code, label, tariff, activity, phase) or None when `row` is not the header."""
    names = [_norm(cell) for cell in row]
    found: dict[str, int] = {}
    for index, name in enumerate(names):
        if name == "code" or name in ("code ccam", "code acte", "code de l'acte"):
            found.setdefault("code", index)
        elif name.startswith(("texte", "libelle")):
            found.setdefault("label", index)
        elif name.startswith("activite"):
            found.setdefault("activity", index)
        elif name.startswith("phase"):
            found.setdefault("phase", index)
    tariffs = [i for i, name in enumerate(names) if "tarif" in name]
    sector_1 = [i for i in tariffs if ("secteur 1" in names[i] or "optam" in names[i])
                and "hors secteur" not in names[i] and "non adherent" not in names[i]]
    if not ({"code", "label"} <= found.keys() and tariffs):
        return None
    found["tariff"] = (sector_1 or tariffs)[0]
    return found


def _amount(value: Cell, where: str) -> Decimal | None:
    """A tariff in euros, None when there is none (blank, 0, "Non pris en charge")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        amount = Decimal(str(value))
    else:
        text = _text(value).replace("\u202f", "").replace(" ", "").replace("€", "").replace(",", ".")
        if not any(c.isdigit() for c in text):
            return None
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise CcamTableError(f"{where} : tarif illisible « {_text(value)[:40]} » (exemple : 21,28)") from None
    if not amount.is_finite() or amount < 0:
        raise CcamTableError(f"{where} : tarif illisible « {_text(value)[:40]} » (exemple : 21,28)")
    return amount if amount > 0 else None


def _is(value: Cell, wanted: str) -> bool:
    text = _text(value)
    return text in ("", wanted)


def _cell(row: Sequence[Cell], index: int | None) -> Cell:
    return row[index] if index is not None and index < len(row) else ""


def _fee(value: Decimal | None, family: str, code: str, name: str) -> Decimal:
    if value is None:
        what = "de scanner" if family == CT_FAMILY else "d'IRM"
        option = "--ct-technical-fee" if family == CT_FAMILY else "--mri-technical-fee"
        raise CcamTableError(f"fichier CCAM {name} : l'acte {code} est un acte {what} ; indiquez le forfait "
                             f"technique {what} convenu dans la convention de rémunération ({option}) : le tarif "
                             "CCAM ne couvre que l'acte intellectuel")
    return value


def read_rows(rows: Iterable[Sequence[Cell]], name: str, ct_fee: Decimal | None = None,
              mri_fee: Decimal | None = None, sheet: str = "") -> CnamTable | None:
    """The imaging acts of one sheet's rows; None when the sheet has no header row."""
    iterator = iter(enumerate(rows, start=1))
    columns = None
    header_row = 0
    for number, row in iterator:
        columns = _columns(row)
        if columns is not None:
            header_row = number
            break
    if columns is None:
        return None
    acts: dict[str, CcamAct] = {}
    kept: Counter[str] = Counter()
    skipped: Counter[str] = Counter({reason: 0 for reason in SKIP_REASONS})
    for number, row in iterator:
        where = f"fichier CCAM {name}, ligne {number}"
        code = _text(_cell(row, columns["code"])).upper()
        label = _text(_cell(row, columns["label"]))
        raw_tariff = _cell(row, columns["tariff"])
        if not any(_text(cell) for cell in row):
            continue
        if _CODE.match(code) is None:
            if code and not _CHAPTER.match(code) and _amount(raw_tariff, where) is not None:
                raise CcamTableError(f"{where} : code CCAM invalide « {code[:20]} » (4 lettres et 3 chiffres, "
                                     "ex. ZBQK002)")
            skipped["no_code"] += 1
            continue
        kind = IMAGING.get(_norm(label).split(" ", 1)[0].strip(",.;:"))
        if kind is None:
            skipped["not_imaging"] += 1
            continue
        if not (_is(_cell(row, columns.get("activity")), "1") and _is(_cell(row, columns.get("phase")), "0")):
            skipped["other_activity_phase"] += 1
            continue
        tariff = _amount(raw_tariff, where)
        if tariff is None:
            skipped["no_tariff"] += 1
            continue
        modality, family = kind
        technical = None
        if family == CT_FAMILY:
            technical = _fee(ct_fee, family, code, name)
        elif family == MRI_FAMILY:
            technical = _fee(mri_fee, family, code, name)
        if code in acts:
            raise CcamTableError(f"{where} : le code {code} figure deux fois (activité 1, phase 0)")
        try:
            acts[code] = CcamAct(code, label, modality, family, tariff + (technical or 0), technical)
        except FeeError as error:
            raise CcamTableError(f"{where} : {error}") from None
        kept[family] += 1
    return CnamTable(acts, dict(kept), dict(skipped), sheet, header_row)


def read_cnam_workbook(content: bytes, name: str, ct_fee: Decimal | None = None,
                       mri_fee: Decimal | None = None) -> CnamTable:
    """The imaging acts of the CNAM's CCAM workbook `content` (.xls, .xlsx or .ods, recognised by its content).
    CcamTableError (French) when it cannot be read, has no header row or no imaging act with a tariff."""
    try:
        workbook = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(content))
        sheets = [(sheet_name, workbook.get_sheet_by_name(sheet_name).to_python(skip_empty_area=False))
                  for sheet_name in workbook.sheet_names]
    except (python_calamine.CalamineError, ValueError, OSError) as error:
        raise CcamTableError(f"fichier CCAM {name} illisible : ce n'est pas un classeur .xls, .xlsx ou .ods "
                             f"lisible ({str(error)[:120]})") from None
    for sheet_name, rows in sheets:
        table = read_rows(rows, name, ct_fee, mri_fee, sheet_name)
        if table is None:
            continue
        if not table.acts:
            raise CcamTableError(f"fichier CCAM {name} : aucun acte d'imagerie avec un tarif (scanographie, "
                                 "remnographie, mammographie, radiographie ; activité 1, phase 0)")
        return table
    raise CcamTableError(f"fichier CCAM {name} : ligne d'en-tête introuvable (colonnes attendues « Code », "
                         "« Texte » ou « Libellé » et « Tarif ») ; est-ce bien le fichier CCAM de l'ameli ?")


__all__ = ["CNAM_EXCEL", "SKIP_REASONS", "SUFFIXES", "CnamTable", "looks_like_workbook", "read_cnam_workbook",
           "read_rows"]
