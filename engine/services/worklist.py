"""The worklist of the inbox: the actor's open tasks (``engine.services.tasks.list_tasks``, one indexed query) with
what a teleradiology service reads on each line (site name, modality, patient age and sex, due time, possible
duplicate request), filtered and sorted by the values of the page's address, which are checked here.

Cost: the inbox query, one read of the site names, one read of the states of the cases not seen at their current
version by this process (engine.services.case_traits), one query of possible duplicates. None grows with the
number of lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from engine.domain.actors import Actor
from engine.domain.urgency import LEVELS, rank
from engine.services.case_traits import CaseTraits, case_traits
from engine.services.context import EngineContext
from engine.services.duplicates import Duplicate, PatientKey, duplicates_of
from engine.services.tasks import TaskView, list_tasks
from engine.store.directory_models import SiteRow

PARIS = ZoneInfo("Europe/Paris")
MODALITIES = ("CT", "MR", "US", "XR", "MG")
STATUSES = ("unclaimed", "mine", "overdue")
SORTS = ("urgency", "due", "created", "site", "modality", "age")
_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


class InvalidFilter(ValueError):
    """A filter or sort of the address that is not one the page offers (French message)."""


@dataclass(frozen=True)
class WorklistFilters:
    urgency: str | None = None
    site: str | None = None
    modality: str | None = None
    status: str | None = None
    kind: str | None = None
    sort: str = "urgency"
    descending: bool = False

    def as_args(self) -> dict[str, str]:
        """The non-default values, for links that keep them in the address."""
        values = {"urgency": self.urgency, "site": self.site, "modality": self.modality, "status": self.status,
                  "type": self.kind, "sort": None if self.sort == "urgency" and not self.descending
                  else ("-" if self.descending else "") + self.sort}
        return {key: value for key, value in values.items() if value}


def parse_filters(args: Mapping[str, str]) -> WorklistFilters:
    """The filters of the page's address; an empty value means "all". Raises InvalidFilter."""
    def pick(name: str, allowed: tuple[str, ...] | None, label: str) -> str | None:
        value = (args.get(name) or "").strip()
        if not value:
            return None
        if (allowed is not None and value not in allowed) or not _CODE.fullmatch(value):
            raise InvalidFilter(f"Valeur de filtre inconnue pour « {label} » : choisissez dans la liste.")
        return value

    sort = (args.get("sort") or "").strip() or "urgency"
    descending = sort.startswith("-")
    if sort.lstrip("-") not in SORTS:
        raise InvalidFilter("Tri inconnu : choisissez un tri proposé par la liste.")
    return WorklistFilters(urgency=pick("urgency", LEVELS, "urgence"), site=pick("site", None, "site"),
                           modality=pick("modality", MODALITIES, "modalité"),
                           status=pick("status", STATUSES, "statut"), kind=pick("type", None, "type de tâche"),
                           sort=sort.lstrip("-"), descending=descending)


@dataclass(frozen=True)
class WorklistRow:
    task: TaskView
    site_name: str | None
    modality: str | None
    sex: str | None
    age: int | None
    overdue: bool
    duplicates: tuple[Duplicate, ...] = ()


@dataclass(frozen=True)
class Worklist:
    rows: list[WorklistRow]
    filters: WorklistFilters
    sites: list[tuple[str, str]]  # (id, name) the site filter offers
    kinds: list[tuple[str, str]]  # (task, title) the task-type filter offers
    now: datetime
    total: int  # lines before the filters
    extra: dict[str, int] = field(default_factory=dict)


def worklist(ctx: EngineContext, actor: Actor, filters: WorklistFilters) -> Worklist:
    now = ctx.clock.now()
    tasks = list_tasks(ctx, actor)
    traits = case_traits(ctx, {t.instance_id: t.case_version for t in tasks if t.case_version is not None})
    site_ids = {t.site_id for t in tasks if t.site_id} | set(actor.sites)
    names = _site_names(ctx, site_ids)
    today = now.astimezone(PARIS).date()
    rows = [_row(t, names, traits.get(t.instance_id), today, now) for t in tasks]
    kinds = sorted({(t.spec_name, t.title) for t in tasks}, key=lambda kind: kind[1])
    shown = _sorted([row for row in rows if _kept(row, filters, actor)], filters)
    shown = _with_duplicates(ctx, actor, shown, traits)
    return Worklist(shown, filters, sorted(names.items(), key=lambda item: item[1]), kinds, now, len(rows))


def _site_names(ctx: EngineContext, site_ids: set[str]) -> dict[str, str]:
    if not site_ids:
        return {}
    with ctx.read() as session:
        return {row.id: row.name for row in session.execute(
            select(SiteRow.id, SiteRow.name).where(SiteRow.id.in_(sorted(site_ids))))}


def _row(task: TaskView, names: Mapping[str, str], traits: CaseTraits | None, today: date,
         now: datetime) -> WorklistRow:
    traits = traits or CaseTraits()
    return WorklistRow(task, names.get(task.site_id or ""), traits.modality, traits.sex,
                       age_in_years(task.patient_birth_date, today),
                       task.due_at is not None and task.due_at <= now)


def age_in_years(birth_date: str | None, today: date) -> int | None:
    try:
        born = date.fromisoformat(birth_date or "")
    except ValueError:
        return None
    years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return years if 0 <= years < 150 else None


def _kept(row: WorklistRow, filters: WorklistFilters, actor: Actor) -> bool:
    task = row.task
    status_ok = {None: True, "unclaimed": task.assignee is None, "mine": task.assignee == actor.user_id,
                 "overdue": row.overdue}[filters.status]
    return (status_ok and (filters.urgency is None or task.urgency == rank(filters.urgency))
            and (filters.site is None or task.site_id == filters.site)
            and (filters.modality is None or row.modality == filters.modality)
            and (filters.kind is None or task.spec_name == filters.kind))


def _sorted(rows: list[WorklistRow], filters: WorklistFilters) -> list[WorklistRow]:
    far = datetime.max.replace(tzinfo=UTC)

    def by_urgency(row: WorklistRow) -> tuple[int, datetime, datetime]:
        return row.task.urgency, row.task.due_at or far, row.task.created_at

    keys = {
        "urgency": by_urgency,
        "due": lambda row: (row.task.due_at or far, row.task.urgency),
        "created": lambda row: (row.task.created_at,),
        "site": lambda row: ((row.site_name or "~").casefold(), *by_urgency(row)),
        "modality": lambda row: (row.modality or "~", *by_urgency(row)),
        "age": lambda row: (row.age if row.age is not None else 999, *by_urgency(row)),
    }
    return sorted(rows, key=keys[filters.sort], reverse=filters.descending)


def _with_duplicates(ctx: EngineContext, actor: Actor, rows: list[WorklistRow],
                     traits: Mapping[int, CaseTraits]) -> list[WorklistRow]:
    requests = {}
    for row in rows:
        task = row.task
        patient = PatientKey(task.site_id, task.patient_name, task.patient_birth_date, task.patient_ref,
                             (traits.get(task.instance_id) or CaseTraits()).ins)
        requests[task.instance_id] = (patient, row.modality)
    found = duplicates_of(ctx, actor, requests)
    if not found:
        return rows
    return [replace(row, duplicates=tuple(found.get(row.task.instance_id, ()))) for row in rows]
