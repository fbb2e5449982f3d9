"""The CCAM acts of a case (CH-7.1), chosen by the case's radiologist from the table in effect, filtered by the
case's modality, with the urgency and on-call modifiers; recorded and audited in the case's chain, editable until a
statement covering the case is issued (then a correction is an adjustment, engine.services.fee_statements).

The case's radiologist is who wrote the report (interpret, te_report), else who holds it, else who chose the
protocol or accepted the case."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.fees import CcamAct
from engine.errors import Conflict, Forbidden, NotFound
from engine.services.case_traits import traits_from_state
from engine.services.ccam_tables import acts_of_table, table_on
from engine.services.context import EngineContext
from engine.services.persistence import append_case_events, lock_instance
from engine.store import audit
from engine.store.fee_models import CaseAct, CcamTable, FeeStatement
from engine.store.models import ProcessInstance, Task

PARIS = ZoneInfo("Europe/Paris")
REPORT_TASKS = ("interpret", "te_report")
EARLIER_TASKS = ("choose_protocol", "accept_case", "te_check")
# Which table modalities fit a case's requested modality (XR requests take any conventional X-ray act).
MODALITY_FAMILY = {"CT": {"CT"}, "MR": {"MR"}, "XR": {"XR", "CR", "DX"}, "MG": {"MG"}, "CR": {"XR", "CR", "DX"},
                   "DX": {"XR", "CR", "DX"}}
MAX_ACTS = 10


class CaseActError(ValueError):
    """A choice of act refused with a French message."""


@dataclass(frozen=True)
class ChosenAct:
    id: int
    code: str
    label: str
    urgency: bool
    on_call: bool
    radiologist: str
    chosen_at: Any


@dataclass(frozen=True)
class CaseActs:
    case_id: int
    process_id: str
    site_id: str | None
    modality: str | None
    radiologist: str | None
    released_at: datetime | None
    locked: bool  # a statement covering the case is issued
    chosen: list[ChosenAct]
    choices: list[CcamAct]  # the acts of the table in effect that fit the case's modality
    table_sample: bool
    table_name: str | None


def case_radiologist(session: Session, case_id: int) -> str | None:
    tasks = list(session.execute(select(Task.spec_name, Task.status, Task.assignee, Task.ended_by, Task.ended_at)
                                 .where(Task.instance_id == case_id,
                                        Task.spec_name.in_(REPORT_TASKS + EARLIER_TASKS))).all())
    for names in (REPORT_TASKS, EARLIER_TASKS):
        done = sorted((t for t in tasks if t.spec_name in names and t.status == "completed" and t.ended_by),
                      key=lambda t: t.ended_at)
        if done:
            return str(done[-1].ended_by)
        held = [t.assignee for t in tasks if t.spec_name in names and t.status == "open" and t.assignee]
        if held:
            return str(held[0])
    return None


def released_at(session: Session, case_id: int, process_id: str) -> datetime | None:
    """When the report was released: the acknowledgement task offered (telediagnosis), the expert's answer
    given (teleexpertise)."""
    query: Any
    if process_id == "teleexpertise":
        query = select(Task.ended_at).where(Task.instance_id == case_id, Task.spec_name == "te_report",
                                            Task.status == "completed")
    else:
        query = select(Task.created_at).where(Task.instance_id == case_id, Task.spec_name == "acknowledge_report")
    moments = [m for m in session.execute(query).scalars() if m is not None]
    return min(moments) if moments else None


def month_of(moment: datetime) -> str:
    return moment.astimezone(PARIS).strftime("%Y-%m")


def is_locked(session: Session, site_id: str | None, radiologist: str | None, released: datetime | None) -> bool:
    if released is None:
        return False
    scopes = [(FeeStatement.scope == "radiologist") & (FeeStatement.scope_id == (radiologist or ""))]
    if site_id:
        scopes.append((FeeStatement.scope == "site") & (FeeStatement.scope_id == site_id))
    return session.execute(select(FeeStatement.id).where(FeeStatement.month == month_of(released),
                                                         or_(*scopes)).limit(1)).first() is not None


def fits(act: CcamAct, modality: str | None) -> bool:
    return modality is None or act.modality in MODALITY_FAMILY.get(modality.upper(), {modality.upper()})


def _today(ctx: EngineContext) -> date:
    return ctx.clock.now().astimezone(PARIS).date()


def case_acts(ctx: EngineContext, actor: Actor, case_id: int, search: str = "") -> CaseActs:
    """The case's acts and the acts that may be chosen; Forbidden unless the actor is the case's radiologist or an
    administrator (read only)."""
    with ctx.read() as session:
        case = session.get(ProcessInstance, case_id)
        if case is None or case.process_id not in ("telediagnosis", "teleexpertise"):
            raise NotFound("Dossier introuvable.")
        radiologist = case_radiologist(session, case_id)
        if not (actor.user_id == radiologist or "administrator" in actor.roles or actor.is_system):
            raise Forbidden("Seul le radiologue du dossier choisit ses actes CCAM.")
        modality = traits_from_state(case.state).modality
        released = released_at(session, case_id, case.process_id)
        table = table_on(session, _today(ctx))
        acts = acts_of_table(session, table.id) if table is not None else {}
        words = search.strip().lower().split()
        choices = [act for act in acts.values() if fits(act, modality)
                   and all(w in f"{act.code} {act.label}".lower() for w in words)]
        rows = session.execute(select(CaseAct).where(CaseAct.case_id == case_id).order_by(CaseAct.id)).scalars()
        chosen = [ChosenAct(r.id, r.code, acts[r.code].label if r.code in acts else r.code, r.urgency, r.on_call,
                            r.radiologist, r.chosen_at) for r in rows]
        return CaseActs(case_id, case.process_id, case.site_id, modality, radiologist, released,
                        is_locked(session, case.site_id, radiologist, released), chosen, choices,
                        bool(table.sample) if table else False, table.source_name if table else None)


def _check_writer(session: Session, actor: Actor, case_id: int) -> ProcessInstance:
    case = session.get(ProcessInstance, case_id)
    if case is None or case.process_id not in ("telediagnosis", "teleexpertise"):
        raise NotFound("Dossier introuvable.")
    radiologist = case_radiologist(session, case_id)
    if radiologist is None or actor.user_id != radiologist:
        raise Forbidden("Seul le radiologue du dossier choisit ses actes CCAM.")
    if is_locked(session, case.site_id, radiologist, released_at(session, case_id, case.process_id)):
        raise Conflict("Le relevé d'honoraires de ce dossier est émis : les actes ne se modifient plus ; "
                       "demandez une correction à l'administrateur.")
    return case


@enforces("CH-7.1")
def add_case_act(ctx: EngineContext, actor: Actor, case_id: int, code: str, *, urgency: bool = False,
                 on_call: bool = False) -> int:
    """Record a CCAM act of the table in effect for the case (the case's radiologist only), audited."""
    code = (code or "").strip().upper()
    now = ctx.clock.now()
    with ctx.write() as session:
        case = _check_writer(session, actor, case_id)
        table: CcamTable | None = table_on(session, _today(ctx))
        if table is None:
            raise CaseActError("Aucune table CCAM n'est en vigueur : un administrateur doit en charger une.")
        act = acts_of_table(session, table.id).get(code)
        if act is None:
            raise CaseActError(f"Acte CCAM inconnu de la table en vigueur : « {code[:12]} ». La rémunération "
                               "repose exclusivement sur les actes CCAM (aucun forfait).")
        modality = traits_from_state(case.state).modality
        if not fits(act, modality):
            raise CaseActError(f"L'acte {act.code} ({act.modality}) ne correspond pas à la modalité du dossier "
                               f"({modality}).")
        count = len(list(session.execute(select(CaseAct.id).where(CaseAct.case_id == case_id)).scalars()))
        if count >= MAX_ACTS:
            raise CaseActError(f"Au plus {MAX_ACTS} actes par dossier.")
        row = CaseAct(case_id=case_id, code=act.code, urgency=bool(urgency), on_call=bool(on_call),
                      radiologist=actor.user_id, chosen_at=now)
        session.add(row)
        session.flush()
        append_case_events(session, lock_instance(session, case_id), [audit.AuditEntry(
            actor.user_id, "fees.act_added", case_id, {"act": row.id, "code": act.code, "urgency": bool(urgency),
                                                       "on_call": bool(on_call)})], now)
        session.commit()
        return int(row.id)


def remove_case_act(ctx: EngineContext, actor: Actor, case_id: int, act_id: int) -> None:
    """Remove a chosen act (the case's radiologist, before the statement is issued), audited."""
    now = ctx.clock.now()
    with ctx.write() as session:
        _check_writer(session, actor, case_id)
        row = session.get(CaseAct, act_id)
        if row is None or row.case_id != case_id:
            raise NotFound("Acte introuvable.")
        code = row.code
        session.delete(row)
        append_case_events(session, lock_instance(session, case_id), [audit.AuditEntry(
            actor.user_id, "fees.act_removed", case_id, {"act": act_id, "code": code})], now)
        session.commit()


@dataclass(frozen=True)
class ReleasedCase:
    case_id: int
    radiologist: str
    modality: str | None
    urgency: str | None
    released_at: datetime


def released_cases_without_acts(ctx: EngineContext) -> list[ReleasedCase]:
    """The released telediagnoses with a radiologist and no act yet (the demo gives them one)."""
    with ctx.read() as session:
        with_acts = set(session.execute(select(CaseAct.case_id)).scalars())
        found = []
        for case in session.execute(select(ProcessInstance).where(
                ProcessInstance.process_id == "telediagnosis").order_by(ProcessInstance.id)).scalars():
            released = released_at(session, case.id, case.process_id)
            radiologist = case_radiologist(session, case.id)
            if released is not None and radiologist is not None and case.id not in with_acts:
                found.append(ReleasedCase(case.id, radiologist, traits_from_state(case.state).modality,
                                          case.urgency, released))
        return found
