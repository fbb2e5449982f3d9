"""Reader of the CNAM's own CCAM release (CH-7.1): the Excel file of the CCAM published on ameli.fr (.xls; .xlsx or
.ods read the same way), read with python-calamine, keeping the imaging acts Telerad values as the domain's CcamActs.

What it expects (docs/fees.md, engine/domain/data/README.md):

- The first sheet that has a header row: a row with a cell "Code", a cell "Texte" (or "Libellé") and a cell
  containing "Tarif"; the comparison ignores accents, case and spacing. "Activité" and "Phase" are used when present.
  Rows above the header (titles, version, date) are ignored.
- The tariff column is the first whose header contains "tarif" and "secteur 1" or "OPTAM" (the tariff of sector 1 /
  OPTAM members), else the first containing "tarif"; never one with the word "hors" or "non" (hyphens count as
  spaces: "Tarif non-adhérents OPTAM", "Tarif secteur 2 hors OPTAM" are the other sector's).
- Below the header, each row is one of:
  - blank: ignored;
  - without a CCAM code in the Code column (chapter numbers such as "01.01.01", notes, titles): skipped, counted as
    ``no_code``;
  - an act whose label's first word is not "Scanographie" or a word ending so, such as "Angioscanographie" (CT,
    family scanner), "Remnographie" or a word ending so (MR, irm), "Mammographie" (MG, radiologie) or
    "Radiographie" (XR, radiologie): skipped, ``not_imaging``;
  - an imaging act of another activity than 1 or another phase than 0 (blank counts as 1 and 0): skipped,
    ``other_activity_phase``;
  - an imaging act without a tariff (empty, 0, "Non pris en charge" or any text without a digit): skipped,
    ``no_tariff``;
  - otherwise kept. A row with a tariff whose Code cell is not a CCAM code (4 letters and 3 digits)
    or a chapter number, a tariff with digits that is not an amount written plainly (no "1e3") below 100,000 €, or
    a code kept twice refuses the whole file. Control characters (NUL...) of a label become spaces.
- The workbook is read in a child process limited in memory and time (engine.services.ccam_sheet_reader, read_sheets):
  one too large for it (a dense sheet of a million rows, a zip bomb) is refused, the process loading it unharmed. The
  child runs with -P (no module of the current directory) and a minimal environment (no database URL, no key); a
  sheet beyond 60,000 rows or 40 columns, or an answer beyond 24 MB, is refused; a failure of the reader itself is an
  internal error, logged with its stderr.
- The CCAM tariff of a CT or MRI act is the intellectual act only: the technical fee is billed apart, agreed in the
  remuneration document. Its price is tariff + the technical fee given, and its technical share that fee; a file
  with CT (MRI) acts and no CT (MRI) fee is refused."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

from engine.domain.fees import CONVENTIONAL_FAMILY, CT_FAMILY, MRI_FAMILY, CcamAct, CcamTableError, FeeError
from engine.domain.radioprotection import CT, MG, MR, XR
from engine.services.ccam_sheet_reader import MAX_OUTPUT_BYTES, MEMORY_LIMIT, TOO_LARGE

log = logging.getLogger(__name__)

CNAM_EXCEL = "cnam-excel"
SUFFIXES = (".xls", ".xlsx", ".ods")
# the label's first word -> (modality, family); radiography is XR as in the sample table
IMAGING = {"scanographie": (CT, CT_FAMILY), "remnographie": (MR, MRI_FAMILY),
           "mammographie": (MG, CONVENTIONAL_FAMILY), "radiographie": (XR, CONVENTIONAL_FAMILY)}
# a first word ending so is CT or MR as well: angioscanographie, arthroscanographie, angioremnographie...
IMAGING_ENDINGS = (("scanographie", IMAGING["scanographie"]), ("remnographie", IMAGING["remnographie"]))
MAX_TARIFF = Decimal("100000")  # euros: a CCAM tariff is far below
SKIP_REASONS = ("no_code", "not_imaging", "other_activity_phase", "no_tariff")

_CODE = re.compile(r"^[A-Z]{4}[0-9]{3}$")
_AMOUNT_TEXT = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CHAPTER = re.compile(r"^[0-9]{1,2}(\.[0-9]{1,2})*\.?$")
_OLE, _ZIP = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"PK\x03\x04"
Cell = object
READ_SECONDS = 60
MAX_UNZIPPED_BYTES = 400 * 2**20
MAX_ZIP_RATIO = 100


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
    """The cell as a one-line text, control characters (NUL among them, which PostgreSQL refuses) as spaces."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return " ".join(_CONTROL.sub(" ", str(value)).split()) if value is not None else ""


