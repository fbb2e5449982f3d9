"""The edges out of one scope of the call graph (see conformance_graph for what an edge means; names are resolved
by conformance_resolver). An attribute that cannot be resolved (an unknown object, or an instance attribute
that is not a method) is over-approximated BY NAME: every project method of that name.
"""

from __future__ import annotations

import ast

from engine.services.conformance_graph import FUNCTIONS, CodeGraph, Scope, absolute_import, module_body
from engine.services.conformance_resolver import Resolver, chain_of, name_of

_ROUTE_OR_COMMAND = {"get", "post", "put", "patch", "delete", "route", "command", "group"}


def link_scope(graph: CodeGraph, scope: Scope, skipped: set[int]) -> None:
    _Linker(graph, scope, skipped).link()


class _Linker(Resolver):
    def __init__(self, graph: CodeGraph, scope: Scope, skipped: set[int]):
        super().__init__(graph, scope)
        self.skipped = skipped
        self.targets = graph.edges.setdefault(scope.key, set())

    def link(self) -> None:
        node = self.scope.node
        if isinstance(node, ast.Module):
            self._body(node.body, in_class=False)
        elif isinstance(node, FUNCTIONS):
            self._defaults(node.args)
            self._body(node.body, in_class=False)
            self.targets.add(module_body(self.scope.module))  # a module's functions run after its body

    def _body(self, body: list[ast.stmt], in_class: bool) -> None:
        for statement in body:
            if isinstance(statement, FUNCTIONS):
                for decorator in statement.decorator_list:
                    self._visit(decorator)
                self._defaults(statement.args)
                if statement.decorator_list and not in_class and not isinstance(self.scope.node, ast.Module):
                    self.targets.add(self.scope.nested.get(statement.name, f"{self.scope.key}.{statement.name}"))
                elif isinstance(self.scope.node, ast.Module) and not in_class and self._registers(statement):
                    self.targets.add(self.module.functions.get(statement.name, ""))
            elif isinstance(statement, ast.ClassDef):
                for expression in [*statement.bases, *statement.decorator_list]:
                    self._visit(expression)
                self._class_edges(statement)
                self._body(statement.body, in_class=True)
            elif isinstance(statement, ast.Import | ast.ImportFrom):
                self._import(statement)
            else:
                self._visit(statement)

    def _registers(self, function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        """A module-level function decorated by a project function (``@register("key")``), which may keep it in
        a registry; routes and commands (``@bp.get``, ``@main.command``) are entry points, not registrations."""
        project = False
        for decorator in function.decorator_list:
            called = decorator.func if isinstance(decorator, ast.Call) else decorator
            chain = chain_of(called)
            if chain is None or len(chain) > 1 and chain[-1] in _ROUTE_OR_COMMAND:
                return False
            symbol = self.resolve(called)
            project = project or (symbol is not None and symbol[0] == "func" and chain[-1] != "enforces")
        return project

    def _defaults(self, arguments: ast.arguments) -> None:
        for default in [*arguments.defaults, *arguments.kw_defaults]:
            if default is not None:
                self._visit(default)

    def _class_edges(self, node: ast.ClassDef) -> None:
        key = next((k for k, c in self.graph.classes.items() if c.node is node), None)
        if key is None:
            return
        edges = self.graph.edges.setdefault(key, set())
        for name, method in self.graph.classes[key].methods.items():
            if name.startswith("__") and name.endswith("__"):
                edges.add(method)  # instantiating a class may run any of its dunder methods
        for base in node.bases:
            symbol = self.resolve(base)
            if symbol is not None and symbol[0] == "class":
                edges.add(symbol[1])

    def _import(self, statement: ast.Import | ast.ImportFrom) -> None:
        if isinstance(statement, ast.Import):
            names = [alias.name for alias in statement.names]
        else:
            base = absolute_import(self.module, statement)
            names = [base] + [f"{base}.{alias.name}" for alias in statement.names]
        for dotted in names:
            parts = dotted.split(".")
            for end in range(1, len(parts) + 1):
                if ".".join(parts[:end]) in self.graph.modules:
                    self.targets.add(module_body(".".join(parts[:end])))

    def _visit(self, node: ast.AST) -> None:
        if isinstance(node, (*FUNCTIONS, ast.ClassDef, ast.Import, ast.ImportFrom)):
            self._body([node], in_class=False)  # type: ignore[list-item]
            return
        if isinstance(node, ast.AnnAssign):  # annotations do not run (postponed evaluation)
            for part in (node.target, node.value):
                if part is not None:
                    self._visit(part)
            return
        if isinstance(node, ast.Name | ast.Attribute) and not isinstance(node.ctx, ast.Load):
            if isinstance(node, ast.Attribute) and chain_of(node) is None:
                self._visit(node.value)  # a store: only the object's expression runs
            return
        if isinstance(node, ast.Call) and name_of(node.func) == "getattr" and len(node.args) >= 2:
            self._getattr(node.args[0], node.args[1])
        if isinstance(node, ast.Attribute) and _is_super(node.value):
            self._super(node.attr)
            return
        if isinstance(node, ast.Name | ast.Attribute):
            chain = chain_of(node)
            if chain is not None:
                if id(node) not in self.skipped:
                    self._reference(chain)
                return
            assert isinstance(node, ast.Attribute)
            self._by_name(node.attr)
            self._visit(node.value)
            return
        for child in ast.iter_child_nodes(node):
            self._visit(child)

    def _reference(self, chain: list[str]) -> None:
        symbol = self.resolve_name(chain[0])
        for position, attr in enumerate(chain[1:], start=1):
            if symbol is None:
                for rest in chain[position:]:
                    self._by_name(rest)
                return
            if symbol[0] == "external":
                return
            member = self.member(symbol, attr)
            if symbol[0] in ("class", "instance"):
                if member is None:
                    self._by_name(attr)
                elif member[0] == "func":
                    self._overrides(symbol[1], attr)
            symbol = member
        if symbol is not None and symbol[0] in ("func", "class"):
            self.targets.add(symbol[1])

    def _by_name(self, attr: str) -> None:
        if not (attr.startswith("__") and attr.endswith("__")):  # dunders run through their class
            self.targets.update(self.graph.by_name.get(attr, ()))

    def _getattr(self, target: ast.expr, name: ast.expr) -> None:
        """``getattr(obj, "x")`` is ``obj.x``; ``getattr(self, computed)`` may be any method of the class."""
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            self._by_name(name.value)
        elif isinstance(target, ast.Name) and target.id == "self" and self.scope.class_key:
            for key in (self.scope.class_key, *self.descendants(self.scope.class_key)):
                self.targets.update(self.graph.classes[key].methods.values())

    def _overrides(self, class_key: str, attr: str) -> None:
        """A method called on a class may run its subclasses' overrides; on a Protocol, any implementation."""
        if self.is_protocol(class_key, set()):
            self._by_name(attr)
            return
        for descendant in self.descendants(class_key):
            method = self.graph.classes[descendant].methods.get(attr)
            if method:
                self.targets.add(method)

    def _super(self, attr: str) -> None:
        """``super().attr``: the method of a base of the enclosing class (none when the base is external)."""
        info = self.graph.classes.get(self.scope.class_key or "")
        if info is None:
            return
        base_linker = Resolver(self.graph, self.graph.scopes[module_body(info.module)])
        for base in info.node.bases:
            symbol = base_linker.resolve(base)
            if symbol is not None and symbol[0] == "class":
                found = self.method(symbol[1], attr, set())
                if found:
                    self.targets.add(found)
                    return


def _is_super(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
