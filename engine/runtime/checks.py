"""Deployment checks: a diagram must contain no code and only expressions the safe language accepts.

The runtime refuses unsafe expressions anyway (the safe script engine is the guarantee); these checks
make the refusal early, complete, and point at the element that causes it. Finding messages are in French:
process designers read them in the designer page and in `telerad validate`.
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
_NO_SCRIPT_TASK = ("Tâche de script interdite : un diagramme ne peut pas contenir de code. Remplacez-la par une "
                   "tâche de service (opération enregistrée) ou par une tâche de règle métier (table DMN).")
_NO_PRE_POST_SCRIPT = ("Les scripts avant/après (preScript, postScript) sont interdits : un diagramme ne peut pas "
                       "contenir de code. Supprimez-les et utilisez une tâche de service ou une table DMN.")
EXPRESSION_HINT = ("Une expression ne peut utiliser que les données du dossier, des constantes, des comparaisons "
                   "et des opérateurs simples (ni appel de fonction, ni accès à un attribut).")


def refusal_reason(err: Exception) -> str:
    """Why an expression was refused, in French, for a finding."""
    if isinstance(err, ExpressionRefused):
        return err.explanation
    if isinstance(err, SyntaxError):
        where = f" près de la colonne {err.offset}" if err.offset else ""
        return f"syntaxe incorrecte{where} ({err.msg})"
    return f"{err.__class__.__name__} : {err}"


def expression_refused(place: str, expression: str, err: Exception) -> str:
    """A finding message for an expression refused in `place` ("la condition", "le paramètre « x »"...)."""
    return f"Expression refusée dans {place} : « {expression} » — {refusal_reason(err)}. {EXPRESSION_HINT}"


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
        findings.append(Finding(_element_id(task), "no-script", _NO_SCRIPT_TASK, filename))
    for name in _SCRIPT_EXTENSIONS:
        for node in root.iter(f"{{{SPIFF_NS}}}{name}"):
            if (node.text or "").strip():
                findings.append(Finding(_element_id(node), "no-script",
                                        f"Le script « {name} » est interdit : un diagramme ne peut pas contenir de "
                                        "code. Supprimez-le et utilisez une tâche de service ou une table DMN.",
                                        filename))
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
        yield Finding(element, "no-script", _NO_PRE_POST_SCRIPT, filename)
    if getattr(task_spec, "script", None):
        yield Finding(element, "no-script", _NO_SCRIPT_TASK, filename)
    for place, expression in _expressions_of(task_spec):
        try:
            parse_expression(expression)
        except (ExpressionRefused, SyntaxError) as err:
            yield Finding(element, "safe-expression", expression_refused(place, expression, err), filename)
    operation = getattr(task_spec, "operation_name", None)
    if operation is not None and operation not in operations.names():
        known = ", ".join(sorted(operations.names())) or "aucune"
        yield Finding(element, "service-operation",
                      f"L'opération de service « {operation} » n'existe pas dans Telerad. Choisissez une opération "
                      f"enregistrée : {known}.", filename)
    engine = getattr(task_spec, "dmnEngine", None)
    if engine is not None:
        yield from _check_decision_table(element, engine.decision_table, filename)


def _expressions_of(task_spec: Any) -> Iterator[tuple[str, str]]:
    """(where, expression) pairs; `where` names the place in French, e.g. "la condition"."""
    for condition, _target in getattr(task_spec, "cond_task_specs", []) or []:
        text = condition.args[0] if hasattr(condition, "args") and condition.args else condition
        if text:
            yield "la condition d'un flux sortant", text
    event = getattr(task_spec, "event_definition", None)
    if event is not None:
        if getattr(event, "expression", None):
            yield "l'expression de l'événement", event.expression
        for prop in getattr(event, "correlation_properties", []) or []:
            yield "la corrélation du message", prop.retrieval_expression
    for name, param in (getattr(task_spec, "operation_params", None) or {}).items():
        yield f"le paramètre « {name} »", param.get("value", "")
    for attribute, place in (("cardinality", "la cardinalité (multi-instance)"),
                             ("condition", "la condition d'achèvement (multi-instance)")):
        value = getattr(task_spec, attribute, None)
        if isinstance(value, str) and value:
            yield place, value


def _check_decision_table(element: str, table: Any, filename: str) -> Iterator[Finding]:
    for table_input in table.inputs:
        if table_input.expression:
            yield from _dmn_cell(element, "l'expression d'entrée de la table de décision", table_input.expression,
                                 filename)
    for rule in table.rules:
        for entry in rule.inputEntries:
            for cell in entry.lhs:
                if cell:
                    yield from _dmn_cell(element, f"la cellule d'entrée de la règle {rule.row_number} de la table "
                                                  "de décision", cell, filename, match=True)
        for entry in rule.outputEntries:
            if entry.text:
                yield from _dmn_cell(element, f"la cellule de sortie de la règle {rule.row_number} de la table "
                                              "de décision", entry.text, filename)


def _dmn_cell(element: str, place: str, text: str, filename: str, match: bool = False) -> Iterator[Finding]:
    candidates = [text]
    if match:
        candidates = [_DMN_QUESTION.sub("dmninputexpr", text)] if "?" in text else [text, f"v {text}"]
    last_error: Exception = ExpressionRefused("no candidate")
    for candidate in candidates:
        try:
            parse_expression(candidate)
            return
        except (ExpressionRefused, SyntaxError) as err:
            last_error = err
    yield Finding(element, "safe-expression", expression_refused(place, text, last_error), filename)
