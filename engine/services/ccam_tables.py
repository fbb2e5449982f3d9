"""CCAM tables (CH-7.1): loaded from a file, versioned by date of effect, replaceable.

A table is read whole by engine.domain.fees.load_ccam (documented CSV, engine/domain/data/README.md) before anything
is stored: a bad file is refused in French with nothing half-loaded. Loading a table with the same date of effect
as an existing one replaces it (the acts already chosen keep their codes; statements already issued keep their
frozen figures). The shipped table is a SAMPLE and is marked so wherever it shows (``sample``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.fees import SAMPLE_TABLE, CcamAct, CcamTableError, load_ccam
from engine.errors import Forbidden
from engine.services.context import EngineContext
from engine.store import audit
from engine.store.fee_models import CcamTable, CcamTableAct

SAMPLE_EFFECTIVE = date(2000, 1, 1)


@dataclass(frozen=True)
class TableInfo:
    id: int
    effective_from: date
    source_name: str
    sample: bool
    act_count: int
    loaded_by: str
    loaded_at: object


@enforces("CH-7.1", "CH-7.2", "CH-7.3")
def load_table(ctx: EngineContext, actor: Actor, path: str | Path | None, effective_from: date) -> int:
    """Load a CCAM table (the shipped SAMPLE when path is None) in effect from `effective_from`; returns its id.
    Only an administrator (or the command line) loads one. CcamTableError (French) on a bad file: among others a CT
    or MRI act without its technical share (CH-7.2 needs it) or an act whose modality is not its family's (CH-7.3
    applies to conventional radiology only)."""
    if not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur charge une table CCAM.")
    acts = load_ccam(path)  # whole file read and checked first: nothing stored on a bad one
    name = SAMPLE_TABLE if path is None else Path(path).name
    now = ctx.clock.now()
    with ctx.write() as session:
        for old in session.execute(select(CcamTable).where(CcamTable.effective_from == effective_from)).scalars():
            session.execute(delete(CcamTableAct).where(CcamTableAct.table_id == old.id))
            session.delete(old)
        session.flush()
        row = CcamTable(effective_from=effective_from, source_name=name[:200], sample=path is None,
                        act_count=len(acts), loaded_by=actor.user_id, loaded_at=now)
        session.add(row)
        session.flush()
        session.add_all([CcamTableAct(table_id=row.id, code=act.code, label=act.label[:400], modality=act.modality,
                                      family=act.family, price_eur=act.price_eur,
                                      technical_share_eur=act.technical_share_eur) for act in acts.values()])
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "ccam.table_loaded", None, {
            "table": row.id, "effective_from": effective_from.isoformat(), "source": name,
            "sample": path is None, "acts": len(acts)})], now)
        session.commit()
        return int(row.id)


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
                          row.loaded_at)
                for row in session.execute(select(CcamTable).order_by(CcamTable.effective_from.desc())).scalars()]



__all__ = ["CcamTableError", "TableInfo", "acts_of_table", "ensure_sample_table", "list_tables", "load_table",
           "table_on"]
