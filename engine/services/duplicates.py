"""Duplicate requests: another open case for the same patient and the same modality, started within a window
(`TELERAD_DUPLICATE_WINDOW_HOURS`, 48 h unless set), shown to the requester before he submits and to the
radiologist on the offer.

The same patient: the same INS when both cases have one, else the same site's patient id at the same site, else
the same name and birth date. Only cases the actor may see are named (CH-5.3): a duplicate sent by another hospital
is not revealed to a requester who never saw it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, union
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.domain.cases import may_see_case
from engine.services.case_traits import CaseTraits, case_traits
from engine.services.context import EngineContext
from engine.store.models import ProcessInstance, Task, TaskCandidate, table_of

WINDOW_SETTING = "TELERAD_DUPLICATE_WINDOW_HOURS"
DEFAULT_WINDOW_HOURS = 48.0
MAX_WINDOW_HOURS = 24.0 * 31
_INSTANCE = table_of(ProcessInstance)
_TASK = table_of(Task)
_CANDIDATE = table_of(TaskCandidate)
log = logging.getLogger(__name__)


def window(environ: Mapping[str, str] | None = None) -> timedelta:
    """The duplicate window from the environment: hours, 0 turns the warning off; a bad value is logged and the
    default kept."""
    text = (os.environ if environ is None else environ).get(WINDOW_SETTING, "").strip()
    if not text:
        return timedelta(hours=DEFAULT_WINDOW_HOURS)
    try:
        hours = float(text)
    except ValueError:
        hours = -1.0
    if not 0 <= hours <= MAX_WINDOW_HOURS:
        log.warning("%s=%r is not a number of hours between 0 and %d: %s h kept", WINDOW_SETTING, text,
                    MAX_WINDOW_HOURS, DEFAULT_WINDOW_HOURS)
        return timedelta(hours=DEFAULT_WINDOW_HOURS)
    return timedelta(hours=hours)


@dataclass(frozen=True)
class PatientKey:
    site_id: str | None
    name: str | None  # as the case row keeps it: "BIRTH_NAME FIRST NAMES", upper case
    birth_date: str | None
    site_patient_id: str | None = None
    ins: str | None = None

    @classmethod
    def from_request(cls, site_id: str | None, patient: Mapping[str, Any]) -> PatientKey:
        def text(key: str, size: int) -> str | None:
            value = patient.get(key)
            # A NUL byte (refused by the request's validation afterwards) must not reach PostgreSQL here.
            return value.replace("\x00", "").strip()[:size] or None if isinstance(value, str) else None

        name = " ".join(p for p in (text("birth_name", 150), text("first_names", 140)) if p)
        birth = patient.get("birth_date")
        birth_text = birth.isoformat() if isinstance(birth, date) else text("birth_date", 10)
        return cls(site_id, name.upper() or None, birth_text, text("site_patient_id", 64), text("ins", 64))

    def same_patient(self, other: PatientKey) -> bool:
        if self.ins and other.ins:
            return self.ins.replace(" ", "") == other.ins.replace(" ", "")
        if self.site_patient_id and other.site_patient_id and self.site_id == other.site_id:
            return self.site_patient_id == other.site_patient_id
        return bool(self.name and self.birth_date) and (self.name, self.birth_date) == (other.name, other.birth_date)


@dataclass(frozen=True)
class Duplicate:
    case_id: int
    started_at: datetime


def find_duplicates(ctx: EngineContext, actor: Actor, patient: PatientKey, modality: str | None,
                    exclude_case: int | None = None) -> list[Duplicate]:
    """Open cases the actor may see, for this patient and modality, started within the window; most recent
    first. Two statements (the candidates, then the traits of those not cached)."""
    found = duplicates_of(ctx, actor, {0: (patient, modality)}, exclude=[exclude_case] if exclude_case else [])
    return found.get(0, [])


def duplicates_of(ctx: EngineContext, actor: Actor, requests: Mapping[int, tuple[PatientKey, str | None]],
                  exclude: Iterable[int] = ()) -> dict[int, list[Duplicate]]:
    """For each keyed request (e.g. a case of the inbox, keyed by its id), its duplicates: one query of the open
    cases started within the window sharing a name or a site's patient id with any of them."""
    span = window()
    wanted = {key: value for key, value in requests.items() if value[1] and span > timedelta(0)}
    if not wanted:
        return {}
    names = sorted({p.name for p, _ in wanted.values() if p.name and p.birth_date})
    refs = sorted({p.site_patient_id for p, _ in wanted.values() if p.site_patient_id and p.site_id})
    # Indexed look-ups (patient_name, patient_ref); the same INS under another spelling of the name and without
    # the site's patient id is not found.
    matches = ([_INSTANCE.c.patient_name.in_(names)] if names else []) + (
        [_INSTANCE.c.patient_ref.in_(refs)] if refs else [])
    if not matches:
        return {}
    since = ctx.clock.now() - span
    query = (select(_INSTANCE.c.id, _INSTANCE.c.version, _INSTANCE.c.site_id, _INSTANCE.c.patient_name,
                    _INSTANCE.c.patient_birth_date, _INSTANCE.c.patient_ref, _INSTANCE.c.started_at)
             .where(_INSTANCE.c.status == "running", _INSTANCE.c.started_at >= since, or_(*matches))
             .order_by(_INSTANCE.c.started_at.desc()).limit(200))
    excluded = set(exclude)
    with ctx.read() as session:
        rows = [row for row in session.execute(query).all() if row.id not in excluded]
        rows = _visible(session, actor, rows)
    traits = case_traits(ctx, {row.id: row.version for row in rows})
    by_name: dict[tuple[str | None, str | None], list[Any]] = {}
    by_ref: dict[tuple[str | None, str | None], list[Any]] = {}
    for row in rows:
        by_name.setdefault((row.patient_name, row.patient_birth_date), []).append(row)
        by_ref.setdefault((row.site_id, row.patient_ref), []).append(row)
    result: dict[int, list[Duplicate]] = {}
    for key, (patient, modality) in wanted.items():
        near = {row.id: row for row in by_name.get((patient.name, patient.birth_date), [])
                + by_ref.get((patient.site_id, patient.site_patient_id), [])}
        same = [Duplicate(row.id, row.started_at) for row in near.values()
                if row.id != key and _matches(row, traits.get(row.id), patient, modality)]
        if same:
            result[key] = sorted(same, key=lambda duplicate: duplicate.started_at, reverse=True)
    return result


