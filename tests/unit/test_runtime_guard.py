"""The safe engine survives deserialization, and state is stored without the spec."""

from __future__ import annotations

import json

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from engine.runtime import Runtime, WorkflowFailed
from engine.runtime.definitions import Bundle, ParsedDefinition
from engine.runtime.live import LiveWorkflow

UNSAFE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="unsafe" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="ask" />
    <bpmn:userTask id="ask" />
    <bpmn:sequenceFlow id="f2" sourceRef="ask" targetRef="gate" />
    <bpmn:exclusiveGateway id="gate" default="f4" />
    <bpmn:sequenceFlow id="f3" sourceRef="gate" targetRef="end">
      <bpmn:conditionExpression>__import__('os').getpid() &gt; 0</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f4" sourceRef="gate" targetRef="end" />
    <bpmn:endEvent id="end" />
  </bpmn:process>
</bpmn:definitions>
"""


def raw_definition() -> ParsedDefinition:
    """A spec parsed WITHOUT our deployment checks, as if a bad diagram had slipped into storage."""
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(UNSAFE.encode(), "unsafe.bpmn")
    return ParsedDefinition(Bundle("unsafe", {"unsafe.bpmn": UNSAFE}), parser.get_spec("unsafe"), {}, "unsafe")


def test_deserialized_workflow_uses_the_safe_engine_and_refuses_unsafe_conditions():
    runtime = Runtime()
    definition = raw_definition()
    started = BpmnWorkflow(definition.spec, {})  # SpiffWorkflow's default, eval-based engine
    started.do_engine_steps()
    state = runtime.codec.dumps(started)

    restored = LiveWorkflow(runtime.codec.loads(state, definition, runtime.script_engine), definition)
    assert restored.workflow.script_engine is runtime.script_engine
    task_id = restored.snapshot().user_tasks[0].task_id
    with pytest.raises(WorkflowFailed, match="not allowed"):
        restored.complete_user_task(task_id, {})


def test_the_default_engine_would_have_run_it():
    # Control: the same diagram under SpiffWorkflow's own engine evaluates Python. Our guard matters.
    definition = raw_definition()
    workflow = BpmnWorkflow(definition.spec, {})
    workflow.do_engine_steps()
    task = workflow.get_tasks(manual=True)[0]
    task.run()
    workflow.do_engine_steps()
    assert workflow.completed


def test_state_is_stored_without_the_spec_and_is_smaller():
    runtime = Runtime()
    definition = raw_definition()
    workflow = BpmnWorkflow(definition.spec, {})
    workflow.do_engine_steps()
    ours = runtime.codec.dumps(workflow)
    assert "spec" not in json.loads(ours)
    default = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG)).serialize_json(workflow)
    assert "spec" in json.loads(default)
    assert len(ours) < len(default) / 2
