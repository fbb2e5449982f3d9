"""CCAM tables (CH-7.1): loaded from a file, versioned by date of effect, replaceable.

Two formats: Telerad's own CSV (engine.domain.fees.load_ccam, documented in engine/domain/data/README.md) and the
CNAM's own release, the CCAM Excel file of ameli.fr (.xls, .xlsx or .ods: engine.services.ccam_ameli), from which the
imaging acts are kept, CT and MRI acts valued with the technical fees of the remuneration document given at loading.
A table is read whole before anything is stored: a bad file is refused in French with nothing half-loaded. Loading
a table with the same date of effect as an existing one replaces it (the acts already chosen keep their codes;
statements already issued keep their frozen figures); a date of effect in a month whose statement (a site's or a
radiologist's) is already issued is refused, as for the remuneration settings (fee_settings.issued_after): site and
radiologists would otherwise be priced differently. A CSV holds imaging acts only, as the CNAM reader keeps them
(labels beginning Scanographie..., Remnographie..., Radiographie, Mammographie, of their family), never a line naming
a flat rate, a bonus or productivity (CH-6.4). The shipped table is a SAMPLE and is marked so wherever it
shows (``sample``)."""

from __future__ import annotations

import re
import tempfile
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.fees import (
    CT_FAMILY,
    MRI_FAMILY,
    REFUSED_FEE_WORDS,
    SAMPLE_TABLE,
    CcamAct,
    CcamTableError,
    load_ccam,
)
from engine.errors import Forbidden
from engine.services.ccam_ameli import (
    CNAM_EXCEL,
    SKIP_REASONS,
    SUFFIXES,
    imaging_kind,
    looks_like_workbook,
    read_cnam_workbook,
)
from engine.services.context import EngineContext
from engine.services.fee_settings import issued_after, lock_fee_changes, month_days
from engine.store import audit
from engine.store.fee_models import CcamTable, CcamTableAct

TELERAD_CSV = "telerad-csv"
FORMATS = (TELERAD_CSV, CNAM_EXCEL)
MAX_TABLE_BYTES = 20 * 1024 * 1024  # the CNAM's CCAM workbook is a few megabytes
SAMPLE_EFFECTIVE = date(2000, 1, 1)
CCAM_TABLE_CHANGE = "ccam_table"  # for fee_settings.issued_after: every statement of the month on is altered
_FEE_TEXT = re.compile(r"^[0-9]+(\.[0-9]{1,2})?$")


@dataclass(frozen=True)
class TableInfo:
    id: int
    effective_from: date
    source_name: str
    sample: bool
    act_count: int
    loaded_by: str
    loaded_at: datetime
    source_format: str = TELERAD_CSV
    ct_technical_fee_eur: Decimal | None = None
    mri_technical_fee_eur: Decimal | None = None


@dataclass(frozen=True)
class LoadedTable:
    """What a load stored: acts kept per family; rows of a CNAM file skipped per reason (ccam_ameli.SKIP_REASONS);
    the technical fees used (None when the table has no act of that family or carries its own shares)."""

    id: int
    effective_from: date
    source_name: str
    source_format: str
    kept: dict[str, int]
    skipped: dict[str, int] = field(default_factory=dict)
    ct_technical_fee_eur: Decimal | None = None
    mri_technical_fee_eur: Decimal | None = None

    @property
    def act_count(self) -> int:
        return sum(self.kept.values())


