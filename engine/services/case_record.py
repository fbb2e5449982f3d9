"""What each step of a case recorded, as people read it: the fields of its form with their French titles and
labels, who recorded them and when; and the sentence the case history says for each completed step.

A field's provenance is the last completed step whose submission held it (the ``fields`` of its ``task.completed``
event on the case's audit chain). Each step's values are read from that step's own data in the workflow (what it
recorded, even if a later loop replaced it, and even while a parallel branch's open task does not carry it yet);
where the workflow no longer holds the step (a finished sub-process), from the case data. Callers pass data the
actor may read (engine.services.report_visibility redacts each mapping): a withheld report field is absent here too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.services.context import EngineContext
from engine.store.directory_models import User
from engine.store.models import AuditEvent, Task
from forms import FormRegistry
from forms.registry import UnknownForm, fill_summary, summary_fields, summary_template

_LOCAL_MOMENT = 16  # "2026-12-07T03:12": a date and time typed in Paris time (datetime-local)


@dataclass(frozen=True)
class Completion:
    """One completed step: its task, form, who completed it (user name and display name) and when."""

    task_id: str
    spec_name: str
    title: str
    form_key: str | None
    by: str
    by_name: str
    at: datetime
    fields: tuple[str, ...]


@dataclass(frozen=True)
class RecordedField:
    """A recorded value as shown: ``kind`` "boolean" leaves ``value`` True/False for the page to say Oui/Non;
    every other kind carries its text (labels of coded values, dates dd/mm/yyyy, people by name)."""

    name: str
    label: str
    value: Any
    kind: str = "text"


@dataclass(frozen=True)
class RecordedStep:
    completion: Completion
    fields: tuple[RecordedField, ...]


def completions(session: Session, case_id: int) -> list[Completion]:
    """The case's completed steps in order, from its own audit chain, with the form of each task."""
    events = session.execute(
        select(AuditEvent.at, AuditEvent.actor, AuditEvent.detail)
        .where(AuditEvent.instance_id == case_id, AuditEvent.chain == case_id, AuditEvent.action == "task.completed")
        .order_by(AuditEvent.at, AuditEvent.id)).all()
    forms = dict(session.execute(select(Task.id, Task.form_key).where(Task.instance_id == case_id)).tuples().all())
    details = [(row, json.loads(row.detail)) for row in events]
    names = display_names(session, {row.actor for row, _ in details})
    return [Completion(str(detail.get("task_id") or ""), str(detail.get("task") or ""),
                       str(detail.get("title") or detail.get("task") or ""), forms.get(detail.get("task_id")),
                       row.actor, names.get(row.actor, row.actor), row.at, tuple(detail.get("fields") or ()))
            for row, detail in details]


def display_names(session: Session, usernames: Iterable[str | None]) -> dict[str, str]:
    wanted = sorted({u for u in usernames if isinstance(u, str) and u})
    if not wanted:
        return {}
    rows = session.execute(select(User.username, User.display_name).where(User.username.in_(wanted))).all()
    return {row.username: row.display_name for row in rows}


def last_writers(steps: Iterable[Completion]) -> dict[str, Completion]:
    """Field name -> the last completed step that recorded it."""
    found: dict[str, Completion] = {}
    for step in steps:
        for name in step.fields:
            found[name] = step
    return found


def step_data(live: Any, steps: Iterable[Completion], readable: Callable[[Mapping[str, Any]], Mapping[str, Any]]
              ) -> dict[str, Mapping[str, Any]]:
    """Task id -> the data of that completed step in the live workflow, as `readable` lets the actor read it.

    The runtime has no reader of a completed task's data yet: its workflow is asked for the task by id (sub-processes
    included); a step it no longer holds is simply absent."""
    find = getattr(getattr(live, "workflow", None), "get_task_from_id", None)
    found: dict[str, Mapping[str, Any]] = {}
    for step in steps:
        try:
            task = find(UUID(step.task_id)) if find is not None else None
        except Exception:  # noqa: BLE001 - an unknown id or a task the workflow dropped: read from the case data
            task = None
        data = getattr(task, "data", None)
        if isinstance(data, Mapping):
            found[step.task_id] = readable(data)
    return found