def imaging_kind(label: str) -> tuple[str, str] | None:
    """(modality, family) of an imaging act by its label's first word (CH-7.1), None for another act: Scanographie
    (or a word ending so: Angioscanographie...) is CT, Remnographie (Angioremnographie...) MR, Mammographie MG and
    Radiographie XR; Échographie and the rest are not valued by Telerad."""
    first = _norm(label).replace("-", " ").split(" ", 1)[0].strip(",.;:")
    kind = IMAGING.get(first)
    if kind is None:
        kind = next((found for ending, found in IMAGING_ENDINGS if first.endswith(ending)), None)
    return kind


def _words(name: str) -> str:
    """A normalised header as words: hyphens, slashes and brackets as spaces ("non-adhérents" -> "non adherents")."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", name).split())


def _other_sector(name: str) -> bool:
    """A tariff header of the other sector ("hors secteur 1", "non adhérents OPTAM", "secteur 2 hors OPTAM")."""
    return bool({"hors", "non"} & set(_words(name).split()))


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
    tariffs = [i for i, name in enumerate(names) if "tarif" in name and not _other_sector(name)]
    sector_1 = [i for i in tariffs if re.search(r"\bsecteur 1\b", _words(names[i]))
                or "optam" in _words(names[i]).split()]
    if not ({"code", "label"} <= found.keys() and tariffs):
        return None
    found["tariff"] = (sector_1 or tariffs)[0]
    return found


def _amount(value: Cell, where: str) -> Decimal | None:
    """A tariff in euros, None when there is none (blank, 0, "Non pris en charge"); a number below MAX_TARIFF written
    plainly ("21,28", not "1e3"), else the file is refused."""
    if isinstance(value, bool):
        return None
    unreadable = f"{where} : tarif illisible « {_text(value)[:40]} » (exemple : 21,28)"
    if isinstance(value, int | float):
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise CcamTableError(unreadable) from None
    else:
        text = _text(value).replace("\u202f", "").replace(" ", "").replace("€", "").replace(",", ".")
        if not any(c.isdigit() for c in text):
            return None
        if _AMOUNT_TEXT.match(text) is None:
            raise CcamTableError(unreadable)
        amount = Decimal(text)
    if not amount.is_finite() or amount < 0:
        raise CcamTableError(unreadable)
    if amount >= MAX_TARIFF:
        raise CcamTableError(f"{where} : tarif hors limite « {_text(value)[:40]} » (moins de 100 000 €)")
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
        kind = imaging_kind(label)
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


def _check_zip(content: bytes, name: str) -> None:
    """An .xlsx/.ods whose parts would inflate beyond MAX_UNZIPPED_BYTES (or MAX_ZIP_RATIO times) is refused before
    it is read; a zip that does not open is left to the reader, which says it is unreadable."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return
    if unzipped > MAX_UNZIPPED_BYTES or unzipped > MAX_ZIP_RATIO * max(len(content), 1) + 2**20:
        raise CcamTableError(f"fichier CCAM {name} : le classeur est trop grand ou illisible : il se décompresse en "
                             f"{unzipped // 2**20} Mo ({MAX_UNZIPPED_BYTES // 2**20} Mo au plus)")


CHILD_ENV = ("PATH", "LANG", "LC_ALL")  # with PYTHONPATH, all the child is given: no database URL, no key
STDERR_TAIL = 2048  # bytes of the child's stderr logged when it fails
MAX_ANSWER_BYTES = MAX_OUTPUT_BYTES + 2**16  # beyond, the child's answer is refused unread


def _child_env() -> dict[str, str]:
    """A minimal environment for the child, which parses an untrusted file: PATH, the locale and PYTHONPATH with the
    folder holding the `engine` package first (whatever the current directory or the way this process found it), and
    no relative entry."""
    root = str(Path(__file__).resolve().parents[2])
    path = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if os.path.isabs(entry)]
    env = {key: os.environ[key] for key in CHILD_ENV if key in os.environ}
    return {**env, "PYTHONPATH": os.pathsep.join([root, *path])}


