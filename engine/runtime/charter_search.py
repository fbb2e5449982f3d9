"""Graph searches of the charter checks (engine.runtime.charter_paths): reachability, must-pass role sets,
witness paths, and the path-sensitive search for injected protocols reaching acquisition without presence."""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Mapping
from typing import Any

from engine.domain.charter_roles import INJECTION_FACT_OPERATION, ROLES
from engine.runtime.charter_domains import Atom, Domains, atoms_of
from engine.runtime.charter_graph import CharterGraph, Edge, reachable

MAX_SEARCH_STATES = 50_000
FACT_LOST = Edge("", "", "fact-lost")  # in a state's conditions: the injection fact no longer constrains a variable
PASSING = ("flow", "call")  # leaving a node by these edges means it completed


class InjectionSearch:
    """Paths from one protocol element to acquisition/injection that skip presence attestation and whose
    conditions can hold with the injection fact. A state is (node, conditions taken and still valid)."""

    def __init__(self, graph: CharterGraph, live: list[Edge], domains: Domains, fact: ast.expr, fact_atom: Atom,
                 origin: str):
        self.graph, self.domains, self.fact, self.fact_atom = graph, domains, fact, fact_atom
        self.origin = origin
        self.truncated = False
        self.out: dict[str, list[Edge]] = {}
        for edge in live:
            self.out.setdefault(edge.source, []).append(edge)
        self.atoms_of = {e: frozenset(atoms_of(e.condition)) for e in live if e.condition is not None}
        self.roots_of = {e: {atom[0] for atom in atoms} for e, atoms in self.atoms_of.items()}
        self.future = future_atoms(live, self.atoms_of)
        # nodes every path from the origin reaches after a presence attestation (parallel joins included)
        from_origin = must_pass(graph, live, reachable([origin], live), starts=[origin])
        self.safe = {key for key, roles in from_origin.items() if "presence_attestation" in roles}
        self.cache: dict[frozenset[Edge], bool] = {}

    def run(self) -> list[tuple[str, list[str]]]:
        found: dict[str, list[str]] = {}
        start = (self.origin, frozenset[Edge]())
        parent: dict[tuple[str, frozenset[Edge]], tuple[str, frozenset[Edge]] | None] = {start: None}
        queue = deque([start])
        while queue:
            if len(parent) >= MAX_SEARCH_STATES:
                self.truncated = True
                break
            state = queue.popleft()
            key, taken = state
            node = self.graph.nodes[key]
            for edge in self.out.get(key, ()):
                if node.role == "presence_attestation" and edge.kind in PASSING:
                    continue  # the attestation completed: this path is safe
                kept = taken
                if edge.kind in PASSING and node.writes:
                    kept = frozenset(e for e in taken if e is FACT_LOST or not self.roots_of[e] & node.writes)
                    if self.fact_atom[0] in node.writes and INJECTION_FACT_OPERATION not in node.operations:
                        kept = kept | {FACT_LOST}  # overwritten by a form or another operation: proves nothing now
                if edge.condition is not None:
                    kept = kept | {edge}
                    if not self._possible(kept):
                        continue
                if edge.target in self.safe:
                    continue
                kept = self._relevant(kept, self.future.get(edge.target, frozenset()))
                target = self.graph.nodes[edge.target]
                following = (edge.target, kept)
                if following in parent:
                    continue
                parent[following] = state
                if target.role in ("acquisition", "injection"):
                    found.setdefault(edge.target, trail(parent, following))
                if target.role != "protocol":
                    queue.append(following)
        return sorted(found.items())

    def _relevant(self, taken: frozenset[Edge], future: frozenset[Atom]) -> frozenset[Edge]:
        """Drop the groups of conditions (linked by the variables they share) that no condition ahead reads:
        they were satisfiable together, and nothing ahead can contradict them. Keeps the states few."""
        if not taken:
            return taken
        groups: list[tuple[set[Atom], set[Edge]]] = []
        lost = {FACT_LOST} & taken
        for edge in taken - lost:
            atoms, members = set(self.atoms_of[edge]), {edge}
            for group in [g for g in groups if g[0] & atoms]:
                groups.remove(group)
                atoms |= group[0]
                members |= group[1]
            groups.append((atoms, members))
        return frozenset(e for atoms, members in groups if atoms & future for e in members) | lost

    def _possible(self, taken: frozenset[Edge]) -> bool:
        if taken not in self.cache:
            fact = [] if FACT_LOST in taken else [self.fact]
            conditions = [*fact, *(e.condition for e in taken if e.condition is not None)]
            self.cache[taken] = self.domains.satisfiable(conditions, {self.fact_atom: (True, False)})
        return self.cache[taken]


