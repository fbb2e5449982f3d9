"""The only package that imports SpiffWorkflow. Everything else sees Runtime, LiveWorkflow and plain data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.runtime import clock as _clock  # noqa: F401  (installs the clock hook in SpiffWorkflow's timers)
from engine.runtime.clock import using_clock
from engine.runtime.definitions import Bundle, ParsedDefinition, SpecCache, bundles_from_library, parse_bundle
from engine.runtime.expressions import SafeEvaluator, parse_expression
from engine.runtime.live import LiveWorkflow, Snapshot, WorkflowFailed, correlation_key
from engine.runtime.script_engine import OperationRegistry, SafeScriptEngine
from engine.runtime.serializer import WorkflowCodec

__all__ = [
    "Bundle", "LiveWorkflow", "OperationRegistry", "ParsedDefinition", "Runtime", "SafeEvaluator", "Snapshot",
    "WorkflowFailed", "bundles_from_library", "correlation_key", "parse_bundle", "parse_expression", "using_clock",
]


class Runtime:
    """Parses, runs and (de)serializes workflows with the safe script engine, always."""

    def __init__(self, operations: OperationRegistry | None = None,
                 provided: Mapping[str, Mapping[str, Any]] | None = None):
        self.operations = operations or OperationRegistry()
        self.evaluator = SafeEvaluator(provided)
        self.script_engine = SafeScriptEngine(self.evaluator, self.operations)
        self.specs = SpecCache(self.operations)
        self.codec = WorkflowCodec()

    def definition(self, bundle: Bundle) -> ParsedDefinition:
        return self.specs.get(bundle)

    def start(self, bundle: Bundle, data: dict[str, Any]) -> LiveWorkflow:
        return LiveWorkflow.start(self.definition(bundle), self.script_engine, data)

    def load(self, state: str, bundle: Bundle) -> LiveWorkflow:
        definition = self.definition(bundle)
        return LiveWorkflow(self.codec.loads(state, definition, self.script_engine), definition)

    def dump(self, live: LiveWorkflow) -> str:
        return self.codec.dumps(live.workflow)
