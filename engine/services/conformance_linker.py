"""The edges out of one scope of the call graph (see conformance_graph for what an edge means).

Resolution, most precise first: ``self``/``cls`` (the enclosing class and its bases); a parameter annotated
with a class (``ctx: EngineContext``) or a local/module variable assigned from a class call (``x = Foo()``),
which make it an instance of that class; nested definitions of the enclosing functions; the module's
definitions and imports (re-exports followed). A name bound to something outside the project (``session:
Session``, ``bp = Blueprint(...)``, ``import click``) is external: its attributes are not project code. Any
other attribute (an unknown object, or an instance attribute that is not a method) is resolved BY NAME, to
every project method of that name.
"""

from __future__ import annotations

import ast
import builtins

from engine.services.conformance_graph import FUNCTIONS, CodeGraph, Scope, absolute_import, module_body

Symbol = tuple[str, str]  # ("module" | "func" | "class" | "instance" | "external", key)
_BUILTINS = frozenset(dir(builtins))
_ROUTE_OR_COMMAND = {"get", "post", "put", "patch", "delete", "route", "command", "group"}
_LITERALS = (ast.List, ast.Dict, ast.Set, ast.Tuple, ast.ListComp, ast.DictComp, ast.SetComp, ast.Constant,
             ast.JoinedStr, ast.GeneratorExp)
_WRAPPERS = {"Iterator", "Generator", "ContextManager", "AbstractContextManager", "Iterable", "AsyncIterator"}


def link_scope(graph: CodeGraph, scope: Scope, skipped: set[int]) -> None:
    _Linker(graph, scope, skipped).link()