def future_atoms(edges: list[Edge], atoms_of: Mapping[Edge, frozenset[Atom]]) -> dict[str, frozenset[Atom]]:
    """For each node, the variables read by the conditions of the flows reachable from it."""
    incoming: dict[str, list[Edge]] = {}
    ahead: dict[str, frozenset[Atom]] = {}
    for edge in edges:
        incoming.setdefault(edge.target, []).append(edge)
        ahead[edge.source] = ahead.get(edge.source, frozenset()) | atoms_of.get(edge, frozenset())
    pending = deque(ahead)
    while pending:
        key = pending.popleft()
        for edge in incoming.get(key, ()):
            grown = ahead[edge.source] | ahead[key]
            if grown != ahead[edge.source]:
                ahead[edge.source] = grown
                pending.append(edge.source)
    return ahead


def trail(parent: Mapping[Any, Any], state: Any) -> list[str]:
    keys = []
    while state is not None:
        keys.append(state[0])
        state = parent[state]
    return list(reversed(keys))


def must_pass(graph: CharterGraph, edges: list[Edge], reach: set[str],
              edge_roles: Mapping[Edge, tuple[str, str]] | None = None,
              starts: list[str] | None = None) -> dict[str, frozenset[str]]:
    """For each reachable node, the roles passed on every path from a start event (or from `starts`) to it,
    before it.

    `edge_roles` maps an edge to (role, pseudo role): taking the edge after passing the role passes the pseudo
    role too (e.g. a routing alert, then the flow taken only when the case is handled locally)."""
    edge_roles = edge_roles or {}
    everything = frozenset(ROLES) | {pseudo for _, pseudo in edge_roles.values()}
    incoming: dict[str, list[Edge]] = {}
    outgoing: dict[str, list[str]] = {}
    for edge in edges:
        if edge.source in reach:
            incoming.setdefault(edge.target, []).append(edge)
            outgoing.setdefault(edge.source, []).append(edge.target)
    starts = graph.starts if starts is None else starts
    before = {key: everything for key in reach}
    for start in starts:
        before[start] = frozenset()
    # worklist: a node's set only shrinks, so each node is updated at most len(everything) times
    pending = deque(sorted(reach))
    queued = set(pending)
    while pending:
        key = pending.popleft()
        queued.discard(key)
        feeds = incoming.get(key)
        if not feeds or key in starts:
            continue
        parts = [_through(graph, e, before[e.source], edge_roles) for e in feeds]
        joined = (frozenset().union(*parts) if graph.nodes[key].kind == "parallelGateway" and len(parts) > 1
                  else frozenset.intersection(*parts))
        if joined != before[key]:
            before[key] = joined
            for following in outgoing.get(key, ()):
                if following not in queued:
                    queued.add(following)
                    pending.append(following)
    return before


def _through(graph: CharterGraph, edge: Edge, before: frozenset[str],
             edge_roles: Mapping[Edge, tuple[str, str]]) -> frozenset[str]:
    if edge.kind not in PASSING:
        return before  # a boundary event: the host did not complete
    role = graph.nodes[edge.source].role
    passed = before | {role} if role else before
    needed, pseudo = edge_roles.get(edge, ("", ""))
    return passed | {pseudo} if needed and needed in passed else passed


def witness(graph: CharterGraph, edges: list[Edge], target: str, avoid: set[str]) -> list[str]:
    """A shortest path from a start event to `target` that completes no element of the `avoid` roles."""
    out: dict[str, list[Edge]] = {}
    for edge in edges:
        out.setdefault(edge.source, []).append(edge)
    parent: dict[str, str | None] = {s: None for s in graph.starts}
    queue = deque(graph.starts)
    while queue:
        key = queue.popleft()
        if key == target:
            trail = []
            current: str | None = key
            while current is not None:
                trail.append(current)
                current = parent[current]
            return list(reversed(trail))
        for edge in out.get(key, ()):
            if graph.nodes[key].role in avoid and edge.kind in PASSING:
                continue
            if edge.target not in parent:
                parent[edge.target] = key
                queue.append(edge.target)
    return []


def nearest_roles(graph: CharterGraph, edges: list[Edge], start: str) -> list[str]:
    """The charter roles met first (fewest steps) downstream of `start`."""
    out: dict[str, list[str]] = {}
    for edge in edges:
        out.setdefault(edge.source, []).append(edge.target)
    layer, seen = [start], {start}
    while layer:
        roles = sorted({r for k in layer if (r := graph.nodes[k].role)})
        if roles:
            return roles
        following = []
        for key in layer:
            for target in out.get(key, ()):
                if target not in seen:
                    seen.add(target)
                    following.append(target)
        layer = following
    return []
