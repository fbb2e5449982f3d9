"""A running workflow, with what the rest of the engine needs to know about it (no SpiffWorkflow types leak)."""

from __future__ import annotations

import json
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.task import TaskState

from engine.errors import NotFound, TeleradError
from engine.runtime.charter_facts import ACTOR_ATTRIBUTE, facts_of, role_of, withdraw
from engine.runtime.definitions import ParsedDefinition
from engine.runtime.script_engine import SafeScriptEngine


class WorkflowFailed(TeleradError):
    """The diagram could not go on (a refused expression, a failing service task...)."""


@dataclass(frozen=True)
class UserTaskInfo:
    task_id: str
    spec_name: str
    title: str
    lane: str | None
    form_key: str | None
    process_id: str
    urgency: str | None = None
    assignee: str | None = None
    candidates: tuple[str, ...] | None = None
    due_at: datetime | None = None  # the earliest timer attached to the task (boundary event)
    charter_role: str | None = None  # engine.domain.charter_roles


@dataclass(frozen=True)
class TimerInfo:
    task_id: str
    spec_name: str
    due_at: datetime
    expression: str
    setting: str | None = None  # the administrator setting the duration came from, if any


@dataclass(frozen=True)
class SubscriptionInfo:
    task_id: str
    message_name: str
    correlation_key: str


@dataclass(frozen=True)
class Snapshot:
    user_tasks: tuple[UserTaskInfo, ...]
    timers: tuple[TimerInfo, ...]
    subscriptions: tuple[SubscriptionInfo, ...]
    completed: bool
    facts_seq: int = 0  # sequence number of the latest charter fact (engine.runtime.charter_facts)


def correlation_key(values: dict[str, Any]) -> str:
    """Canonical text of correlation values, used to index and route messages."""
    return json.dumps(values, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))


