"""A small, safe expression language for diagrams (gateway conditions, timer durations, DMN cells...).

Diagrams are untrusted input: SpiffWorkflow's default engine calls ``eval`` with full builtins, and no
choice of globals makes that safe. Here an expression is parsed with :mod:`ast`, checked against an
allow-list of node types, then *interpreted* by walking the tree: nothing is ever compiled or passed to
``eval``. There are no calls, no attribute access, no lambdas or comprehensions, no builtins; names
resolve only to task data and to read-only mappings that we provide. Sizes are bounded so that an
expression cannot exhaust memory or the stack.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping
from typing import Any

from engine.errors import ExpressionRefused

MAX_EXPRESSION_LENGTH = 4000
MAX_DEPTH = 40
MAX_SEQUENCE_LENGTH = 10_000
MAX_INT_BITS = 256
MAX_WEIGHT = 100_000  # elements reachable in a value built by an expression, counting repeats

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Any] = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_ALLOWED_NODES = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp,
    ast.BinOp, ast.Compare, ast.IfExp, ast.Subscript, ast.Slice, ast.Tuple, ast.List, ast.Set, ast.Dict,
    *_BINARY, *_UNARY, *_COMPARE,
)
# How a refused construct is named to designers (validation findings); others are named by their class.
_CONSTRUCTS_FR = {
    "Call": "appel de fonction", "Attribute": "accès à un attribut", "Lambda": "fonction lambda",
    "ListComp": "compréhension de liste", "SetComp": "compréhension d'ensemble",
    "DictComp": "compréhension de dictionnaire", "GeneratorExp": "générateur", "NamedExpr": "affectation (:=)",
    "JoinedStr": "chaîne formatée (f-string)", "FormattedValue": "chaîne formatée (f-string)",
    "Starred": "dépaquetage (*)", "Await": "await", "Yield": "yield", "YieldFrom": "yield from",
}
_SAFE_VALUE_TYPES = (str, int, float, bool, type(None), list, tuple, dict, set, frozenset, Mapping)


class _Missing(Exception):
    pass


def parse_expression(expression: str) -> ast.Expression:
    """Parse and check an expression; raise ExpressionRefused (or SyntaxError) when it is not allowed.

    Each refusal carries a French `explanation` for the designers' validation findings."""
    if not isinstance(expression, str):
        raise ExpressionRefused("an expression must be text", "l'expression doit être un texte")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ExpressionRefused(f"expression longer than {MAX_EXPRESSION_LENGTH} characters",
                                f"l'expression dépasse {MAX_EXPRESSION_LENGTH} caractères : raccourcissez-la")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (RecursionError, MemoryError, ValueError) as err:
        raise ExpressionRefused(f"expression too complex: {err.__class__.__name__}",
                                "l'expression est trop complexe : simplifiez-la") from err
    _check(tree, 0)
    return tree


