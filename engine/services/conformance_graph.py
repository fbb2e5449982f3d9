"""A static call graph of the product's Python code, built with ast (nothing is imported), for the conformance
matrix: which ``@enforces`` functions a product entry point can reach.

Nodes are functions and methods (``module.func``, ``module.Class.method``, nested ``module.outer.inner``),
classes (``module.Class``) and module bodies (``module:<module>``). An edge means "may run": a reference to a
function (called or passed as a value, e.g. a callback), the instantiation of a class (its dunder methods),
an import (the imported module's body runs), a decorated nested function (the decorator registers it).

Names are resolved through nested scopes, module definitions and imports (absolute and relative, at module
or function level, re-exports included); ``self.x``/``cls.x`` through the enclosing class and its bases.
A method called on an object whose class cannot be known statically (``ctx.runtime.definition(...)``,
``directory.site(...)``) is over-approximated BY NAME: the edge goes to every project method of that name.
Over-approximation can only make a function look reachable when it is not, never the reverse; module-level
functions are never reached by name, only through a resolved reference.

Service operations (``engine/services/operations*.py``: dict entries ``"telerad.x": fn`` or
``registry.register("telerad.x", fn)``) are NOT edges from the function that registers them: an operation is
reachable only when a deployed diagram calls it (see conformance_entries.operation_entries).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

PRODUCT_PACKAGES = ("engine", "integrations", "web", "forms")
_OPERATION_MODULES = "engine.services.operations"
TEMPLATES = "web:<templates>"
Symbol = tuple[str, str]  # ("module" | "func" | "class", key)
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass
class Module:
    name: str
    tree: ast.Module
    is_package: bool
    imports: dict[str, str] = field(default_factory=dict)  # local alias -> dotted target
    functions: dict[str, str] = field(default_factory=dict)  # module-level def -> key
    classes: dict[str, str] = field(default_factory=dict)  # module-level class -> key


@dataclass
class Scope:
    key: str
    module: str
    node: ast.AST
    class_key: str | None = None  # the class of a method
    parent: str | None = None  # the enclosing function (lexical scope)
    nested: dict[str, str] = field(default_factory=dict)  # nested def name -> key

    @property
    def decorators(self) -> list[ast.expr]:
        return list(getattr(self.node, "decorator_list", []))


@dataclass
class ClassInfo:
    key: str
    module: str
    node: ast.ClassDef
    methods: dict[str, str] = field(default_factory=dict)


@dataclass
class CodeGraph:
    modules: dict[str, Module] = field(default_factory=dict)
    scopes: dict[str, Scope] = field(default_factory=dict)
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    by_name: dict[str, list[str]] = field(default_factory=dict)  # method name -> method keys
    edges: dict[str, set[str]] = field(default_factory=dict)
    operations: dict[str, str] = field(default_factory=dict)  # operation name -> function key
    cache: dict[tuple[str, ...], Any] = field(default_factory=dict)  # resolution results (the linker's)

    def marks(self) -> dict[str, list[str]]:
        """Function key -> rule ids of its ``@enforces(...)`` decorator."""
        found: dict[str, list[str]] = {}
        for key, scope in self.scopes.items():
            for decorator in scope.decorators:
                if isinstance(decorator, ast.Call) and last_name(decorator.func) == "enforces":
                    found.setdefault(key, []).extend(
                        a.value for a in decorator.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
        return found

    def reached_by(self, entries: dict[str, list[str]], wanted: set[str]) -> dict[str, set[str]]:
        """For each wanted node, the labels of the entry points (entry key -> labels) from which it may run."""
        labels: list[str] = []
        bits: dict[str, int] = {}
        for key, names in entries.items():
            for name in names:
                bits[key] = bits.get(key, 0) | (1 << len(labels))
                labels.append(name)
        pending = list(bits)
        while pending:
            node = pending.pop()
            mask = bits[node]
            for successor in self.edges.get(node, ()):
                merged = bits.get(successor, 0) | mask
                if merged != bits.get(successor, 0):
                    bits[successor] = merged
                    pending.append(successor)
        return {node: {labels[i] for i in range(len(labels)) if bits.get(node, 0) >> i & 1} for node in wanted}


def last_name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def module_body(module: str) -> str:
    return f"{module}:<module>"


def collect_module(graph: CodeGraph, module: Module) -> None:
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                module.imports[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            base = absolute_import(module, node)
            for alias in node.names:
                if alias.name != "*":
                    module.imports[alias.asname or alias.name] = f"{base}.{alias.name}" if base else alias.name
    body = Scope(module_body(module.name), module.name, module.tree)
    graph.scopes[body.key] = body
    _collect_body(graph, module, module.tree.body, module.name, body, None)


def absolute_import(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.name.split(".")
    if not module.is_package:
        package = package[:-1]
    package = package[:len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def _collect_body(graph: CodeGraph, module: Module, body: list[ast.stmt], prefix: str, enclosing: Scope,
                  class_key: str | None) -> None:
    for statement in _statements(body):
        if isinstance(statement, FUNCTIONS):
            key = f"{prefix}.{statement.name}"
            scope = Scope(key, module.name, statement, class_key,
                          None if enclosing.key.endswith(":<module>") or class_key else enclosing.key)
            graph.scopes[key] = scope
            if class_key is not None:
                graph.classes[class_key].methods[statement.name] = key
                graph.by_name.setdefault(statement.name, []).append(key)
            elif enclosing.key.endswith(":<module>"):
                module.functions[statement.name] = key
            else:
                enclosing.nested[statement.name] = key
            _collect_body(graph, module, statement.body, key, scope, None)
        elif isinstance(statement, ast.ClassDef):
            key = f"{prefix}.{statement.name}"
            graph.classes[key] = ClassInfo(key, module.name, statement)
            if enclosing.key.endswith(":<module>") and class_key is None:
                module.classes[statement.name] = key
            else:
                enclosing.nested[statement.name] = key
            _collect_body(graph, module, statement.body, key, enclosing, key)


def _statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements of a body, with those inside if/try/with/for blocks (definitions can hide there)."""
    found: list[ast.stmt] = []
    for statement in body:
        found.append(statement)
        if isinstance(statement, ast.If | ast.Try | ast.With | ast.For | ast.While):
            for block in ("body", "orelse", "finalbody"):
                found += _statements(getattr(statement, block, []))
            for handler in getattr(statement, "handlers", []):
                found += _statements(handler.body)
    return found


def collect_operations(graph: CodeGraph) -> set[int]:
    """Record operation name -> function; return the ids of the AST nodes that register them (not edges)."""
    skipped: set[int] = set()
    for scope in graph.scopes.values():
        if not scope.module.startswith(_OPERATION_MODULES) or not isinstance(scope.node, FUNCTIONS):
            continue
        for node in ast.walk(scope.node):
            pairs: list[tuple[ast.expr | None, ast.expr]] = []
            if isinstance(node, ast.Dict):
                pairs = list(zip(node.keys, node.values, strict=True))
            elif isinstance(node, ast.Call) and last_name(node.func) == "register" and len(node.args) == 2:
                pairs = [(node.args[0], node.args[1])]
            for name, value in pairs:
                if not (isinstance(name, ast.Constant) and isinstance(name.value, str) and isinstance(value, ast.Name)):
                    continue
                target = scope.nested.get(value.id) or graph.modules[scope.module].functions.get(value.id)
                if target is not None:
                    graph.operations[name.value] = target
                    skipped.add(id(value))
    return skipped
