"""SpiffWorkflow script engine that evaluates through the safe expression language only."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from engine.errors import ExpressionRefused
from engine.runtime.expressions import SafeEvaluator, parse_expression

Operation = Callable[..., Any]
_SERVICE_DATA: ContextVar[Mapping[str, Any] | None] = ContextVar("telerad_service_data", default=None)


def service_data() -> Mapping[str, Any]:
    """The data of the service task whose operation is running (empty outside one), for operations that need
    more of the case than their parameters, e.g. the charter pack a case follows (engine.services.charter_routing)."""
    return _SERVICE_DATA.get() or {}


class OperationRegistry:
    """Python operations that service tasks may call, by name. Nothing else is callable from a diagram."""

    def __init__(self) -> None:
        self._operations: dict[str, Operation] = {}
        self._result_domains: dict[str, dict[str, tuple[Any, ...]]] = {}
        self._result_values: dict[str, tuple[Any, ...]] = {}

    def register(self, name: str, operation: Operation, result_domains: Mapping[str, Iterable[Any]] | None = None,
                 result_values: Iterable[Any] | None = None) -> None:
        """`result_domains` declares, for keys of the dict the operation returns, every value it can take
        (e.g. ``{"contrast": (True, False)}``); `result_values`, every value of a scalar result (e.g.
        ``("inject", "change_protocol")``). The deployment-time charter checks use them to tell whether a
        gateway condition on the result can ever be true. Whatever is not declared can hold anything."""
        if name in self._operations:
            raise ValueError(f"operation {name!r} is already registered")
        self._operations[name] = operation
        if result_domains:
            self._result_domains[name] = {str(key): tuple(values) for key, values in result_domains.items()}
        if result_values is not None:
            self._result_values[name] = tuple(result_values)

    def result_domains(self, name: str) -> Mapping[str, tuple[Any, ...]]:
        """The declared value domains of the result's keys (empty when nothing was declared)."""
        return self._result_domains.get(name, {})

    def result_values(self, name: str) -> tuple[Any, ...] | None:
        """The declared values of a scalar result, or None when any value is possible."""
        return self._result_values.get(name)

    def names(self) -> frozenset[str]:
        return frozenset(self._operations)

    def get(self, name: str) -> Operation:
        try:
            return self._operations[name]
        except KeyError:
            raise ExpressionRefused(f"service operation {name!r} is not registered") from None


class SafeEnvironment(BasePythonScriptEngineEnvironment):
    def __init__(self, evaluator: SafeEvaluator, operations: OperationRegistry):
        super().__init__({})
        self.evaluator = evaluator
        self.operations = operations

    def evaluate(self, expression: str, context: Mapping[str, Any], external_context: Any = None) -> Any:
        return self.evaluator.evaluate(expression, context, external_context)

    def execute(self, script: str, context: Any, external_context: Any = None) -> bool:
        raise ExpressionRefused("scripts are not allowed in Telerad diagrams; use a service task or DMN")

    def call_service(self, context: Mapping[str, Any], operation_name: str = "", operation_params: Any = None,
                     **kwargs: Any) -> str:
        operation = self.operations.get(operation_name)
        params = {name: spec["value"] for name, spec in (operation_params or {}).items()}
        token = _SERVICE_DATA.set(context)
        try:
            return json.dumps(operation(**params))
        finally:
            _SERVICE_DATA.reset(token)


class SafeScriptEngine(PythonScriptEngine):
    """Replaces eval/exec everywhere SpiffWorkflow evaluates diagram text."""

    environment: SafeEnvironment

    def __init__(self, evaluator: SafeEvaluator, operations: OperationRegistry):
        super().__init__(environment=SafeEnvironment(evaluator, operations))

    def validate(self, expression: str) -> None:
        # DMN relies on SyntaxError to detect cells such as "> 5"; refusals propagate as they are.
        parse_expression(expression)

    def execute(self, task: Any, script: str, external_context: Any = None) -> bool:
        raise WorkflowTaskException(
            "scripts are not allowed in Telerad diagrams", task=task,
            exception=ExpressionRefused("script refused"),
        )

    def call_service(self, task: Any, **kwargs: Any) -> str:
        try:
            return self.environment.call_service(task.data, **kwargs)
        except Exception as err:
            raise WorkflowTaskException(f"service task failed: {err}", task=task, exception=err) from err