def _visible(session: Session, actor: Actor, rows: list[Any]) -> list[Any]:
    """The rows of cases the actor may see (CH-5.3): those of his sites, and those he was involved in, looked up
    among these few cases only (the whole visibility rule as SQL costs a read of every case of his sites)."""
    if actor.is_system:
        return rows
    elsewhere = [row.id for row in rows if row.site_id not in actor.sites]
    involved: set[int] = set()
    if elsewhere:
        involved = set(session.execute(union(
            select(_TASK.c.instance_id).where(_TASK.c.instance_id.in_(elsewhere),
                                              or_(_TASK.c.assignee == actor.user_id,
                                                  _TASK.c.ended_by == actor.user_id)),
            select(_TASK.c.instance_id).join(_CANDIDATE, _CANDIDATE.c.task_id == _TASK.c.id)
            .where(_TASK.c.instance_id.in_(elsewhere), _CANDIDATE.c.user_id == actor.user_id))).scalars())
    return [row for row in rows if may_see_case(actor, row.site_id, row.id in involved)]


def _matches(row: Any, traits: CaseTraits | None, patient: PatientKey, modality: str | None) -> bool:
    if traits is None or traits.modality != modality:
        return False
    other = PatientKey(row.site_id, row.patient_name, row.patient_birth_date, row.patient_ref, traits.ins)
    return patient.same_patient(other)


def duplicates_of_case(ctx: EngineContext, actor: Actor, case_id: int) -> list[Duplicate]:
    """Other open cases of this case's patient and modality (the offer of a case to a radiologist)."""
    with ctx.read() as session:
        row = session.execute(select(_INSTANCE.c.id, _INSTANCE.c.version, _INSTANCE.c.site_id,
                                     _INSTANCE.c.patient_name, _INSTANCE.c.patient_birth_date,
                                     _INSTANCE.c.patient_ref).where(_INSTANCE.c.id == case_id)).one_or_none()
    if row is None:
        return []
    traits = case_traits(ctx, {row.id: row.version}).get(row.id)
    if traits is None or not traits.modality:
        return []
    patient = PatientKey(row.site_id, row.patient_name, row.patient_birth_date, row.patient_ref, traits.ins)
    return duplicates_of(ctx, actor, {row.id: (patient, traits.modality)}).get(row.id, [])
