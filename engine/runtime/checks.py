"""Deployment checks: a diagram must contain no code and only expressions the safe language accepts.

The runtime refuses unsafe expressions anyway (the safe script engine is the guarantee); these checks
make the refusal early, complete, and point at the element that causes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from lxml import etree

from engine.errors import ExpressionRefused, Finding
from engine.runtime.expressions import parse_expression
from engine.runtime.script_engine import OperationRegistry
from engine.runtime.xml import BPMN_NS, SPIFF_NS

_SCRIPT_EXTENSIONS = ("preScript", "postScript", "script")
_DMN_QUESTION = re.compile(r"(\?)(?=(?:[^'\"]|['\"][^'\"]*['\"])*$)")


def _element_id(node: etree._Element) -> str:
    while node is not None:
        if node.get("id"):
            return node.get("id")
        node = node.getparent()
    return ""


def check_xml(root: etree._Element, filename: str) -> list[Finding]:
    """Refuse script tasks and pre/post scripts, naming the element."""
    findings = []
    for task in root.iter(f"{{{BPMN_NS}}}scriptTask"):
        findings.append(Finding(_element_id(task), "no-script",
                                "script tasks are not allowed: use a service task or a DMN table", filename))
    for name in _SCRIPT_EXTENSIONS:
        for node in root.iter(f"{{{SPIFF_NS}}}{name}"):
            if (node.text or "").strip():
                findings.append(Finding(_element_id(node), "no-script",
                                        f"{name} is not allowed: diagrams may not contain code", filename))
    return findings


def check_specs(specs: Iterable[Any], operations: OperationRegistry) -> list[Finding]:
    findings: list[Finding] = []
    for spec in specs:
        for task_spec in spec.task_specs.values():
            findings.extend(_check_task_spec(task_spec, operations, spec.file or ""))
    return findings


def _check_task_spec(task_spec: Any, operations: OperationRegistry, filename: str) -> Iterator[Finding]:
    element = getattr(task_spec, "bpmn_id", None) or task_spec.name
    if getattr(task_spec, "prescript", None) or getattr(task_spec, "postscript", None):
        yield Finding(element, "no-script", "pre/post scripts are not allowed", filename)
    if getattr(task_spec, "script", None):
        yield Finding(element, "no-script", "script tasks are not allowed", filename)
    for label, expression in _expressions_of(task_spec):
        try:
            parse_expression(expression)
        except (ExpressionRefused, SyntaxError) as err:
            yield Finding(element, "safe-expression", f"{label} '{expression}' refused: {err}", filename)
    operation = getattr(task_spec, "operation_name", None)
    if operation is not None and operation not in operations.names():
        yield Finding(element, "service-operation", f"service operation '{operation}' is not registered",
                      filename)
    engine = getattr(task_spec, "dmnEngine", None)
    if engine is not None:
        yield from _check_decision_table(element, engine.decision_table, filename)


def _expressions_of(task_spec: Any) -> Iterator[tuple[str, str]]:
    for condition, _target in getattr(task_spec, "cond_task_specs", []) or []:
        text = condition.args[0] if hasattr(condition, "args") and condition.args else condition
        if text:
            yield "condition", text
    event = getattr(task_spec, "event_definition", None)
    if event is not None:
        if getattr(event, "expression", None):
            yield "event expression", event.expression
        for prop in getattr(event, "correlation_properties", []) or []:
            yield "correlation", prop.retrieval_expression
    for name, param in (getattr(task_spec, "operation_params", None) or {}).items():
        yield f"parameter {name}", param.get("value", "")
    for attribute in ("cardinality", "condition"):
        value = getattr(task_spec, attribute, None)
        if isinstance(value, str) and value:
            yield attribute, value


def _check_decision_table(element: str, table: Any, filename: str) -> Iterator[Finding]:
    for table_input in table.inputs:
        if table_input.expression:
            yield from _dmn_cell(element, "input expression", table_input.expression, filename)
    for rule in table.rules:
        for entry in rule.inputEntries:
            for cell in entry.lhs:
                if cell:
                    yield from _dmn_cell(element, f"rule {rule.row_number} input", cell, filename, match=True)
        for entry in rule.outputEntries:
            if entry.text:
                yield from _dmn_cell(element, f"rule {rule.row_number} output", entry.text, filename)


def _dmn_cell(element: str, label: str, text: str, filename: str, match: bool = False) -> Iterator[Finding]:
    candidates = [text]
    if match:
        candidates = [_DMN_QUESTION.sub("dmninputexpr", text)] if "?" in text else [text, f"v {text}"]
    last_error: Exception | None = None
    for candidate in candidates:
        try:
            parse_expression(candidate)
            return
        except (ExpressionRefused, SyntaxError) as err:
            last_error = err
    yield Finding(element, "safe-expression", f"DMN {label} '{text}' refused: {last_error}", filename)
