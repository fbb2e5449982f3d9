"""The charter conformance matrix: for every rule, what enforces it *in the product* and which tests prove it.

An enforcement counts only when the product can reach it:
- a diagram element citing the rule (name, documentation, or charter role) of the analysed diagrams: the
  latest deployed version of each process, or the repository's library (``workflows/bpmn/``) with ``--repo``;
- an ``x-charter`` form field, only if a user task of those diagrams uses the form;
- an ``@enforces`` function, only if the static call graph (conformance_graph) reaches it from an entry point
  (conformance_entries): a web route, a ``telerad`` command, a listener or scheduled job, or a service
  operation that one of those diagrams calls.

Each software-scope rule gets a status: ``enforced`` (a reachable enforcement and a negative test, i.e. the
violating path tried and refused), ``declared_only`` (marks or citations exist, none reachable), ``missing``
(nothing reachable, or no negative test) or ``outside`` (docs/charter/scope.toml).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine.services.conformance_build import build_graph
from engine.services.conformance_entries import entry_points
from engine.services.conformance_graph import PRODUCT_PACKAGES, CodeGraph
from engine.services.conformance_sources import (
    Citation,
    DiagramFile,
    TestRef,
    form_citations,
    read_catalogue,
    read_diagrams,
    read_tests,
    repository_diagrams,
    repository_forms,
)

STATUSES = ("enforced", "declared_only", "missing", "outside")
STATUS_LABELS = {"enforced": "appliquée", "declared_only": "déclarée seulement", "missing": "manquante",
                 "outside": "hors logiciel"}
KIND_LABELS = {"diagram": "élément de diagramme", "charter_role": "rôle de charte d'un élément",
               "form": "champ de formulaire", "code": "règle du code"}


@dataclass(frozen=True)
class Enforcement:
    where: str
    kind: str  # diagram, charter_role, form, code
    reached_from: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"where": self.where, "kind": self.kind, "reached_from": list(self.reached_from)}


@dataclass(frozen=True)
class Unreached:
    """A mark or citation that nothing in the product reaches."""

    where: str
    kind: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"where": self.where, "kind": self.kind, "reason": self.reason}


@dataclass
class RuleCoverage:
    id: str
    title: str
    scope: str = "software"
    reason: str = ""
    enforced_by: list[Enforcement] = field(default_factory=list)
    unreached: list[Unreached] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)
    negative_tests: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.scope == "outside":
            return "outside"
        if self.enforced_by and self.negative_tests:
            return "enforced"
        if not self.enforced_by and self.unreached:
            return "declared_only"
        return "missing"

    @property
    def missing_enforcement(self) -> bool:
        return self.status == "missing" and not self.enforced_by

    @property
    def missing_negative_test(self) -> bool:
        return self.status in ("missing", "declared_only") and not self.negative_tests

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "scope": self.scope, "reason": self.reason,
                "status": self.status, "missing_enforcement": self.missing_enforcement,
                "missing_negative_test": self.missing_negative_test,
                "enforced_by": [e.as_dict() for e in self.enforced_by],
                "unreached": [u.as_dict() for u in self.unreached],
                "tests": self.tests, "negative_tests": self.negative_tests}


@dataclass(frozen=True)
class _CodeFacts:
    graph: CodeGraph
    marks: dict[str, list[str]]  # function key -> rule ids
    tests: dict[str, list[TestRef]]


def conformance_matrix(project_root: Path, diagrams: list[DiagramFile] | None = None,
                       forms: dict[str, Any] | None = None) -> list[RuleCoverage]:
    """The matrix for these diagrams and forms (by default the repository's library and schema files)."""
    if diagrams is None:
        diagrams = repository_diagrams(project_root / "workflows" / "bpmn")
    if forms is None:
        forms = repository_forms(project_root / "forms" / "schemas")
    code = _code_facts(project_root.resolve(), _fingerprint(project_root))
    facts = read_diagrams(diagrams)
    form_used, form_unused = form_citations(forms, facts.forms)
    entries = entry_points(code.graph, facts.operations)
    reached = code.graph.reached_by(entries, set(code.marks))
    enforced: dict[str, list[Enforcement]] = defaultdict(list)
    unreached: dict[str, list[Unreached]] = defaultdict(list)
    for source in (facts.citations, form_used):
        for rule_id, citations in source.items():
            enforced[rule_id] += [_enforcement(c) for c in citations]
    for rule_id, places in form_unused.items():
        unreached[rule_id] += [Unreached(p, "form", "formulaire utilisé par aucune tâche des procédures analysées")
                               for p in places]
    for key, rule_ids in code.marks.items():
        labels = tuple(sorted(reached.get(key, ())))
        for rule_id in rule_ids:
            if labels:
                enforced[rule_id].append(Enforcement(key, "code", labels))
            else:
                unreached[rule_id].append(Unreached(key, "code", "fonction atteinte par aucun point d'entrée"))
    rules = []
    for entry in read_catalogue(project_root / "docs" / "charter"):
        tests = code.tests.get(entry.id, [])
        rules.append(RuleCoverage(
            entry.id, entry.title, entry.scope, entry.reason,
            sorted(set(enforced.get(entry.id, [])), key=lambda e: (e.kind, e.where)),
            sorted(set(unreached.get(entry.id, [])), key=lambda u: (u.kind, u.where)),
            sorted({t.name for t in tests}), sorted({t.name for t in tests if t.negative})))
    return rules


def for_pack(rules: list[RuleCoverage], pack_id: str) -> list[RuleCoverage]:
    """The matrix of one charter version (rule pack, engine.domain.charter_packs): the catalogue rules it is made
    of; UnknownPack (French message) for an unknown version."""
    from engine.domain.charter_packs import get_pack

    kept = set(get_pack(pack_id).rule_ids(r.id for r in rules))
    return [r for r in rules if r.id in kept]


def _enforcement(citation: Citation) -> Enforcement:
    return Enforcement(citation.where, citation.kind, citation.reached_from)


def summary(rules: list[RuleCoverage]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for rule in rules:
        counts[rule.status] += 1
    return counts


def _fingerprint(root: Path) -> tuple[tuple[str, int], ...]:
    """Modification times of the code and tests: the analysis is redone only when one changes."""
    paths = [path for folder in (*PRODUCT_PACKAGES, "tests") for path in (root / folder).rglob("*.py")]
    return tuple(sorted((str(path), path.stat().st_mtime_ns) for path in paths))


@lru_cache(maxsize=4)
def _code_facts(root: Path, fingerprint: tuple[tuple[str, int], ...]) -> _CodeFacts:
    graph = build_graph(root)
    return _CodeFacts(graph, graph.marks(), read_tests(root / "tests"))