class LiveWorkflow:
    def __init__(self, workflow: BpmnWorkflow, definition: ParsedDefinition):
        self.workflow = workflow
        self.definition = definition
        self._open_data: list[Any] | None = None  # set by snapshot(), cleared by every change

    @classmethod
    def start(cls, definition: ParsedDefinition, script_engine: SafeScriptEngine,
              data: dict[str, Any]) -> LiveWorkflow:
        workflow = BpmnWorkflow(definition.spec, definition.subprocess_specs, script_engine=script_engine)
        # Start data belongs to the tokens (task data), where expressions and forms read it.
        for task in workflow.get_tasks(state=TaskState.READY):
            task.set_data(**data)
        live = cls(workflow, definition)
        live._advance()
        return live

    def case_data(self) -> dict[str, Any]:
        """What the case knows now (a copy): the data of its open tasks, or of the last task that ran."""
        return dict(self.latest_data())

    def latest_data(self) -> Mapping[str, Any]:
        """The same, read-only (for summaries computed on every save)."""
        open_data = self._open_data if self._open_data is not None else [
            t.data for t in self.workflow.get_tasks(state=TaskState.READY | TaskState.WAITING)]
        if open_data:
            return ChainMap(*reversed(open_data))  # no copy: the latest task's values first
        last = self.workflow.last_task
        return MappingProxyType(last.data) if last is not None else MappingProxyType({})

    def _advance(self) -> None:
        self._open_data = None
        try:
            self.workflow.do_engine_steps()
        except SpiffWorkflowException as err:
            raise WorkflowFailed(_describe(err)) from err

    def ready_user_task(self, task_id: str) -> Any:
        task = self.workflow.get_task_from_id(UUID(task_id))
        if task is None or not task.task_spec.manual or task.state != TaskState.READY:
            raise NotFound("Cette tâche n’est plus ouverte.")  # shown as is by the API and the pages
        return task

    def task_role(self, task_id: str) -> str | None:
        """The charter role of an open user task (engine.domain.charter_roles), if its element has one."""
        role = _properties(self.ready_user_task(task_id).task_spec).get("charterRole")
        return role if isinstance(role, str) and role else None

    def task_data(self, task_id: str) -> dict[str, Any]:
        return dict(self.ready_user_task(task_id).data)

    def complete_user_task(self, task_id: str, data: dict[str, Any], actor_id: str | None = None) -> None:
        task = self.ready_user_task(task_id)
        task.set_data(**data)
        record_as = _properties(task.task_spec).get("completedByVariable")
        if record_as and actor_id is not None:
            task.set_data(**{record_as: actor_id})
        setattr(self.workflow, ACTOR_ATTRIBUTE, actor_id)  # who completed it, for the charter facts
        try:
            task.run()
        except SpiffWorkflowException as err:
            raise WorkflowFailed(_describe(err)) from err
        finally:
            setattr(self.workflow, ACTOR_ATTRIBUTE, None)
        self._advance()

    def charter_facts(self) -> Mapping[str, Any]:
        """What the case has done, by charter role (engine.runtime.charter_facts); read-only use."""
        return facts_of(self.workflow)

    def reset_to_role(self, role: str) -> bool:
        """Take the case back to the latest completed element of this charter role (e.g. "routing"), which runs
        again; the facts recorded since are withdrawn, since the steps after it will be done again. False when
        the case never passed such an element."""
        passed = [t for t in self.workflow.get_tasks(state=TaskState.COMPLETED)
                  if t.workflow is self.workflow and role_of(t.task_spec) == role]
        if not passed:
            return False
        target = max(passed, key=lambda t: t.last_state_change)
        facts = facts_of(self.workflow)
        mark = int(facts.get("roles", {}).get(role, {}).get("seq", 0))
        later = [name for name, entry in facts.get("roles", {}).items() if int(entry.get("seq", 0)) > mark]
        self._open_data = None
        try:
            self.workflow.reset_from_task_id(target.id)
        except SpiffWorkflowException as err:
            raise WorkflowFailed(_describe(err)) from err
        # SpiffWorkflow drops the reset tasks from the tree but not from the event manager: forget the timers and
        # messages they were waiting for.
        manager, top = self.workflow.event_manager, self.workflow
        for task_id, task in list(manager.tasks.items()):
            owner = task.workflow
            alive = owner is top or top.subprocesses.get(owner.parent_task_id) is owner
            if not alive or owner.tasks.get(task_id) is not task:
                manager.remove_task(task)
        withdraw(self.workflow, later, f"reprise à l'étape {target.task_spec.bpmn_name or role}")
        self._advance()
        return True

    def catch_message(self, task_id: str, correlation: dict[str, Any], payload: dict[str, Any]) -> bool:
        task = self.workflow.event_manager.tasks.get(UUID(task_id))
        if task is None:
            return False
        event_definition = task.task_spec.event_definition
        correlations = {key: dict(correlation) for key in _correlation_keys(event_definition)}
        try:
            # The correlation values are part of the message, as its retrieval expressions expect.
            self.workflow.catch(BpmnEvent(event_definition, {**payload, **correlation}, correlations))
        except SpiffWorkflowException as err:
            raise WorkflowFailed(_describe(err)) from err
        self._advance()
        return True

    def fire_timers(self) -> None:
        try:
            self.workflow.refresh_timers()
        except SpiffWorkflowException as err:
            raise WorkflowFailed(_describe(err)) from err
        self._advance()

    def element_states(self) -> tuple[list[str], list[str]]:
        """Diagram element ids already passed, and those where the case stands now (for highlighting)."""
        done, current = set(), set()
        for task in self.workflow.get_tasks():
            element = getattr(task.task_spec, "bpmn_id", None)
            if not element:
                continue
            if task.state == TaskState.COMPLETED:
                done.add(element)
            elif task.state in (TaskState.READY, TaskState.WAITING, TaskState.STARTED):
                current.add(element)
        return sorted(done - current), sorted(current)

    def snapshot(self) -> Snapshot:
        timers, subscriptions = self._waiting_events()
        due_by_split: dict[Any, datetime] = {}
        for timer, split_id in timers:
            if split_id is not None:
                due_by_split[split_id] = min(timer.due_at, due_by_split.get(split_id, timer.due_at))
        user_tasks = []
        open_data = []
        # One walk of the task tree (the top workflow's iterator also enters call activities): user tasks,
        # and the data of every open task, kept for latest_data() until the workflow changes again.
        for task in self.workflow.get_tasks(state=TaskState.READY | TaskState.WAITING):
            open_data.append(task.data)
            if task.state != TaskState.READY or not task.task_spec.manual:
                continue
            spec = task.task_spec
            properties = _properties(spec)
            user_tasks.append(UserTaskInfo(
                task_id=str(task.id), spec_name=spec.bpmn_id or spec.name, title=spec.bpmn_name or spec.name,
                lane=self.definition.lane_roles.get(spec.lane, spec.lane) if spec.lane else None,
                form_key=properties.get("formJsonSchemaFilename"),
                process_id=task.workflow.spec.name, urgency=_text_or_none(task.data.get("urgency")),
                assignee=_text_or_none(task.data.get(properties.get("assigneeVariable", ""))),
                candidates=_candidates(task.data, properties.get("candidatesVariable")),
                due_at=due_by_split.get(_boundary_split(task)),
                charter_role=properties.get("charterRole"),
            ))
        self._open_data = open_data
        return Snapshot(tuple(user_tasks), tuple(t for t, _ in timers), tuple(subscriptions), self.workflow.completed,
                        int(facts_of(self.workflow).get("seq", 0)))

    def _waiting_events(self) -> tuple[list[tuple[TimerInfo, Any]], list[SubscriptionInfo]]:
        timers: list[tuple[TimerInfo, Any]] = []
        subscriptions = []
        script_engine = self.workflow.script_engine
        for task in self.workflow.event_manager.tasks.values():
            if task.state != TaskState.WAITING:
                continue
            event = task.task_spec.event_definition
            if isinstance(event, TimerEventDefinition):
                value = task.internal_data.get("event_value")
                if isinstance(value, str):
                    used = script_engine.environment.evaluator.settings_used(event.expression, task.data)
                    timers.append((TimerInfo(str(task.id), task.task_spec.bpmn_id or task.task_spec.name,
                                             _as_utc(value), event.expression, used[-1] if used else None),
                                   _boundary_split(task)))
            elif isinstance(event, MessageEventDefinition):
                values = {}
                for prop in event.correlation_properties:
                    try:
                        values[prop.name] = script_engine.environment.evaluate(prop.retrieval_expression, task.data)
                    except Exception:  # the value is not known yet: subscribe without it
                        values[prop.name] = None
                subscriptions.append(SubscriptionInfo(str(task.id), event.name, correlation_key(values)))
        return timers, subscriptions

    def cancel(self) -> None:
        """Stop the case: every open task and waiting event is cancelled."""
        self._open_data = None
        self.workflow.cancel()

    def update_data(self, values: dict[str, Any]) -> int:
        """Merge values (one level deep for objects such as `patient`) into the data of the tasks waiting
        or ready; returns how many tasks were updated."""
        self._open_data = None
        tasks = self.workflow.get_tasks(state=TaskState.READY | TaskState.WAITING)
        for task in tasks:
            for key, value in values.items():
                current = task.data.get(key)
                task.data[key] = {**current, **value} if isinstance(current, dict) and isinstance(value, dict) \
                    else value
        return len(tasks)

    def rearm_timer(self, task_id: str, due_at: datetime) -> bool:
        """Move a waiting timer (administrator re-arm); returns False if it is no longer waiting."""
        task = self.workflow.event_manager.tasks.get(UUID(task_id))
        if task is None or task.state != TaskState.WAITING:
            return False
        task.internal_data["event_value"] = due_at.isoformat()
        return True