class _Linker:
    def __init__(self, graph: CodeGraph, scope: Scope, skipped: set[int]):
        self.graph, self.scope, self.skipped = graph, scope, skipped
        self.module = graph.modules[scope.module]
        self.targets = graph.edges.setdefault(scope.key, set())
        self._locals: dict[str, dict[str, Symbol]] = {}

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
            chain = _chain(called)
            if chain is None or len(chain) > 1 and chain[-1] in _ROUTE_OR_COMMAND:
                return False
            symbol = self._resolve(called)
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
            symbol = self._resolve(base)
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
            if isinstance(node, ast.Attribute) and _chain(node) is None:
                self._visit(node.value)  # a store: only the object's expression runs
            return
        if isinstance(node, ast.Call) and _name(node.func) == "getattr" and len(node.args) >= 2:
            self._getattr(node.args[0], node.args[1])
        if isinstance(node, ast.Attribute) and _is_super(node.value):
            self._super(node.attr)
            return
        if isinstance(node, ast.Name | ast.Attribute):
            chain = _chain(node)
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
        symbol = self._resolve_name(chain[0])
        for position, attr in enumerate(chain[1:], start=1):
            if symbol is None:
                for rest in chain[position:]:
                    self._by_name(rest)
                return
            if symbol[0] == "external":
                return
            member = self._member(symbol, attr)
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
            for key in (self.scope.class_key, *self._descendants(self.scope.class_key)):
                self.targets.update(self.graph.classes[key].methods.values())

    def _overrides(self, class_key: str, attr: str) -> None:
        """A method called on a class may run its subclasses' overrides; on a Protocol, any implementation."""
        if self._is_protocol(class_key, set()):
            self._by_name(attr)
            return
        for descendant in self._descendants(class_key):
            method = self.graph.classes[descendant].methods.get(attr)
            if method:
                self.targets.add(method)

    def _bases(self, class_key: str) -> list[str]:
        cache_key = ("bases", class_key)
        if cache_key not in self.graph.cache:
            info = self.graph.classes[class_key]
            base_linker = _Linker(self.graph, self.graph.scopes[module_body(info.module)], set())
            self.graph.cache[cache_key] = [s[1] for s in map(base_linker._resolve, info.node.bases)
                                           if s is not None and s[0] == "class"]
        return self.graph.cache[cache_key]  # type: ignore[no-any-return]

    def _is_protocol(self, class_key: str, seen: set[str]) -> bool:
        info = self.graph.classes.get(class_key)
        if info is None or class_key in seen:
            return False
        seen.add(class_key)
        if any(_name(base) in ("Protocol", "ABC") for base in info.node.bases):
            return True
        return any(self._is_protocol(base, seen) for base in self._bases(class_key))

    def _descendants(self, class_key: str) -> set[str]:
        children = self.graph.cache.get(("children",))
        if children is None:
            children = {}
            for key in self.graph.classes:
                for base in self._bases(key):
                    children.setdefault(base, set()).add(key)
            self.graph.cache[("children",)] = children
        found: set[str] = set()
        pending = [class_key]
        while pending:
            for child in children.get(pending.pop(), ()):
                if child not in found:
                    found.add(child)
                    pending.append(child)
        return found

    def _super(self, attr: str) -> None:
        """``super().attr``: the method of a base of the enclosing class (none when the base is external)."""
        info = self.graph.classes.get(self.scope.class_key or "")
        if info is None:
            return
        base_linker = _Linker(self.graph, self.graph.scopes[module_body(info.module)], set())
        for base in info.node.bases:
            symbol = base_linker._resolve(base)
            if symbol is not None and symbol[0] == "class":
                found = self._method(symbol[1], attr, set())
                if found:
                    self.targets.add(found)
                    return

    def _resolve(self, node: ast.expr) -> Symbol | None:
        chain = _chain(node)
        if chain is None:
            return None
        symbol = self._resolve_name(chain[0])
        for attr in chain[1:]:
            symbol = self._member(symbol, attr) if symbol and symbol[0] != "external" else symbol
        return symbol

    def _resolve_name(self, name: str) -> Symbol | None:
        if name in ("self", "cls") and self.scope.class_key is not None:
            return ("class", self.scope.class_key)
        scope: Scope | None = self.scope
        while scope is not None:
            typed = self._typed_locals(scope).get(name)
            if typed is not None:
                return typed
            if name in scope.nested:
                nested = scope.nested[name]
                return ("class" if nested in self.graph.classes else "func", nested)
            scope = self.graph.scopes.get(scope.parent) if scope.parent else None
        found = self._lookup(self.module.name, name, 0)
        if found is None and not isinstance(self.scope.node, ast.Module):
            found = self._typed_locals(self.graph.scopes[module_body(self.module.name)]).get(name)
        return found

    def _typed_locals(self, scope: Scope) -> dict[str, Symbol]:
        """Parameters annotated with a class, and names assigned once from a call (x = Foo(...))."""
        if scope.key in self._locals:
            return self._locals[scope.key]
        typed: dict[str, Symbol] = {}
        self._locals[scope.key] = typed
        node = scope.node
        if isinstance(node, FUNCTIONS):
            for argument in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
                symbol = self._annotation(argument.annotation) if argument.annotation else None
                if symbol is not None:
                    typed[argument.arg] = symbol
        assigned: dict[str, int] = {}
        statements = node.body if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef) else []
        for statement in _own_statements(statements):
            bindings: list[tuple[ast.expr, ast.expr]] = []
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                bindings = [(statement.targets[0], statement.value)]
            elif isinstance(statement, ast.With | ast.AsyncWith):
                bindings = [(item.optional_vars, item.context_expr) for item in statement.items
                            if item.optional_vars is not None]
            for target, value in bindings:
                if not isinstance(target, ast.Name):
                    continue
                assigned[target.id] = assigned.get(target.id, 0) + 1
                made = self._instance_of(value)
                if made is not None and target.id not in typed:
                    typed[target.id] = made
        for name, count in assigned.items():
            if count > 1:
                typed.pop(name, None)  # reassigned: its type is not known
        return typed

    def _instance_of(self, value: ast.expr) -> Symbol | None:
        if isinstance(value, _LITERALS) and not (isinstance(value, ast.Constant) and value.value is None):
            return ("external", "builtins")
        if not isinstance(value, ast.Call):
            return None
        callee = self._resolve(value.func)
        if callee is None:
            builtin = isinstance(value.func, ast.Name) and value.func.id in _BUILTINS
            return ("external", "builtins") if builtin else None
        if callee[0] == "class":
            return ("instance", callee[1])
        if callee[0] == "func":
            return self._returned(callee[1])
        return callee if callee[0] == "external" else None

    def _returned(self, function_key: str) -> Symbol | None:
        """What a project function returns, from its return annotation (``Iterator[X]`` of a context manager: X)."""
        scope = self.graph.scopes.get(function_key)
        returns = getattr(scope.node, "returns", None) if scope else None
        if scope is None or returns is None:
            return None
        if isinstance(returns, ast.Constant) and isinstance(returns.value, str):
            try:
                returns = ast.parse(returns.value, mode="eval").body
            except SyntaxError:
                return None
        if isinstance(returns, ast.Subscript) and _name(returns.value) in _WRAPPERS:
            returns = returns.slice.elts[0] if isinstance(returns.slice, ast.Tuple) else returns.slice
        return _Linker(self.graph, self.graph.scopes[module_body(scope.module)], set())._annotation(returns)

    def _annotation(self, annotation: ast.expr) -> Symbol | None:
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            try:
                annotation = ast.parse(annotation.value, mode="eval").body
            except SyntaxError:
                return None
        if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
            sides = [s for s in (annotation.left, annotation.right)
                     if not (isinstance(s, ast.Constant) and s.value is None)]
            return self._annotation(sides[0]) if len(sides) == 1 else None
        if isinstance(annotation, ast.Subscript):
            optional = _name(annotation.value) == "Optional"
            return self._annotation(annotation.slice if optional else annotation.value)
        chain = _chain(annotation) if isinstance(annotation, ast.Name | ast.Attribute) else None
        symbol = self._lookup(self.module.name, chain[0], 0) if chain else None
        if symbol is None and chain is not None and len(chain) == 1 and chain[0] in _BUILTINS:
            return ("external", "builtins")
        for attr in (chain or [])[1:]:
            symbol = self._member(symbol, attr) if symbol else None
        if symbol is not None and symbol[0] == "class":
            return ("instance", symbol[1])
        return symbol if symbol is not None and symbol[0] == "external" else None

    def _lookup(self, module_name: str, name: str, depth: int) -> Symbol | None:
        module = self.graph.modules.get(module_name)
        if module is None or depth > 8:
            return None
        if name in module.functions:
            return ("func", module.functions[name])
        if name in module.classes:
            return ("class", module.classes[name])
        if f"{module_name}.{name}" in self.graph.modules:
            return ("module", f"{module_name}.{name}")
        if name in module.imports:
            return self._dotted(module.imports[name], depth + 1)
        return None

    def _dotted(self, dotted: str, depth: int) -> Symbol | None:
        if dotted in self.graph.modules:
            return ("module", dotted)
        parts = dotted.split(".")
        for end in range(len(parts) - 1, 0, -1):
            prefix = ".".join(parts[:end])
            if prefix in self.graph.modules:
                symbol: Symbol | None = self._lookup(prefix, parts[end], depth)
                for attr in parts[end + 1:]:
                    symbol = self._member(symbol, attr) if symbol else None
                return symbol
        return ("external", dotted)

    def _member(self, symbol: Symbol, attr: str) -> Symbol | None:
        kind, key = symbol
        if kind == "module":
            return self._lookup(key, attr, 0)
        if kind in ("class", "instance"):
            method = self._method(key, attr, set())
            return ("func", method) if method else self._attribute(key, attr)
        return symbol if kind == "external" else None

    def _attribute(self, class_key: str, attr: str) -> Symbol | None:
        """The type of an instance attribute: its class-level annotation (dataclass field), or what every
        ``self.attr = ...`` of the class's methods assigns, when they agree."""
        cache_key = ("attribute", class_key, attr)
        if cache_key in self.graph.cache:
            return self.graph.cache[cache_key]  # type: ignore[no-any-return]
        self.graph.cache[cache_key] = None  # guards against cycles while computing
        info = self.graph.classes.get(class_key)
        found: set[Symbol | None] = set()
        if info is not None:
            class_linker = _Linker(self.graph, self.graph.scopes[module_body(info.module)], set())
            for statement in info.node.body:
                if (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                        and statement.target.id == attr):
                    found.add(class_linker._annotation(statement.annotation))
            for method in info.methods.values() if not found else ():
                method_linker = _Linker(self.graph, self.graph.scopes[method], set())
                for node in ast.walk(self.graph.scopes[method].node):
                    if isinstance(node, ast.Assign | ast.AnnAssign):
                        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                        value = node.value
                        if (any(_chain(t) == ["self", attr] for t in targets) and value is not None
                                and not (isinstance(value, ast.Constant) and value.value is None)):
                            found.add(method_linker._instance_of(value))
        result = found.pop() if len(found) == 1 else None
        self.graph.cache[cache_key] = result
        return result

    def _method(self, class_key: str, name: str, seen: set[str]) -> str | None:
        info = self.graph.classes.get(class_key)
        if info is None or class_key in seen:
            return None
        seen.add(class_key)
        if name in info.methods:
            return info.methods[name]
        base_linker = _Linker(self.graph, self.graph.scopes[module_body(info.module)], set())
        for base in info.node.bases:
            symbol = base_linker._resolve(base)
            if symbol is not None and symbol[0] == "class":
                found = self._method(symbol[1], name, seen)
                if found:
                    return found
        return None


def _chain(node: ast.expr) -> list[str] | None:
    """``a.b.c`` -> ["a", "b", "c"]; None when the base is not a plain name (a call, a subscript...)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _is_super(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def _own_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements of a body and of its blocks (if, with, for, try), not of nested functions or classes."""
    found: list[ast.stmt] = []
    for statement in body:
        found.append(statement)
        if isinstance(statement, (*FUNCTIONS, ast.ClassDef)):
            continue
        for block in ("body", "orelse", "finalbody"):
            found += _own_statements(getattr(statement, block, []))
        for handler in getattr(statement, "handlers", []):
            found += _own_statements(handler.body)
    return found
