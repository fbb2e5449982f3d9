"""Name resolution for the conformance call graph: what a name or an attribute chain of a scope denotes.

Most precise first: ``self``/``cls`` (the enclosing class and its bases); a parameter annotated with a class
(``ctx: EngineContext``), a variable assigned from a class call (``x = Foo()``) or from a function with a
return annotation, a dataclass field or an instance attribute assigned in the class's methods: an instance of
that class; nested definitions of the enclosing functions; the module's definitions and imports (re-exports
followed). A name bound to something outside the project (``session: Session``, ``bp = Blueprint(...)``,
``import click``, a built-in value) is external: its attributes are not project code.
"""

from __future__ import annotations

import ast
import builtins

from engine.services.conformance_graph import FUNCTIONS, CodeGraph, Scope, module_body

Symbol = tuple[str, str]  # ("module" | "func" | "class" | "instance" | "external", key)
BUILTINS = frozenset(dir(builtins))
_LITERALS = (ast.List, ast.Dict, ast.Set, ast.Tuple, ast.ListComp, ast.DictComp, ast.SetComp, ast.Constant,
             ast.JoinedStr, ast.GeneratorExp)
_WRAPPERS = {"Iterator", "Generator", "ContextManager", "AbstractContextManager", "Iterable", "AsyncIterator"}


class Resolver:
    def __init__(self, graph: CodeGraph, scope: Scope):
        self.graph, self.scope = graph, scope
        self.module = graph.modules[scope.module]
        self._locals: dict[str, dict[str, Symbol]] = {}

    def bases(self, class_key: str) -> list[str]:
        cache_key = ("bases", class_key)
        if cache_key not in self.graph.cache:
            info = self.graph.classes[class_key]
            base_linker = Resolver(self.graph, self.graph.scopes[module_body(info.module)])
            self.graph.cache[cache_key] = [s[1] for s in map(base_linker.resolve, info.node.bases)
                                           if s is not None and s[0] == "class"]
        return self.graph.cache[cache_key]  # type: ignore[no-any-return]

    def is_protocol(self, class_key: str, seen: set[str]) -> bool:
        info = self.graph.classes.get(class_key)
        if info is None or class_key in seen:
            return False
        seen.add(class_key)
        if any(name_of(base) in ("Protocol", "ABC") for base in info.node.bases):
            return True
        return any(self.is_protocol(base, seen) for base in self.bases(class_key))

    def descendants(self, class_key: str) -> set[str]:
        children = self.graph.cache.get(("children",))
        if children is None:
            children = {}
            for key in self.graph.classes:
                for base in self.bases(key):
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

    def resolve(self, node: ast.expr) -> Symbol | None:
        chain = chain_of(node)
        if chain is None:
            return None
        symbol = self.resolve_name(chain[0])
        for attr in chain[1:]:
            symbol = self.member(symbol, attr) if symbol and symbol[0] != "external" else symbol
        return symbol

    def resolve_name(self, name: str) -> Symbol | None:
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
                symbol = self.annotation(argument.annotation) if argument.annotation else None
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
                made = self.instance_of(value)
                if made is not None and target.id not in typed:
                    typed[target.id] = made
        for name, count in assigned.items():
            if count > 1:
                typed.pop(name, None)  # reassigned: its type is not known
        return typed

    def instance_of(self, value: ast.expr) -> Symbol | None:
        if isinstance(value, _LITERALS) and not (isinstance(value, ast.Constant) and value.value is None):
            return ("external", "builtins")
        if not isinstance(value, ast.Call):
            return None
        callee = self.resolve(value.func)
        if callee is None:
            builtin = isinstance(value.func, ast.Name) and value.func.id in BUILTINS
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
        if isinstance(returns, ast.Subscript) and name_of(returns.value) in _WRAPPERS:
            returns = returns.slice.elts[0] if isinstance(returns.slice, ast.Tuple) else returns.slice
        return Resolver(self.graph, self.graph.scopes[module_body(scope.module)]).annotation(returns)

    def annotation(self, annotation: ast.expr) -> Symbol | None:
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            try:
                annotation = ast.parse(annotation.value, mode="eval").body
            except SyntaxError:
                return None
        if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
            sides = [s for s in (annotation.left, annotation.right)
                     if not (isinstance(s, ast.Constant) and s.value is None)]
            return self.annotation(sides[0]) if len(sides) == 1 else None
        if isinstance(annotation, ast.Subscript):
            optional = name_of(annotation.value) == "Optional"
            return self.annotation(annotation.slice if optional else annotation.value)
        chain = chain_of(annotation) if isinstance(annotation, ast.Name | ast.Attribute) else None
        symbol = self._lookup(self.module.name, chain[0], 0) if chain else None
        if symbol is None and chain is not None and len(chain) == 1 and chain[0] in BUILTINS:
            return ("external", "builtins")
        for attr in (chain or [])[1:]:
            symbol = self.member(symbol, attr) if symbol else None
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
                    symbol = self.member(symbol, attr) if symbol else None
                return symbol
        return ("external", dotted)

    def member(self, symbol: Symbol, attr: str) -> Symbol | None:
        kind, key = symbol
        if kind == "module":
            return self._lookup(key, attr, 0)
        if kind in ("class", "instance"):
            method = self.method(key, attr, set())
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
            class_linker = Resolver(self.graph, self.graph.scopes[module_body(info.module)])
            for statement in info.node.body:
                if (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                        and statement.target.id == attr):
                    found.add(class_linker.annotation(statement.annotation))
            for method in info.methods.values() if not found else ():
                method_linker = Resolver(self.graph, self.graph.scopes[method])
                for node in ast.walk(self.graph.scopes[method].node):
                    if isinstance(node, ast.Assign | ast.AnnAssign):
                        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                        value = node.value
                        if (any(chain_of(t) == ["self", attr] for t in targets) and value is not None
                                and not (isinstance(value, ast.Constant) and value.value is None)):
                            found.add(method_linker.instance_of(value))
        result = found.pop() if len(found) == 1 else None
        self.graph.cache[cache_key] = result
        return result

    def method(self, class_key: str, name: str, seen: set[str]) -> str | None:
        info = self.graph.classes.get(class_key)
        if info is None or class_key in seen:
            return None
        seen.add(class_key)
        if name in info.methods:
            return info.methods[name]
        base_linker = Resolver(self.graph, self.graph.scopes[module_body(info.module)])
        for base in info.node.bases:
            symbol = base_linker.resolve(base)
            if symbol is not None and symbol[0] == "class":
                found = self.method(symbol[1], name, seen)
                if found:
                    return found
        return None


def chain_of(node: ast.expr) -> list[str] | None:
    """``a.b.c`` -> ["a", "b", "c"]; None when the base is not a plain name (a call, a subscript...)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def name_of(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


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