def _boundary_split(task: Any) -> Any:
    """Tasks and the boundary events attached to them share a BoundaryEventSplit parent."""
    parent = task.parent
    if parent is not None and type(parent.task_spec).__name__ == "BoundaryEventSplit":
        return parent.id
    return None


def _properties(spec: Any) -> dict[str, str]:
    """Telerad's task extension properties (spiffworkflow:properties), e.g. formJsonSchemaFilename."""
    return (getattr(spec, "extensions", None) or {}).get("properties", {})


def _candidates(data: dict[str, Any], variable: str | None) -> tuple[str, ...] | None:
    """The users a task is offered to, from the task data path the diagram names, e.g. ``offer.candidates``
    (None: no restriction; an empty tuple: offered to nobody)."""
    if not variable:
        return None
    value: Any = data
    for part in variable.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _correlation_keys(event_definition: Any) -> set[str]:
    keys: set[str] = set()
    for prop in getattr(event_definition, "correlation_properties", []) or []:
        keys.update(prop.correlation_keys)
    return keys


def _as_utc(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _describe(err: SpiffWorkflowException) -> str:
    task = getattr(err, "task", None)
    where = f" at '{task.task_spec.bpmn_id or task.task_spec.name}'" if task is not None else ""
    cause = err.__cause__ or err.__context__
    because = f": {cause}" if cause is not None and str(cause) not in str(err) else ""
    return f"{str(err).strip()}{because}{where}"
