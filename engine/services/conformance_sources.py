"""What the conformance matrix reads besides the code: the catalogue and its scope file, the diagrams (the
deployed versions, or the repository's library), the form schemas, and the charter marks of the tests.

Diagrams: a rule is cited by an element when its name or documentation names the rule id, or when the element
carries a charter role (``charterRole`` property, engine.domain.charter_roles) whose rules include it. Forms:
``x-charter`` annotations, which count only for forms that a user task of the analysed diagrams uses. Tests:
``@pytest.mark.charter("CH-x", negative=True)`` on a test, its class, or the module's ``pytestmark`` (read
with ast, never imported).
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from engine.domain.charter_roles import ROLE_PROPERTY, ROLES
from engine.runtime import Bundle, bundles_from_library
from engine.runtime.xml import BPMN_NS, SPIFF_NS, kind_of, read_xml
from engine.services.context import EngineContext
from engine.store.models import ProcessDefinition

RULE_ID = re.compile(r"CH-\d+(?:\.\d+)*")
_CATALOGUE_LINE = re.compile(r"^- (CH-\d+(?:\.\d+)*) (.*)$")
_FORM_PROPERTY = "formJsonSchemaFilename"


@dataclass(frozen=True)
class CatalogueRule:
    id: str
    title: str
    scope: str = "software"
    reason: str = ""


@dataclass(frozen=True)
class DiagramFile:
    """A diagram file of the analysed set, with the labels of the processes that carry it."""

    name: str
    text: str
    processes: tuple[str, ...]


@dataclass(frozen=True)
class Citation:
    where: str
    kind: str  # "diagram" (rule id in name or documentation), "charter_role", "form"
    reached_from: tuple[str, ...]


@dataclass
class DiagramFacts:
    citations: dict[str, list[Citation]] = field(default_factory=lambda: defaultdict(list))
    forms: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # form key -> user tasks
    operations: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # name -> service tasks


@dataclass(frozen=True)
class TestRef:
    name: str
    negative: bool


def read_catalogue(charter_dir: Path) -> list[CatalogueRule]:
    scope_file = charter_dir / "scope.toml"
    scopes = tomllib.loads(scope_file.read_text(encoding="utf-8")).get("rules", {}) if scope_file.exists() else {}
    rules = []
    for line in (charter_dir / "REQUIREMENTS.md").read_text(encoding="utf-8").splitlines():
        match = _CATALOGUE_LINE.match(line.strip())
        if match:
            entry = scopes.get(match.group(1), {})
            rules.append(CatalogueRule(match.group(1), match.group(2), entry.get("scope", "software"),
                                       entry.get("reason", "")))
    return rules


def repository_diagrams(workflows_dir: Path) -> list[DiagramFile]:
    """The library as `telerad deploy` would deploy it: each top-level process with the files it needs."""
    paths = sorted([*workflows_dir.glob("*.bpmn"), *workflows_dir.glob("*.dmn")])
    files = {path.name: path.read_text(encoding="utf-8") for path in paths}
    bundles = bundles_from_library(files) if files else []
    return _files_of([(f"procédure {bundle.process_id} (dépôt)", bundle) for bundle in bundles])


def deployed_diagrams(ctx: EngineContext) -> list[DiagramFile]:
    """The latest deployed version of each process, from the process_definition table."""
    latest = (select(ProcessDefinition.process_id, func.max(ProcessDefinition.version).label("version"))
              .group_by(ProcessDefinition.process_id).subquery())
    with ctx.read() as session:
        rows = session.execute(
            select(ProcessDefinition.process_id, ProcessDefinition.version, ProcessDefinition.source)
            .join(latest, (ProcessDefinition.process_id == latest.c.process_id)
                  & (ProcessDefinition.version == latest.c.version))
            .order_by(ProcessDefinition.process_id)).all()
    return _files_of([(f"procédure déployée {process_id} v{version}", Bundle.from_json(source))
                      for process_id, version, source in rows])


def _files_of(bundles: Iterable[tuple[str, Bundle]]) -> list[DiagramFile]:
    carried: dict[tuple[str, str], list[str]] = defaultdict(list)
    for label, bundle in bundles:
        for name, text in bundle.files.items():
            carried[(name, text)].append(label)
    return [DiagramFile(name, text, tuple(labels)) for (name, text), labels in sorted(carried.items())]


def read_diagrams(files: Iterable[DiagramFile]) -> DiagramFacts:
    facts = DiagramFacts()
    for diagram in files:
        root = read_xml(diagram.text.encode("utf-8"), diagram.name)
        is_bpmn = kind_of(root) == "bpmn"
        for element in root.iter():
            if not isinstance(element.tag, str) or not element.get("id"):
                continue
            where = f"{diagram.name}#{element.get('id')}"
            texts = [element.get("name") or ""] + [
                child.text or "" for child in element
                if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] in ("documentation", "description")]
            for rule_id in sorted(set(RULE_ID.findall(" ".join(texts)))):
                facts.citations[rule_id].append(Citation(where, "diagram", diagram.processes))
            if not is_bpmn:
                continue
            role = _property(element, ROLE_PROPERTY)
            if role in ROLES:
                for rule_id in ROLES[role].rules:
                    facts.citations[rule_id].append(Citation(f"{where} (rôle {ROLES[role].label})", "charter_role",
                                                             diagram.processes))
            tag = element.tag.rsplit("}", 1)[-1]
            form = _property(element, _FORM_PROPERTY) if tag == "userTask" else None
            if form:
                facts.forms[form].append(where)
            for operator in element.iterfind(f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}serviceTaskOperator"):
                if operator.get("id"):
                    facts.operations[operator.get("id")].append(where)
    return facts


def _property(element: Any, name: str) -> str | None:
    found = element.find(f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}properties/"
                         f"{{{SPIFF_NS}}}property[@name='{name}']")
    return found.get("value") if found is not None else None


def repository_forms(forms_dir: Path) -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(forms_dir.glob("*.json"))}


def registry_forms(ctx: EngineContext) -> dict[str, dict[str, Any]]:
    """Every form the running product knows (schema files and forms saved in the designer)."""
    return {key: ctx.forms.schema(key) for key in ctx.forms.keys()}  # noqa: SIM118 (a registry, not a dict)


def form_citations(schemas: Mapping[str, Any], used_by: Mapping[str, list[str]]) -> tuple[
        dict[str, list[Citation]], dict[str, list[str]]]:
    """(rule -> citations of forms used by a user task, rule -> fields of forms no user task uses)."""
    used: dict[str, list[Citation]] = defaultdict(list)
    unused: dict[str, list[str]] = defaultdict(list)
    for key, schema in sorted(schemas.items()):
        found: dict[str, list[str]] = defaultdict(list)
        _walk_schema(schema, key, "", found)
        tasks = tuple(f"tâche {where}" for where in sorted(used_by.get(key, [])))
        for rule_id, places in found.items():
            for place in places:
                if tasks:
                    used[rule_id].append(Citation(place, "form", tasks))
                else:
                    unused[rule_id].append(place)
    return used, unused


def _walk_schema(node: Any, form: str, where: str, found: dict[str, list[str]]) -> None:
    if not isinstance(node, dict):
        return
    for rule_id in node.get("x-charter", []):
        found[rule_id].append(f"{form}#{where or '(formulaire)'}")
    for name, child in node.get("properties", {}).items():
        _walk_schema(child, form, f"{where}.{name}" if where else name, found)


def read_tests(tests_dir: Path) -> dict[str, list[TestRef]]:
    found: dict[str, list[TestRef]] = defaultdict(list)
    if not tests_dir.is_dir():
        return found
    for path in sorted(tests_dir.rglob("test_*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except SyntaxError:
            continue
        relative = path.relative_to(tests_dir.parent).as_posix()
        _tests_in(tree.body, relative, _pytestmark(tree.body), found)
    return found


def _tests_in(body: list[ast.stmt], prefix: str, inherited: list[tuple[str, bool]],
              found: dict[str, list[TestRef]]) -> None:
    for node in body:
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            marks = inherited + _charter_marks(node.decorator_list) + _pytestmark(node.body)
            _tests_in(node.body, f"{prefix}::{node.name}", marks, found)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            marks = inherited + _charter_marks(node.decorator_list)
            for rule_id in sorted({rule for rule, _ in marks}):
                negative = any(n for rule, n in marks if rule == rule_id)
                found[rule_id].append(TestRef(f"{prefix}::{node.name}", negative))


def _charter_marks(decorators: list[ast.expr]) -> list[tuple[str, bool]]:
    marks = []
    for decorator in decorators:
        if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                and decorator.func.attr == "charter"):
            negative = any(k.arg == "negative" and isinstance(k.value, ast.Constant) and k.value.value is True
                           for k in decorator.keywords)
            marks += [(arg.value, negative) for arg in decorator.args
                      if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
    return marks


def _pytestmark(body: list[ast.stmt]) -> list[tuple[str, bool]]:
    for statement in body:
        if not isinstance(statement, ast.Assign | ast.AnnAssign) or statement.value is None:
            continue
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        if any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in targets):
            value = statement.value
            return _charter_marks(list(value.elts) if isinstance(value, ast.List | ast.Tuple) else [value])
    return []
