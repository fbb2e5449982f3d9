"""Deployment-time charter checks: path analysis over a charter family's diagrams (call activities inlined).

For a process of a charter family (engine.domain.charter_roles.FAMILY_REQUIRED_ROLES), it proves that:
the family's required roles are on reachable elements; every path to an element of a role of
REQUIRED_BEFORE passes the roles it needs; every path from a protocol to an acquisition or injection passes
a presence attestation unless its gateway conditions cannot hold with an injected protocol; every end of the
top process follows a report release or a motivated refusal (a non-interrupting boundary branch does not end
the case). Gateway flows whose condition can never be true (engine.runtime.charter_domains) are taken as
absent, and reported when they guard a charter role. A waiting state without a due time is an error.

"Every path passes role R before X" is a must-analysis (a fixpoint over the graph, intersection at merges,
union at parallel joins), not a path enumeration. Only the injection check follows paths, with the set of
conditions taken since their variables were last written, so a loop is cut as soon as it adds nothing new.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from engine.domain.charter import enforces
from engine.domain.charter_roles import (
    CLOSING_ROLES,
    DUE_TIME_RULE,
    FAMILY_REQUIRED_ROLES,
    INJECTION_FACT,
    LOCAL_CLOSURE,
    REQUIRED_BEFORE,
    ROLES,
    label,
    rule_of,
)
from engine.errors import DefinitionRefused, Finding
from engine.runtime.charter_domains import ABSENT, Atom, Domains, atom_of, atoms_of, show_atom
from engine.runtime.charter_graph import EXIT, CharterGraph, Edge, Node, build_graph, processes
from engine.runtime.charter_placement import placement_findings
from engine.runtime.charter_search import InjectionSearch, must_pass, nearest_roles, reachable, witness
from engine.runtime.expressions import parse_expression
from engine.runtime.script_engine import OperationRegistry
from engine.runtime.xml import read_xml


@dataclass
class CharterReport:
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)


def is_charter_process(process_id: str) -> bool:
    return process_id in FAMILY_REQUIRED_ROLES


@enforces("CH-1.2", "CH-4.1.2", "CH-4.1.3", "CH-4.1.6", "CH-4.1.7", "CH-4.1.9", "CH-4.1.10", "CH-4.1.13",
          "CH-4.2.1")
def check_charter(files: Mapping[str, str], process_id: str, operations: OperationRegistry,
                  form_schema: Callable[[str], Mapping[str, Any]] | None) -> CharterReport:
    """The charter findings of one process of a bundle (files: name -> XML text): where its roles stand (every
    process), and for a charter family the path analysis."""
    try:
        roots = {name: read_xml(text, name) for name, text in files.items()}
    except DefinitionRefused:
        return CharterReport()  # unreadable files have their own findings
    placed = placement_findings(roots, form_schema)
    if not is_charter_process(process_id) or process_id not in processes(roots):
        return CharterReport(errors=placed)
    domains = Domains(roots, operations, form_schema)
    graph = build_graph(roots, process_id, domains.writes, frozenset(ROLES))
    report = _Analysis(graph, domains, process_id).run()
    report.errors = [*placed, *(f for f in report.errors if f not in placed)]
    return report


def refuse_if_defeated(files: Mapping[str, str], process_id: str, operations: OperationRegistry,
                       form_schema: Callable[[str], Mapping[str, Any]] | None) -> None:
    """Raise DefinitionRefused with the charter errors of a bundle, if any (deployment)."""
    errors = check_charter(files, process_id, operations, form_schema).errors
    if errors:
        raise DefinitionRefused(errors)


class _Analysis:
    def __init__(self, graph: CharterGraph, domains: Domains, family: str):
        self.graph, self.domains, self.family = graph, domains, family
        self.report = CharterReport()
        self.incomplete = False  # a path search stopped at its bound: nothing is proven
        self.fact = parse_expression(INJECTION_FACT).body
        fact_atom = atom_of(self.fact.left) if isinstance(self.fact, ast.Compare) else None
        self.fact_atom: Atom = fact_atom or ("protocol_facts", "contrast")
        self.dead = self._dead_edges()
        self.live = [e for e in graph.edges if e not in self.dead]
        self.reach = reachable(graph.starts, self.live)

    def run(self) -> CharterReport:
        for file, element_id, value in self.graph.unknown_roles:
            self._error(file, element_id, "charter.role",
                        f"Le rôle de charte « {value} » n'existe pas. Choisissez l'un des rôles : "
                        f"{', '.join(sorted(ROLES))}.")
        self._required_roles()
        self._required_before()
        self._presence_after_protocol()
        self._closing()
        self._dead_guards()
        self._due_times()
        if self.incomplete or self.domains.exhausted:
            self._error(self.graph.main_file, self.family, "CH-4.1.10",
                        "Ce diagramme est trop complexe pour que Telerad prouve qu'aucun chemin n'expose le patient "
                        "sans les étapes de la charte (trop de chemins ou de combinaisons de conditions). "
                        "Simplifiez-le, par exemple en regroupant des étapes dans un sous-processus appelé.")
        return self.report

    # ------------------------------------------------------------------------------------------ findings

    def _error(self, file: str, element_id: str, rule: str, message: str) -> None:
        if not any((f.rule, f.element_id, f.file) == (rule, element_id, file) for f in self.report.errors):
            self.report.errors.append(Finding(element_id, rule, message, file))

    def _warning(self, file: str, element_id: str, rule: str, message: str) -> None:
        finding = Finding(element_id, rule, message, file)
        if finding not in self.report.warnings:
            self.report.warnings.append(finding)

    def _rule(self, role: str) -> str:
        return rule_of(role, self.family)

    def _show(self, node: Node) -> str:
        return f"« {node.name} » ({node.element_id})" if node.name != node.element_id else f"« {node.element_id} »"

    def _path(self, keys: list[str]) -> str:
        shown = [self.graph.nodes[k] for k in keys if not k.endswith(EXIT)
                 and not self.graph.nodes[k].kind.endswith("Gateway")]
        names = [f"« {n.name} »" for n in shown]
        if len(names) > 10:
            names = [*names[:4], "…", *names[-5:]]
        return " → ".join(names)

    # ----------------------------------------------------------------------------------------- the checks

    def _required_roles(self) -> None:
        reached = {self.graph.nodes[k].role for k in self.reach}
        anywhere = {n.role for n in self.graph.nodes.values()}
        for role in FAMILY_REQUIRED_ROLES[self.family]:
            if role in reached:
                continue
            why = ("l'élément qui porte ce rôle n'est sur aucun chemin possible (flux absent ou condition "
                   "jamais vraie)" if role in anywhere else "aucun élément ne porte ce rôle")
            self._error(self.graph.main_file, self.family, self._rule(role),
                        f"Une étape « {label(role)} » est obligatoire dans ce processus (charte), mais {why}. "
                        f"Ajoutez-la, ou indiquez le « Rôle dans la charte » (propriété charterRole = {role}) de "
                        "l'élément qui la réalise, sur un chemin atteignable.")

    def _required_before(self) -> None:
        must = must_pass(self.graph, self.live, self.reach)
        for key in sorted(self.reach):
            node = self.graph.nodes[key]
            if node.role not in REQUIRED_BEFORE:
                continue
            before = must[key.removesuffix(EXIT)] if key.endswith(EXIT) else must[key]
            for role in REQUIRED_BEFORE[node.role]:
                if role in before:
                    continue
                trail = witness(self.graph, self.live, key.removesuffix(EXIT), {role})
                example = f" Par exemple : {self._path(trail)}." if trail else ""
                self._error(node.file, node.element_id, self._rule(role),
                            f"{self._show(node)}, étape « {label(node.role)} », peut être atteinte sans passer par "
                            f"l'étape « {label(role)} ».{example} Faites passer chaque chemin qui y mène par "
                            f"cette étape (propriété charterRole = {role}), ou supprimez le raccourci.")

    def _presence_after_protocol(self) -> None:
        for origin in sorted(k for k in self.reach if self.graph.nodes[k].role == "protocol"):
            search = InjectionSearch(self.graph, self.live, self.domains, self.fact, self.fact_atom, origin)
            results = search.run()
            self.incomplete = self.incomplete or search.truncated
            for target, trail in results:
                node = self.graph.nodes[target]
                self._error(node.file, node.element_id, self._rule("presence_attestation"),
                            f"Avec un protocole injecté, {self._show(node)}, étape « {label(node.role or '')} », peut "
                            f"être atteinte après le choix du protocole sans attestation de présence d'un médecin. "
                            f"Par exemple : {self._path(trail)}. Faites passer ce chemin par l'étape "
                            "« attestation de présence médicale » (charterRole = presence_attestation), ou gardez-le "
                            'par une condition excluant l\'injection (protocol_facts["contrast"] == False).')

    def _closing(self) -> None:
        main = [e for e in self.live if e.kind != "side"]
        reach = reachable(self.graph.starts, main)
        alert, handled = LOCAL_CLOSURE
        handled_fact = parse_expression(handled).body
        local = {e: (alert, "local_closure") for e in main if e.condition is not None
                 and not self.domains.satisfiable([e.condition, ast.UnaryOp(ast.Not(), handled_fact)])}
        must = must_pass(self.graph, main, reach, local)
        closing = {*CLOSING_ROLES, "local_closure"}
        for key in sorted(reach):
            node = self.graph.nodes[key]
            if not node.top_end or closing & (must[key] | {node.role}):
                continue
            trail = witness(self.graph, [e for e in main if e not in local], key, closing)
            example = f" Par exemple : {self._path(trail)}." if trail else ""
            self._error(node.file, node.element_id, "CH-1.2",
                        f"Le dossier peut se terminer en {self._show(node)} sans diffusion du compte-rendu ni refus "
                        f"motivé.{example} Un dossier se termine toujours par un compte-rendu diffusé "
                        "(charterRole = report_release) ou un refus motivé (charterRole = motivated_refusal).")

    def _dead_guards(self) -> None:
        for edge in sorted(self.dead, key=lambda e: (e.file, e.flow_id)):
            roles = nearest_roles(self.graph, self.live, edge.target)
            why = self._why_never(edge)
            if roles:
                role = roles[0]
                self._error(edge.file, edge.flow_id, self._rule(role),
                            f"La condition « {edge.text} » de ce flux ne peut jamais être vraie{why} : le chemin "
                            f"qu'elle garde vers l'étape « {label(role)} » ne sera jamais emprunté. Corrigez la "
                            "condition avec une valeur possible, ou supprimez ce flux.")
            else:
                self._warning(edge.file, edge.flow_id, "condition.dead",
                              f"La condition « {edge.text} » de ce flux ne peut jamais être vraie{why} : ce flux ne "
                              "sera jamais emprunté. Corrigez la condition ou supprimez ce flux.")

    def _why_never(self, edge: Edge) -> str:
        reasons = []
        for atom in sorted(atoms_of(edge.condition), key=repr) if edge.condition is not None else ():
            values = self.domains.values(atom)
            if values is None:
                continue
            shown = [v for v in values if not _is_absent(v)]
            if not shown:
                reasons.append(f"« {show_atom(atom)} » n'est produite par aucun formulaire, aucune opération ni "
                               "table de décision")
            else:
                reasons.append(f"« {show_atom(atom)} » ne peut valoir que {', '.join(_show_value(v) for v in shown)}")
        return f" ({' ; '.join(reasons)})" if reasons else ""

    def _due_times(self) -> None:
        for key in sorted(self.graph.nodes):
            node = self.graph.nodes[key]
            if node.waiting and not node.timed:
                self._error(node.file, node.element_id, DUE_TIME_RULE,
                              f"L'attente {self._show(node)} n'a pas d'échéance : un dossier pourrait y rester "
                              "indéfiniment. Attachez-lui un événement minuteur (interrompant ou non) avec un délai "
                              "réglé par l'administrateur.")

    def _dead_edges(self) -> set[Edge]:
        """Flows whose condition can never be true. A default flow is taken when none of its live siblings'
        conditions is true: a dead sibling counts as absent."""
        verdict: dict[tuple[str, str, str], bool] = {}

        def dead(edge: Edge) -> bool:
            if edge.condition is None:
                return False
            key = (edge.file, edge.flow_id, edge.text)
            if key not in verdict:
                verdict[key] = self.domains.satisfiable([edge.condition])
            return not verdict[key]

        found = {e for e in self.graph.edges if e.siblings is None and dead(e)}
        dead_ids = {(e.file, e.flow_id) for e in found}
        for index, edge in enumerate(self.graph.edges):
            if edge.siblings is None:
                continue
            live = [(c, t) for flow_id, c, t, _ in edge.siblings if (edge.file, flow_id) not in dead_ids]
            conditions = [c for c, _ in live if c is not None]
            condition: ast.expr | None = None
            text = ""
            if conditions and all(ok for _, _, _, ok in edge.siblings):
                either = conditions[0] if len(conditions) == 1 else ast.BoolOp(ast.Or(), conditions)
                condition = ast.UnaryOp(ast.Not(), either)
                text = " and ".join(f"not ({t})" for c, t in live if c is not None)
            edge = replace(edge, condition=condition, text=text or edge.text)
            self.graph.edges[index] = edge
            if dead(edge):
                found.add(edge)
        return found


def _is_absent(value: Any) -> bool:
    return value is ABSENT


def _show_value(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)
