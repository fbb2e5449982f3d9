"""Workflow state <-> compact JSON, without the spec.

The spec is the same for every instance of a definition version and is cached by content hash, so the
state blob keeps only task tree, data and events (about 40% cheaper per round trip than SpiffWorkflow's
default, which embeds the whole spec in every save).
"""

from __future__ import annotations

import json
import os
from typing import Any

import orjson
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.task import Task, TaskState

from engine.runtime.definitions import ParsedDefinition
from engine.runtime.script_engine import SafeScriptEngine

FORMAT_VERSION = "telerad-1"
# datetimes and dataclasses go through SpiffWorkflow's converters, as with the json module
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class SpeclessWorkflowConverter(BpmnWorkflowConverter):
    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = super(BpmnWorkflowConverter, self).to_dict(workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any], definition: ParsedDefinition | None = None) -> BpmnWorkflow:
        if definition is None:
            raise ValueError("a definition is required to restore a workflow")
        workflow = self.target_class(definition.spec, definition.subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], _uuid, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(_uuid(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


class FinishedTaskCache:
    """Encodes a finished task once and reuses its JSON on every later save of the same workflow object.

    A finished task (completed, cancelled, error) and its parent (finished before it) no longer change:
    SpiffWorkflow never runs them again and Telerad only updates the data of ready or waiting tasks. The
    cached fragment is keyed by what could still move (state, last state change, children) and lives on
    the task object itself, so a workflow restored from the database starts with an empty cache. With
    `verify` set (the test suite sets TELERAD_VERIFY_STATE_CACHE=1), every reuse is checked against a
    fresh encoding and a difference raises.
    """

    def __init__(self, to_dict: Any, default: Any, verify: bool) -> None:
        self._to_dict = to_dict  # SpiffWorkflow's own conversion, typename included
        self._default = default
        self._verify = verify

    def convert(self, task: Task) -> Any:
        if not task._state & TaskState.FINISHED_MASK:
            return self._to_dict(task)
        key = (task._state, task.last_state_change, tuple(task._children))
        cached = getattr(task, "_telerad_json", None)
        if cached is not None and cached[0] == key:
            if self._verify and _encode(self._to_dict(task), self._default) != cached[2]:
                raise AssertionError(f"finished task {task.id} ({task.task_spec.name}) changed after it ended")
            return cached[1]
        dct = self._to_dict(task)
        try:
            encoded = _encode(dct, self._default)
        except TypeError:  # not encodable by orjson: left to the json fallback
            return dct
        task._telerad_json = (key, orjson.Fragment(encoded), encoded)  # type: ignore[attr-defined]
        return task._telerad_json[1]  # type: ignore[attr-defined]


def _encode(dct: dict[str, Any], default: Any) -> bytes:
    return orjson.dumps(dct, default=default, option=_ORJSON_OPTIONS)


def _uuid(value: str) -> Any:
    from uuid import UUID

    return UUID(value)


class WorkflowCodec:
    def __init__(self, fast_json: bool = True) -> None:
        """`fast_json` encodes with orjson (about ten times faster than the json module used by SpiffWorkflow's
        own serializer); anything orjson cannot encode (integers beyond 64 bits...) falls back to json."""
        config = dict(SPIFF_CONFIG)
        config[BpmnWorkflow] = SpeclessWorkflowConverter
        self._registry = BpmnWorkflowSerializer.configure(config)
        self._serializer = BpmnWorkflowSerializer(self._registry)
        self._fast = fast_json
        self._default = self._serializer._encoder_cls().default
        # The json fallback cannot embed orjson fragments, so it has its own registry without the cache.
        self._plain = WorkflowCodec(fast_json=False) if fast_json else self
        if fast_json:
            typename = self._registry.typenames[Task]
            self._registry.convert_to_dict[typename] = FinishedTaskCache(
                self._registry.convert_to_dict[typename], self._default,
                verify=os.environ.get("TELERAD_VERIFY_STATE_CACHE") == "1").convert

    def dumps(self, workflow: BpmnWorkflow) -> str:
        if self._fast:
            try:
                return orjson.dumps(self._to_dict(workflow), default=self._default,
                                    option=_ORJSON_OPTIONS).decode("utf-8")
            except TypeError:
                pass
        plain = self._plain
        return json.dumps(plain._to_dict(workflow), separators=(",", ":"), ensure_ascii=False,
                          cls=plain._serializer._encoder_cls)

    def _to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        self._registry._encoder_mode = True
        try:
            dct = self._serializer.to_dict(workflow)
        finally:
            self._registry._encoder_mode = False
        dct["format"] = FORMAT_VERSION
        return dct

    def loads(self, text: str, definition: ParsedDefinition, script_engine: SafeScriptEngine) -> BpmnWorkflow:
        dct = orjson.loads(text) if self._fast else json.loads(text)
        if dct.pop("format", None) != FORMAT_VERSION:
            raise ValueError("unknown workflow state format")
        workflow = self._registry.convert_from_dict["BpmnWorkflow"](dct, definition=definition)
        # Deserialization restores SpiffWorkflow's default (eval-based) engine: always put ours back.
        workflow.script_engine = script_engine
        return workflow