class FieldReader:
    """Reads recorded values against the schemas that recorded them (titles, x-labels, formats)."""

    def __init__(self, ctx: EngineContext, session: Session, data: Mapping[str, Any],
                 steps: list[Completion] | None = None, per_step: Mapping[str, Mapping[str, Any]] | None = None):
        self.forms: FormRegistry = ctx.forms
        self.ctx, self.session, self.data = ctx, session, data
        self.per_step = per_step or {}
        self.writers = last_writers(steps or [])
        self._people: dict[str, str] | None = None

    def values(self, step: Completion) -> Mapping[str, Any]:
        """What this step recorded: its own data, or the case data for the fields no later step replaced."""
        own = self.per_step.get(step.task_id)
        if own is not None:
            return {name: own[name] for name in step.fields if name in own}
        return {name: self.data[name] for name in step.fields
                if name in self.data and self.writers.get(name) is step}

    def schema(self, form_key: str | None) -> Mapping[str, Any]:
        if not form_key:
            return {}
        try:
            return self.forms.schema(form_key)
        except UnknownForm:
            return {}

    def fields(self, step: Completion, names: Iterable[str] | None = None) -> list[RecordedField]:
        """What the step recorded (or the `names` among it), in its form's order, skipping empty values."""
        properties = self.schema(step.form_key).get("properties") or {}
        values = self.values(step)
        wanted = [n for n in properties if n in values] if names is None else \
            [n for n in names if n in properties and n in values]
        shown: list[RecordedField] = []
        for name in wanted:
            shown.extend(self._field(name, properties[name], values[name]))
        return shown

    def _field(self, name: str, prop: Mapping[str, Any], value: Any, prefix: str = "") -> list[RecordedField]:
        title = f"{prefix}{prop.get('title') or name}"
        if value is None or value == "" or value == []:
            return []
        if isinstance(value, Mapping) and isinstance(prop.get("properties"), Mapping):
            return [field for sub, sub_prop in prop["properties"].items()
                    for field in self._field(f"{name}.{sub}", sub_prop, value.get(sub), f"{title} — ")]
        if isinstance(value, bool):
            return [RecordedField(name, title, value, "boolean")]
        return [RecordedField(name, title, self.text(name, prop, value))]

    def text(self, name: str, prop: Mapping[str, Any], value: Any) -> str:
        labels = prop.get("x-labels")
        if isinstance(labels, Mapping) and isinstance(value, str) and value in labels:
            return str(labels[value])
        if prop.get("x-options") == "pacs_studies" and isinstance(value, str):
            from engine.services.pacs_studies import study_label

            return study_label(self.ctx, self.data, value)  # the study's date, modality, description; not its UID
        if prop.get("x-options") == "protocols" and isinstance(value, str):
            from engine.services.protocols import protocol_catalogue

            found = protocol_catalogue(self.ctx).get(value)
            return found.label if found is not None else value
        if isinstance(value, bool):
            return "Oui" if value else "Non"
        if isinstance(value, float):
            return f"{value:g}".replace(".", ",")
        if isinstance(value, str) and name.split(".")[-1].endswith("_id"):
            return self.person(value)
        if isinstance(value, str):
            return _french_moment(value, prop)
        return str(value)

    def person(self, username: str) -> str:
        if self._people is None:
            self._people = {}
        if username not in self._people:
            self._people.update(display_names(self.session, [username]))
        return self._people.get(username, username)

    def summary(self, step: Completion) -> str:
        """What the history says of a completed step: its form's ``x-summary`` filled with the recorded values'
        labels (the title and who did it when the form has none, or a value it names is not readable)."""
        template = summary_template(self.schema(step.form_key))
        if template is not None:
            properties = self.schema(step.form_key).get("properties") or {}
            recorded, values = self.values(step), {"by": step.by_name}
            for name in summary_fields(template):
                if name in properties and recorded.get(name) not in (None, ""):
                    values[name] = self.text(name, properties[name], recorded[name])
            filled = fill_summary(template, values)
            if filled is not None:
                return filled
        return f"{step.title} — {step.by_name}"


def recorded_steps(reader: FieldReader, steps: list[Completion]) -> list[RecordedStep]:
    """Every completed step with what it recorded."""
    return [RecordedStep(step, tuple(reader.fields(step))) for step in steps]


def describe_timeline(reader: FieldReader, steps: list[Completion], timeline: list[dict[str, Any]]) -> None:
    """Give each completed step's history entry the sentence saying what happened (``summary``); who acted is
    named with the case's other people (engine.services.cases, one query)."""
    by_task = {step.task_id: step for step in steps}
    for entry in timeline:
        step = by_task.get(entry["detail"].get("task_id")) if entry.get("action") == "task.completed" else None
        if step is not None:
            entry["summary"] = reader.summary(step)


def _french_moment(value: str, prop: Mapping[str, Any]) -> str:
    """A date (dd/mm/yyyy) or a typed date and time (dd/mm/yyyy HH:MM) as people read them; other text as is."""
    pattern = str(prop.get("pattern") or "")
    if prop.get("format") == "date" and len(value) == 10:
        return f"{value[8:10]}/{value[5:7]}/{value[0:4]}"
    if pattern.startswith("^[0-9]{4}-") and "T" in pattern and len(value) >= _LOCAL_MOMENT:
        return f"{value[8:10]}/{value[5:7]}/{value[0:4]} {value[11:16]}"
    return value