def technical_fee(value: str | Decimal | None, what: str) -> Decimal | None:
    """A technical fee typed by an administrator ("60", "60.00" or "60,00"): euros with two decimals at most, above 0
    and below 100,000; None when left empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = value.strip().replace(",", ".").replace("€", "").replace("\u00a0", "").strip() \
        if isinstance(value, str) else str(value)
    if _FEE_TEXT.match(text) is None:
        if _FEE_TEXT.match(text.lstrip("-")) is not None:
            raise CcamTableError(f"{what} : le montant doit être positif (exemple : 60,00)")
        if re.match(r"^-?[0-9]+\.[0-9]+$", text):
            raise CcamTableError(f"{what} : deux décimales au plus, les centimes (exemple : 60,00)")
        raise CcamTableError(f"{what} : montant illisible « {str(value)[:20]} » (exemple : 60,00)")
    amount = Decimal(text)
    if amount <= 0 or amount >= 100000:
        raise CcamTableError(f"{what} : le montant doit être positif et inférieur à 100 000 € (exemple : 60,00)")
    return amount.quantize(Decimal("0.01"))


def _plain(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def check_labels(acts: dict[str, CcamAct], name: str) -> None:
    """A CSV table holds imaging acts only, as the CNAM reader keeps (CH-7.1): each label begins as an imaging act of
    its family (Scanographie... for the scanner, Remnographie... for MRI, Radiographie or Mammographie for
    conventional radiology), and none names a flat rate, a productivity line or a bonus (CH-6.4)."""
    for act in acts.values():
        where = f"table CCAM {name}, acte {act.code}"
        words = [_plain(word) for word in re.split(r"[^\w]+", act.label.lower()) if word]
        refused = [kind for kind in REFUSED_FEE_WORDS for word in words if word.startswith(_plain(kind))]
        if refused:
            raise CcamTableError(f"{where} : libellé refusé « {act.label[:60]} » : la rémunération repose "
                                 "exclusivement sur les actes CCAM ; aucun forfait, ni prime, ni ligne de "
                                 "productivité (CH-6.4, CH-7.1)")
        kind = imaging_kind(act.label)
        if kind is None or kind[1] != act.family:
            raise CcamTableError(f"{where} : « {act.label[:60]} » n'est pas un acte d'imagerie de la famille "
                                 f"{act.family} : le libellé commence par Scanographie (scanner), Remnographie (irm), "
                                 "Radiographie ou Mammographie (radiologie), comme dans la CCAM")


def _read(path: Path, ct_fee: Decimal | None, mri_fee: Decimal | None) -> tuple[dict[str, CcamAct], LoadedTable]:
    """The acts of the file at `path` and what they are (id 0), by its extension, else by its content."""
    try:
        with path.open("rb") as file:
            content = file.read(MAX_TABLE_BYTES + 1)
    except OSError as error:
        raise CcamTableError(f"table CCAM illisible ({path.name}) : {error.strerror or error}") from None
    if len(content) > MAX_TABLE_BYTES:
        raise CcamTableError(f"table CCAM {path.name} : fichier trop volumineux ({MAX_TABLE_BYTES // 2**20} Mo au "
                             "plus)")
    suffix = path.suffix.lower()
    if suffix in SUFFIXES or (suffix != ".csv" and looks_like_workbook(content)):
        cnam = read_cnam_workbook(content, path.name, ct_fee, mri_fee)
        return cnam.acts, LoadedTable(0, date.min, path.name, CNAM_EXCEL, cnam.kept, cnam.skipped,
                                      ct_fee if cnam.kept.get(CT_FAMILY) else None,
                                      mri_fee if cnam.kept.get(MRI_FAMILY) else None)
    if ct_fee is not None or mri_fee is not None:
        raise CcamTableError(f"table CCAM {path.name} : les forfaits techniques ne s'indiquent que pour le fichier "
                             "CCAM de la CNAM (.xls, .xlsx, .ods) ; une table CSV porte la part technique de chaque "
                             "acte")
    acts = load_ccam(path)
    check_labels(acts, path.name)
    return acts, LoadedTable(0, date.min, path.name, TELERAD_CSV, dict(Counter(a.family for a in acts.values())))


@enforces("CH-6.4", "CH-7.1", "CH-7.2", "CH-7.3")
def import_table(ctx: EngineContext, actor: Actor, path: str | Path | None, effective_from: date, *,
                 ct_technical_fee: Decimal | None = None, mri_technical_fee: Decimal | None = None) -> LoadedTable:
    """Load a CCAM table (the shipped SAMPLE when path is None) in effect from `effective_from`: Telerad's CSV
    (.csv) or the CNAM's CCAM workbook (.xls, .xlsx, .ods; another name is recognised by its content). Only an
    administrator (or the command line) loads one. CcamTableError (French) on a bad file, nothing stored: among
    others a CT or MRI act without its technical share (CH-7.2 needs it: for a CNAM file, the CT or MRI technical
    fee not given) or an act whose modality is not its family's (CH-7.3 applies to conventional radiology only)."""
    if not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur charge une table CCAM.")
    if path is None:  # whole file read and checked first: nothing stored on a bad one
        acts = load_ccam(None)
        read = LoadedTable(0, date.min, SAMPLE_TABLE, TELERAD_CSV, dict(Counter(a.family for a in acts.values())))
    else:
        acts, read = _read(Path(path), ct_technical_fee, mri_technical_fee)
    now = ctx.clock.now()
    with ctx.write() as session:
        lock_fee_changes(session)  # serialized with the issue of a statement
        _refuse_issued_month(session, effective_from)
        for old in session.execute(select(CcamTable).where(CcamTable.effective_from == effective_from)).scalars():
            session.execute(delete(CcamTableAct).where(CcamTableAct.table_id == old.id))
            session.delete(old)
        session.flush()
        row = CcamTable(effective_from=effective_from, source_name=read.source_name[:200], sample=path is None,
                        act_count=len(acts), loaded_by=actor.user_id, loaded_at=now,
                        source_format=read.source_format, ct_technical_fee_eur=read.ct_technical_fee_eur,
                        mri_technical_fee_eur=read.mri_technical_fee_eur)
        session.add(row)
        session.flush()
        session.add_all([CcamTableAct(table_id=row.id, code=act.code, label=act.label[:400], modality=act.modality,
                                      family=act.family, price_eur=act.price_eur,
                                      technical_share_eur=act.technical_share_eur) for act in acts.values()])
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "ccam.table_loaded", None, {
            "table": row.id, "effective_from": effective_from.isoformat(), "source": read.source_name,
            "format": read.source_format, "sample": path is None, "acts": len(acts), "kept": read.kept,
            "skipped": read.skipped, "ct_technical_fee_eur": _str(read.ct_technical_fee_eur),
            "mri_technical_fee_eur": _str(read.mri_technical_fee_eur)})], now)
        session.commit()
        table_id = int(row.id)
    return LoadedTable(table_id, effective_from, read.source_name, read.source_format, read.kept, read.skipped,
                       read.ct_technical_fee_eur, read.mri_technical_fee_eur)