def _reader_command() -> list[str]:
    """-P: the current directory is not on the child's path, so no engine/ (json.py...) found there is run."""
    return [sys.executable, "-P", "-m", "engine.services.ccam_sheet_reader"]


def _tail(stream: IO[bytes]) -> str:
    stream.seek(0, os.SEEK_END)
    stream.seek(max(stream.tell() - STDERR_TAIL, 0))
    return stream.read().decode("utf-8", "replace")


def _failed(returncode: int, stderr: str, name: str, too_large: str) -> CcamTableError:
    """A child stopped by a signal (SIGKILL, SIGXCPU, SIGABRT, SIGSEGV: its memory or time limits) or short of
    memory is a workbook too large; any other failure is the reader's own, logged with the end of its stderr."""
    last = stderr.strip().rsplit("\n", 1)[-1]
    if returncode < 0 or last.startswith("MemoryError"):
        stop = f"signal {-returncode}" if returncode < 0 else "mémoire épuisée"
        return CcamTableError(f"{too_large}sa lecture dépasse la mémoire ({MEMORY_LIMIT // 2**20} Mo) ou le temps "
                              f"permis (lecteur arrêté, {stop})")
    log.error("CCAM workbook reader failed (exit code %s) on %r; stderr ends with:\n%s", returncode, name, stderr)
    return CcamTableError(f"fichier CCAM {name} : erreur interne du lecteur de classeur (code {returncode}) ; "
                          "réessayez ou signalez-le à l'administrateur")


def read_sheets(content: bytes, name: str) -> list[tuple[str, list[list[Cell]]]]:
    """The rows of each sheet of the workbook `content`, read by engine.services.ccam_sheet_reader in a child process
    limited in memory and time: a workbook calamine cannot read in those limits (a dense sheet of a million rows
    asks for gigabytes and aborts the process that reads it) is refused in French, this process unharmed. The child's
    answer is written to a file and read only when within MAX_ANSWER_BYTES."""
    if content.startswith(_ZIP):
        _check_zip(content, name)
    too_large = f"fichier CCAM {name} : le classeur est trop grand ou illisible : "
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            done = subprocess.run(_reader_command(), input=content, stdout=out, stderr=err,  # noqa: S603 (fixed)
                                  timeout=READ_SECONDS, check=False, env=_child_env())
        except subprocess.TimeoutExpired:
            raise CcamTableError(f"{too_large}sa lecture dépasse {READ_SECONDS} secondes") from None
        except OSError as error:
            raise CcamTableError(f"{too_large}lecture impossible ({error.strerror or error})") from None
        size = out.seek(0, os.SEEK_END)
        if size > MAX_ANSWER_BYTES:
            raise CcamTableError(f"{too_large}son contenu lu dépasse {MAX_ANSWER_BYTES // 2**20} Mo")
        out.seek(0)
        try:
            answer = json.loads(out.read()) if done.returncode in (0, 2) else {}
        except (ValueError, MemoryError):
            answer = None
        if not isinstance(answer, dict):
            raise _failed(done.returncode, _tail(err), name, too_large)
        if done.returncode == 0 and isinstance(answer.get("sheets"), list):
            return [(str(sheet), rows) for sheet, rows in answer["sheets"]]
        if answer.get("kind") == TOO_LARGE:
            raise CcamTableError(f"{too_large}{answer.get('error')}")
        if done.returncode == 2:
            raise CcamTableError(f"fichier CCAM {name} illisible : ce n'est pas un classeur .xls, .xlsx ou .ods "
                                 f"lisible ({str(answer.get('error', ''))[:120]})")
        raise _failed(done.returncode, _tail(err), name, too_large)


def read_cnam_workbook(content: bytes, name: str, ct_fee: Decimal | None = None,
                       mri_fee: Decimal | None = None) -> CnamTable:
    """The imaging acts of the CNAM's CCAM workbook `content` (.xls, .xlsx or .ods, recognised by its content).
    CcamTableError (French) when it cannot be read, has no header row or no imaging act with a tariff."""
    sheets = read_sheets(content, name)
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


__all__ = ["CNAM_EXCEL", "MAX_TARIFF", "SKIP_REASONS", "SUFFIXES", "CnamTable", "imaging_kind", "looks_like_workbook",
           "read_cnam_workbook", "read_rows", "read_sheets"]
