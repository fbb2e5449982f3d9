"""Value domains of a diagram's variables, and satisfiability of its gateway conditions over them.

Where a variable's values come from: the form schemas of user tasks (enum, const, boolean; a field that is
not required may be absent), the output entries of DMN tables, the declared result domains of service
operations (OperationRegistry.register(result_domains=...)), message variables and start data (anything).
A variable that nothing produces is absent: a condition that reads it fails, it is never true.

Conditions are Telerad expressions (engine.runtime.expressions). Understood here: ==, !=, in, not in, is,
is not, and, or, not, truth of a value, constants, variables and their subscripts with literal keys.
Anything else is *unknown*, taken as possibly true. Satisfiability enumerates the product of the candidate
values of the variables a set of conditions reads (capped; above the cap, a condition is taken as possible).
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from engine.runtime.script_engine import OperationRegistry
from engine.runtime.xml import BPMN_NS, SPIFF_NS, kind_of

Atom = tuple[Any, ...]  # a variable and its literal keys: ("protocol_facts", "contrast")
MAX_ASSIGNMENTS = 4096
WORK_BUDGET = 2_000_000  # condition evaluations per analysis; beyond, conditions are taken as possible
# What a case is started with (engine.services.instances.start_instance; RIS orders in integrations.hl7.orders
# also bring request fields, which the request form's schema checks).
START_DATA = ("accession_number", "site_id", "hl7", "patient", "ris_order", "study_instance_uid")
# Read-only mappings every expression sees (engine.runtime.expressions.SafeEvaluator provided).
PROVIDED = ("escalation",)


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


ABSENT = _Marker("absent")  # the variable (or key) does not exist: reading it fails


class Other:
    """A value of an open domain different from every literal the conditions compare it with."""

    def __init__(self, atom: Atom):
        self.atom = atom

    def __repr__(self) -> str:
        return f"<other {show_atom(self.atom)}>"


@dataclass
class Domain:
    values: tuple[Any, ...] | None = None  # None: any value
    keys: dict[str, Domain] = field(default_factory=dict)


ANY = Domain()


def show_atom(atom: Atom) -> str:
    return str(atom[0]) + "".join(f"[{key!r}]".replace("'", '"') for key in atom[1:])


class Domains:
    """The variables of a bundle (every file: called processes share data with their callers)."""

    def __init__(self, roots: Mapping[str, etree._Element], operations: OperationRegistry,
                 form_schema: Callable[[str], Mapping[str, Any]] | None):
        self.operations = operations
        self.form_schema = form_schema
        self.opaque = form_schema is None  # some task's fields are unknown: no variable can be called absent
        self.work = 0
        self.exhausted = False
        self.sources: dict[str, list[Domain]] = {name: [ANY] for name in (*START_DATA, *PROVIDED)}
        self._outputs = _decision_outputs(roots)
        for root in roots.values():
            if kind_of(root) == "bpmn":
                for element in root.iter():
                    if isinstance(element.tag, str):
                        for name, domain in self._produced(element):
                            self.sources.setdefault(name, []).append(domain)

    def writes(self, element: etree._Element) -> frozenset[str]:
        return frozenset(name for name, _ in self._produced(element))

    def _produced(self, element: etree._Element) -> Iterator[tuple[str, Domain]]:
        kind = etree.QName(element).localname
        props = {p.get("name"): p.get("value") for p in element.iterfind(
            f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}properties/{{{SPIFF_NS}}}property")}
        if kind == "userTask":
            yield from self._form_fields(props.get("formJsonSchemaFilename") or "")
            if props.get("completedByVariable"):
                yield props["completedByVariable"], ANY
        elif kind == "serviceTask":
            for operator in element.iter(f"{{{SPIFF_NS}}}serviceTaskOperator"):
                if operator.get("resultVariable"):
                    yield operator.get("resultVariable") or "", self._result(operator.get("id") or "")
        elif kind == "businessRuleTask":
            for ref in element.iter(f"{{{SPIFF_NS}}}calledDecisionId"):
                yield from self._outputs.get((ref.text or "").strip(), {}).items()
        if kind != "process":
            for variable in element.iterfind(f"{{{BPMN_NS}}}messageEventDefinition/{{{SPIFF_NS}}}messageVariable"):
                if (variable.text or "").strip():
                    yield (variable.text or "").strip(), ANY
            if kind == "receiveTask":
                for variable in element.iter(f"{{{SPIFF_NS}}}messageVariable"):
                    if (variable.text or "").strip():
                        yield (variable.text or "").strip(), ANY

    def _form_fields(self, key: str) -> Iterator[tuple[str, Domain]]:
        if not key or self.form_schema is None:
            return
        try:
            schema = self.form_schema(key)
        except Exception:  # noqa: BLE001 - a missing form has its own finding; its fields could be anything
            self.opaque = True
            return
        yield from _object_fields(schema).items()

    def _result(self, operation: str) -> Domain:
        names = self.operations.names()
        if operation not in names:
            return ANY
        declared = self.operations.result_domains(operation)
        values = self.operations.result_values(operation)
        return Domain(values, {key: Domain(tuple(v)) for key, v in declared.items()})

    def values(self, atom: Atom) -> tuple[Any, ...] | None:
        """Every value the atom can take (ABSENT included when it may not exist), or None for any value."""
        sources = self.sources.get(str(atom[0]))
        if not sources:
            return None if self.opaque else (ABSENT,)
        found: list[Any] = []
        for domain in sources:
            for key in atom[1:]:
                if isinstance(key, str) and key in domain.keys:
                    domain = domain.keys[key]
                else:
                    return None  # undeclared key, or a value of unknown shape
            if domain.values is None:
                return None
            found.extend(v for v in domain.values if not any(_same(v, f) for f in found))
        return tuple(found)

    def satisfiable(self, conditions: Iterable[ast.expr], fixed: Mapping[Atom, tuple[Any, ...]] | None = None) -> bool:
        """Can every condition be true (or not understood) at once, for some values of their variables?"""
        conditions = list(conditions)
        atoms = sorted({a for c in conditions for a in atoms_of(c)}, key=repr)
        literals = [v for c in conditions for v in _literals(c)]
        candidates = []
        for atom in atoms:
            known = (fixed or {}).get(atom) or self.values(atom)
            candidates.append(known if known is not None else (*literals, Other(atom)))
        size = 1
        for options in candidates:
            size *= max(len(options), 1)
        if size > MAX_ASSIGNMENTS:
            return True
        self.work += size * len(conditions)
        if self.work > WORK_BUDGET:
            self.exhausted = True
            return True
        for assignment in itertools.product(*candidates):
            env = dict(zip(atoms, assignment, strict=True))
            if all(truth(c, env) in ("T", "U") for c in conditions):
                return True
        return False


def _object_fields(schema: Mapping[str, Any]) -> dict[str, Domain]:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    required = set(schema.get("required") or ())
    fields = {}
    for name, sub in properties.items():
        domain = _field_domain(sub) if isinstance(sub, Mapping) else ANY
        if name not in required and domain.values is not None:
            domain = Domain((*domain.values, ABSENT), domain.keys)
        fields[str(name)] = domain
    return fields


def _field_domain(schema: Mapping[str, Any]) -> Domain:
    types = schema.get("type")
    types = set(types) if isinstance(types, list) else {types}
    nullable = (None,) if "null" in types else ()
    if "const" in schema:
        return Domain((schema["const"], *nullable))
    if isinstance(schema.get("enum"), list):
        return Domain(tuple(schema["enum"]))
    choices = schema.get("oneOf") or schema.get("anyOf")
    if isinstance(choices, list) and choices and all(isinstance(c, Mapping) and "const" in c for c in choices):
        return Domain((*(c["const"] for c in choices), *nullable))
    if "boolean" in types:
        return Domain((True, False, *nullable))
    if "object" in types and isinstance(schema.get("properties"), Mapping) and not schema.get("additionalProperties"):
        return Domain(None, _object_fields(schema))
    return ANY


def _decision_outputs(roots: Mapping[str, etree._Element]) -> dict[str, dict[str, Domain]]:
    """decision id -> output name -> the literal values of its output entries."""
    found: dict[str, dict[str, Domain]] = {}
    for root in roots.values():
        if kind_of(root) != "dmn":
            continue
        for decision in root.iter("{*}decision"):
            outputs: dict[str, Domain] = {}
            for table in decision.iter("{*}decisionTable"):
                names = [o.get("name") or o.get("id") or "" for o in table.iterfind("{*}output")]
                values: list[list[Any] | None] = [[] for _ in names]
                for rule in table.iterfind("{*}rule"):
                    for index, entry in enumerate(rule.iterfind("{*}outputEntry")):
                        if index < len(values) and values[index] is not None:
                            value = _literal(entry.findtext("{*}text") or "")
                            if value is _NOT_LITERAL:
                                values[index] = None
                            else:
                                values[index].append(value)  # type: ignore[union-attr]
                for name, collected in zip(names, values, strict=True):
                    outputs[name] = Domain(tuple(collected)) if collected is not None else ANY
            found[decision.get("id") or ""] = outputs
    return found


_NOT_LITERAL = _Marker("not a literal")


def _literal(text: str) -> Any:
    if not text.strip():
        return None
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _NOT_LITERAL


def atom_of(node: ast.expr) -> Atom | None:
    keys: list[Any] = []
    while isinstance(node, ast.Subscript):
        if not isinstance(node.slice, ast.Constant):
            return None
        keys.append(node.slice.value)
        node = node.value
    if isinstance(node, ast.Name):
        return (node.id, *reversed(keys))
    return None


def atoms_of(node: ast.expr) -> set[Atom]:
    found: set[Atom] = set()
    pending: list[ast.AST] = [node]
    while pending:
        current = pending.pop()
        atom = atom_of(current) if isinstance(current, ast.expr) else None
        if atom is not None:
            found.add(atom)
            continue
        pending.extend(ast.iter_child_nodes(current))
    return found


def _literals(node: ast.expr) -> Iterator[Any]:
    """The literal values conditions compare variables with (candidates for variables of open domains)."""
    for compare in (n for n in ast.walk(node) if isinstance(n, ast.Compare)):
        for operand in (compare.left, *compare.comparators):
            value = _constant(operand)
            if value is _NOT_LITERAL:
                continue
            yield value
            if isinstance(value, tuple | list | set | frozenset):
                yield from value


def _constant(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        items = [_constant(e) for e in node.elts]
        if any(i is _NOT_LITERAL for i in items):
            return _NOT_LITERAL
        if isinstance(node, ast.Tuple):
            return tuple(items)
        return list(items) if isinstance(node, ast.List) else _frozen(items)
    return _NOT_LITERAL


def _frozen(items: list[Any]) -> Any:
    try:
        return frozenset(items)
    except TypeError:
        return _NOT_LITERAL


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


class _Unknown(Exception):
    pass


class _Fails(Exception):
    pass


def truth(node: ast.expr, env: Mapping[Atom, Any]) -> str:
    """"T" true, "F" false, "U" not understood, "E" evaluation fails (e.g. an absent variable)."""
    if isinstance(node, ast.BoolOp):
        results = [truth(v, env) for v in node.values]
        stop, go = ("F", "T") if isinstance(node.op, ast.And) else ("T", "F")
        unknown = False
        for result in results:
            if result == "E" and not unknown:
                return "E"
            if result == stop:
                return stop
            unknown = unknown or result in ("U", "E")
        return "U" if unknown else go
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = truth(node.operand, env)
        return {"T": "F", "F": "T"}.get(inner, inner)
    try:
        value = _value(node, env)
        if isinstance(value, Other):
            return "U"
        return "T" if value else "F"
    except _Unknown:
        return "U"
    except _Fails:
        return "E"


def _value(node: ast.expr, env: Mapping[Atom, Any]) -> Any:
    atom = atom_of(node)
    if atom is not None:
        value = env.get(atom, ABSENT)
        if value is ABSENT:
            raise _Fails
        return value
    constant = _constant(node)
    if constant is not _NOT_LITERAL:
        return constant
    if isinstance(node, ast.Compare):
        left = _value(node.left, env)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _value(comparator, env)
            if not _compare(op, left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BoolOp | ast.UnaryOp) and not isinstance(getattr(node, "op", None), ast.USub | ast.UAdd):
        result = truth(node, env)
        if result == "E":
            raise _Fails
        if result == "U":
            raise _Unknown
        return result == "T"
    raise _Unknown


def _compare(op: ast.cmpop, left: Any, right: Any) -> bool:
    if isinstance(op, ast.Eq | ast.Is | ast.NotEq | ast.IsNot):
        if isinstance(left, Other) or isinstance(right, Other):
            if isinstance(left, Other) and isinstance(right, Other) and left.atom != right.atom:
                raise _Unknown
            equal = left is right
        else:
            equal = left is right if isinstance(op, ast.Is | ast.IsNot) else left == right
        return equal if isinstance(op, ast.Eq | ast.Is) else not equal
    if isinstance(op, ast.In | ast.NotIn):
        if isinstance(right, Other) or not isinstance(right, tuple | list | set | frozenset | str | dict):
            raise _Unknown
        if isinstance(left, Other):
            if isinstance(right, str) or any(isinstance(item, Other) for item in right):
                raise _Unknown
            inside = False
        else:
            try:
                inside = left in right
            except TypeError:
                raise _Fails from None
        return inside if isinstance(op, ast.In) else not inside
    raise _Unknown