def _check(node: ast.AST, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ExpressionRefused("expression nested too deeply",
                                f"l'expression est trop imbriquée (plus de {MAX_DEPTH} niveaux) : simplifiez-la")
    if not isinstance(node, _ALLOWED_NODES):
        kind = node.__class__.__name__
        raise ExpressionRefused(f"'{kind}' is not allowed in an expression",
                                f"construction interdite : {_CONSTRUCTS_FR.get(kind, kind)} ({kind})")
    if isinstance(node, ast.Name) and node.id.startswith("_"):
        raise ExpressionRefused(f"name '{node.id}' is not allowed (leading underscore)",
                                f"le nom « {node.id} » est interdit (il commence par un tiret bas)")
    if isinstance(node, ast.Constant) and isinstance(node.value, bytes | complex | type(Ellipsis)):
        raise ExpressionRefused(f"constant of type {type(node.value).__name__} is not allowed",
                                f"constante de type {type(node.value).__name__} interdite")
    if isinstance(node, ast.Dict) and any(key is None for key in node.keys):
        raise ExpressionRefused("dictionary unpacking is not allowed",
                                "le dépaquetage de dictionnaire (**) est interdit")
    for child in ast.iter_child_nodes(node):
        _check(child, depth + 1)


class SafeEvaluator:
    """Evaluates checked expressions against task data plus read-only mappings (e.g. ``escalation``)."""

    def __init__(self, provided: Mapping[str, Any] | None = None, cache_size: int = 2048):
        self._provided = dict(provided or {})
        self._cache: dict[str, ast.Expression] = {}
        self._cache_size = cache_size

    @property
    def provided(self) -> Mapping[str, Any]:
        return self._provided

    def compile(self, expression: str) -> ast.Expression:
        tree = self._cache.get(expression)
        if tree is None:
            tree = parse_expression(expression)
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[expression] = tree
        return tree

    def evaluate(self, expression: str, data: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> Any:
        tree = self.compile(expression)
        scopes = (self._provided, extra or {}, data)
        return _Interpreter(scopes).visit(tree.body)


    def settings_used(self, expression: str, data: Mapping[str, Any], name: str = "escalation") -> list[str]:
        """The keys of the provided mapping `name` that an expression reads with this data, e.g.
        ``["accept_tier2"]`` for ``escalation[offer["setting"]]``: which administrator setting a timer uses."""
        original = self._provided.get(name)
        if original is None:
            return []
        recorder = _Recorder(original)
        try:
            _Interpreter(({**self._provided, name: recorder}, {}, data)).visit(self.compile(expression).body)
        except Exception:  # noqa: BLE001 - an unresolvable expression simply names no setting
            return recorder.read
        return recorder.read


class _Recorder(Mapping[str, Any]):
    def __init__(self, inner: Mapping[str, Any]):
        self._inner = inner
        self.read: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.read.append(key)
        return self._inner[key]

    def __iter__(self) -> Any:
        return iter(self._inner)

    def __len__(self) -> int:
        return len(self._inner)


class _Interpreter:
    def __init__(self, scopes: tuple[Mapping[str, Any], ...]):
        self.scopes = scopes

    def visit(self, node: ast.AST) -> Any:
        method = getattr(self, "visit_" + node.__class__.__name__)
        return method(node)

    def visit_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        for scope in self.scopes:
            if node.id in scope:
                return _guard(scope[node.id])
        raise NameError(f"name '{node.id}' is not defined")

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        is_and = isinstance(node.op, ast.And)
        result: Any = is_and
        for value in node.values:
            result = self.visit(value)
            if bool(result) != is_and:
                return result
        return result

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        return _UNARY[type(node.op)](self.visit(node.operand))

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.visit(node.left), self.visit(node.right)
        op = type(node.op)
        if op is ast.Pow:
            _check_power(left, right)
        if op is ast.Mult:
            _check_repeat(left, right)
        if op is ast.Mod and not isinstance(left, int | float):
            raise ExpressionRefused("'%' is only allowed on numbers (no string formatting)")
        result = _BINARY[op](left, right)
        _check_size(result)
        return result

    def visit_Compare(self, node: ast.Compare) -> bool:
        left = self.visit(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.visit(comparator)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        container = self.visit(node.value)
        key = self.visit(node.slice)
        if not isinstance(container, str | list | tuple | dict | Mapping):
            raise ExpressionRefused(f"cannot index a value of type {type(container).__name__}")
        return _guard(container[key])

    def visit_Slice(self, node: ast.Slice) -> slice:
        parts = [self.visit(p) if p is not None else None for p in (node.lower, node.upper, node.step)]
        return slice(*parts)

    def visit_Tuple(self, node: ast.Tuple) -> tuple:
        return _checked(tuple(self.visit(e) for e in node.elts))

    def visit_List(self, node: ast.List) -> list:
        return _checked([self.visit(e) for e in node.elts])

    def visit_Set(self, node: ast.Set) -> set:
        return _checked({self.visit(e) for e in _checked(tuple(node.elts))})

    def visit_Dict(self, node: ast.Dict) -> dict:
        pairs = [(self.visit(k), self.visit(v)) for k, v in zip(node.keys, node.values, strict=True)]  # type: ignore[arg-type]
        _checked(tuple(pairs))
        return dict(pairs)


def _guard(value: Any) -> Any:
    """Only plain data may flow through an expression: never a function, class or module."""
    if isinstance(value, _SAFE_VALUE_TYPES) or _is_datetime_like(value):
        return value
    raise ExpressionRefused(f"a value of type {type(value).__name__} cannot be used in an expression")


def _is_datetime_like(value: Any) -> bool:
    import datetime as _dt

    return isinstance(value, _dt.date | _dt.time | _dt.timedelta)


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(exponent, int | float) and abs(exponent) > 64:
        raise ExpressionRefused("exponent too large")
    if isinstance(base, int) and base.bit_length() > MAX_INT_BITS:
        raise ExpressionRefused("number too large")


def _check_repeat(left: Any, right: Any) -> None:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(count, int) and len(seq) * count > MAX_SEQUENCE_LENGTH:
            raise ExpressionRefused("result too large")


def _check_size(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise ExpressionRefused("number too large")
    if isinstance(value, str | list | tuple) and len(value) > MAX_SEQUENCE_LENGTH:
        raise ExpressionRefused("result too large")
    if isinstance(value, list | tuple):
        _checked(value)


def _checked(value: Any) -> Any:
    """Refuse a value whose elements, counted with their repeats, exceed MAX_WEIGHT.

    A list repeated inside a list (``[[0] * 1000] * 1000``) shares its element, so its outer length stays
    small while comparing, hashing or printing it walks every repeat: the weight counts those repeats.
    """
    budget = MAX_WEIGHT
    stack = [value]
    while stack:
        item = stack.pop()
        budget -= 1
        if budget < 0:
            raise ExpressionRefused("result too large")
        if isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, str):
            budget -= len(item) // 64
    return value
