"""The charter conformance matrix: for every rule, where it is enforced and which tests prove it.

Sources: the catalogue (docs/charter/REQUIREMENTS.md) and its scope file, rule ids cited in diagram
element documentation, ``x-charter`` annotations of form schemas, ``@enforces`` marks on engine rules,
and ``@pytest.mark.charter`` marks on tests (read with ast, never imported).
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.domain.charter import ENFORCED_BY
from engine.runtime.xml import read_xml

RULE_ID = re.compile(r"CH-\d+(?:\.\d+)*")
_CATALOGUE_LINE = re.compile(r"^- (CH-\d+(?:\.\d+)*) (.*)$")


@dataclass
class RuleCoverage:
    id: str
    title: str
    scope: str = "software"
    reason: str = ""
    enforced_by: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)

    @property
    def covered(self) -> bool:
        return self.scope == "outside" or bool(self.enforced_by and self.tests)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "scope": self.scope, "reason": self.reason,
                "enforced_by": self.enforced_by, "tests": self.tests}


def read_catalogue(charter_dir: Path) -> list[RuleCoverage]:
    rules = []
    for line in (charter_dir / "REQUIREMENTS.md").read_text(encoding="utf-8").splitlines():
        match = _CATALOGUE_LINE.match(line.strip())
        if match:
            rules.append(RuleCoverage(match.group(1), match.group(2)))
    scope_file = charter_dir / "scope.toml"
    scopes = tomllib.loads(scope_file.read_text(encoding="utf-8")).get("rules", {}) if scope_file.exists() else {}
    for rule in rules:
        entry = scopes.get(rule.id, {})
        rule.scope, rule.reason = entry.get("scope", "software"), entry.get("reason", "")
    return rules


def diagram_references(workflows_dir: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted([*workflows_dir.glob("*.bpmn"), *workflows_dir.glob("*.dmn")]):
        root = read_xml(path.read_bytes(), path.name)
        for element in root.iter():
            if not isinstance(element.tag, str) or not element.get("id"):
                continue
            texts = [element.get("name") or ""]
            texts += [child.text or "" for child in element if isinstance(child.tag, str)
                      and child.tag.rsplit("}", 1)[-1] in ("documentation", "description")]
            for rule_id in sorted(set(RULE_ID.findall(" ".join(texts)))):
                found[rule_id].append(f"{path.name}#{element.get('id')}")
    return found


def form_references(forms_dir: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(forms_dir.glob("*.json")):
        _walk_schema(json.loads(path.read_text(encoding="utf-8")), path.name, "", found)
    return found


def _walk_schema(node: Any, form: str, where: str, found: dict[str, list[str]]) -> None:
    if not isinstance(node, dict):
        return
    for rule_id in node.get("x-charter", []):
        found[rule_id].append(f"{form}#{where or '(form)'}")
    for name, child in node.get("properties", {}).items():
        _walk_schema(child, form, f"{where}.{name}" if where else name, found)


def engine_references() -> dict[str, list[str]]:
    import engine.domain

    for module in pkgutil.iter_modules(engine.domain.__path__, "engine.domain."):
        importlib.import_module(module.name)
    for module_name in ("engine.store.audit", "engine.services.definitions"):
        importlib.import_module(module_name)
    return {rule: sorted(set(names)) for rule, names in ENFORCED_BY.items()}


def proving_tests(tests_dir: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    if not tests_dir.is_dir():
        return found
    for path in sorted(tests_dir.rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        relative = path.relative_to(tests_dir.parent).as_posix()
        module_rules = _module_marks(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                for rule_id in sorted(set(_charter_marks(node.decorator_list)) | module_rules):
                    found[rule_id].append(f"{relative}::{node.name}")
    return found


def _charter_marks(decorators: list[ast.expr]) -> list[str]:
    rules = []
    for decorator in decorators:
        if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                and decorator.func.attr == "charter"):
            rules += [arg.value for arg in decorator.args
                      if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
    return rules


def _module_marks(tree: ast.Module) -> set[str]:
    for statement in tree.body:
        if (isinstance(statement, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark"
                                                      for t in statement.targets)):
            value = statement.value
            items = value.elts if isinstance(value, ast.List | ast.Tuple) else [value]
            return set(_charter_marks(list(items)))
    return set()


def conformance_matrix(project_root: Path) -> list[RuleCoverage]:
    rules = read_catalogue(project_root / "docs" / "charter")
    sources = [diagram_references(project_root / "workflows" / "bpmn"),
               form_references(project_root / "forms" / "schemas"), engine_references()]
    tests = proving_tests(project_root / "tests")
    for rule in rules:
        for source in sources:
            rule.enforced_by += _matching(source, rule.id)
        rule.tests = _matching(tests, rule.id)
    return rules


def _matching(index: dict[str, list[str]], rule_id: str) -> list[str]:
    """References to a rule, and to its sub-rules when the catalogue cites a group (none here yet)."""
    return sorted(set(index.get(rule_id, [])))