def _refuse_issued_month(session: Session, effective_from: date) -> None:
    """A table in effect from a month whose statement (a site's or a radiologist's) is already issued would change
    the prices of the statements issued after it, not of the one issued: site and radiologists would disagree."""
    issued = issued_after(session, CCAM_TABLE_CHANGE, None, effective_from)
    if issued is None:
        return
    year, number = (int(part) for part in issued.split("-"))
    after = month_days(year, number)[1] + timedelta(days=1)
    raise CcamTableError(f"Date d'effet refusée : le relevé de {issued} est déjà émis ; une table CCAM en vigueur le "
                         f"{effective_from.isoformat()} en modifierait le calcul, alors qu'un relevé émis ne change "
                         f"plus. Choisissez une date d'effet à partir du {after.isoformat()} ; une correction d'un "
                         "relevé émis passe par un ajustement")


def _str(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount)


@enforces("CH-7.1", "CH-7.2", "CH-7.3")
def load_table(ctx: EngineContext, actor: Actor, path: str | Path | None, effective_from: date, *,
               ct_technical_fee: Decimal | None = None, mri_technical_fee: Decimal | None = None) -> int:
    """import_table, returning the new table's id."""
    return import_table(ctx, actor, path, effective_from, ct_technical_fee=ct_technical_fee,
                        mri_technical_fee=mri_technical_fee).id


def import_upload(ctx: EngineContext, actor: Actor, filename: str, content: bytes, effective_from: date, *,
                  ct_technical_fee: Decimal | None = None, mri_technical_fee: Decimal | None = None) -> LoadedTable:
    """import_table on an uploaded file (its name as the browser gave it: only its last part is kept)."""
    if not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur charge une table CCAM.")
    name = "".join(c for c in filename.replace("\\", "/").rsplit("/", 1)[-1] if c.isprintable()).strip(" .")
    if not name:
        raise CcamTableError("Choisissez le fichier de la table CCAM (.xls, .xlsx, .ods ou .csv).")
    if len(content) > MAX_TABLE_BYTES:
        raise CcamTableError(f"table CCAM {name[:80]} : fichier trop volumineux ({MAX_TABLE_BYTES // 2**20} Mo au "
                             "plus)")
    with tempfile.TemporaryDirectory(prefix="telerad-ccam-") as folder:
        path = Path(folder) / name[-120:]
        path.write_bytes(content)
        return import_table(ctx, actor, path, effective_from, ct_technical_fee=ct_technical_fee,
                            mri_technical_fee=mri_technical_fee)


def ensure_sample_table(ctx: EngineContext) -> None:
    """The SAMPLE table loaded (in effect since 2000) when no table is: for the demo and the tests."""
    with ctx.read() as session:
        if session.execute(select(CcamTable.id).limit(1)).first() is not None:
            return
    load_table(ctx, Actor.system(), None, SAMPLE_EFFECTIVE)


def table_on(session: Session, day: date) -> CcamTable | None:
    """The table in effect on `day`: the latest date of effect on or before it."""
    return session.execute(select(CcamTable).where(CcamTable.effective_from <= day)
                           .order_by(CcamTable.effective_from.desc()).limit(1)).scalar_one_or_none()


def acts_of_table(session: Session, table_id: int) -> dict[str, CcamAct]:
    rows = session.execute(select(CcamTableAct).where(CcamTableAct.table_id == table_id)
                           .order_by(CcamTableAct.code)).scalars()
    return {row.code: CcamAct(row.code, row.label, row.modality, row.family, row.price_eur,
                              row.technical_share_eur) for row in rows}


def list_tables(ctx: EngineContext) -> list[TableInfo]:
    with ctx.read() as session:
        return [TableInfo(row.id, row.effective_from, row.source_name, row.sample, row.act_count, row.loaded_by,
                          row.loaded_at, row.source_format, row.ct_technical_fee_eur, row.mri_technical_fee_eur)
                for row in session.execute(select(CcamTable).order_by(CcamTable.effective_from.desc())).scalars()]


__all__ = ["FORMATS", "MAX_TABLE_BYTES", "SKIP_REASONS", "TELERAD_CSV", "CcamTableError", "LoadedTable", "TableInfo",
           "acts_of_table", "check_labels", "ensure_sample_table", "import_table", "import_upload", "list_tables",
           "load_table", "table_on", "technical_fee"]
