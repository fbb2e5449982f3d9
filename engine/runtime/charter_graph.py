"""The flow graph of a charter diagram, with call activities and embedded subprocesses inlined.

Each call site gets its own copy of the called process (node keys are prefixed by the call's key), so that
paths stay context-sensitive: the conditions and roles met inside a called process belong to the path that
entered it. A call activity is two nodes: its entry (boundary events leave from there: the call did not
complete) and its exit ``<key>#done``, which carries the call activity's own charter role.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from lxml import etree

from engine.domain.charter_roles import ROLE_PROPERTY
from engine.runtime.expressions import parse_expression
from engine.runtime.xml import BPMN_NS, SPIFF_NS, kind_of

FLOW_NODES = frozenset({
    "task", "userTask", "serviceTask", "manualTask", "businessRuleTask", "sendTask", "receiveTask", "scriptTask",
    "callActivity", "subProcess", "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent",
    "boundaryEvent", "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway",
    "complexGateway", "transaction", "adHocSubProcess",
})
_CONTAINERS = ("callActivity", "subProcess", "transaction", "adHocSubProcess")
_WAITING = frozenset({"userTask", "receiveTask", "intermediateCatchEvent"})
MAX_CALL_DEPTH = 8
EXIT = "#done"


@dataclass
class Node:
    key: str
    element_id: str
    file: str
    kind: str
    name: str
    role: str | None = None
    writes: frozenset[str] = frozenset()
    waiting: bool = False
    timed: bool = False
    top_end: bool = False
    operations: frozenset[str] = frozenset()  # service operations a service task calls


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # "flow", "boundary" (interrupting), "side" (non-interrupting boundary), "call"
    flow_id: str = ""
    file: str = ""
    condition: ast.expr | None = None  # None: always true (or not understood: assumed possible)
    text: str = ""
    # A gateway's default flow is taken when no other flow's condition is true: its condition is composed by
    # the analysis from these (flow id, condition, condition text, understood) of its siblings.
    siblings: tuple[tuple[str, ast.expr | None, str, bool], ...] | None = None


@dataclass
class CharterGraph:
    process_id: str
    main_file: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    starts: list[str] = field(default_factory=list)
    unknown_roles: list[tuple[str, str, str]] = field(default_factory=list)  # (file, element id, value)


def role_of(element: etree._Element) -> str | None:
    prop = element.find(f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}properties/"
                        f"{{{SPIFF_NS}}}property[@name='{ROLE_PROPERTY}']")
    value = (prop.get("value") or "").strip() if prop is not None else ""
    return value or None


def local(element: etree._Element) -> str:
    return etree.QName(element).localname


def processes(roots: Mapping[str, etree._Element]) -> dict[str, tuple[str, etree._Element]]:
    found: dict[str, tuple[str, etree._Element]] = {}
    for name, root in sorted(roots.items()):
        if kind_of(root) == "bpmn":
            for process in root.iterfind(f"{{{BPMN_NS}}}process"):
                found.setdefault(process.get("id") or "", (name, process))
    return found


def build_graph(roots: Mapping[str, etree._Element], process_id: str,
                writes: Callable[[etree._Element], frozenset[str]], known_roles: frozenset[str]) -> CharterGraph:
    index = processes(roots)
    main_file, process = index[process_id]
    graph = CharterGraph(process_id, main_file)
    builder = _Builder(graph, index, writes, known_roles)
    starts, ends = builder.inline(process, main_file, "", (process_id,))
    graph.starts = [*starts, *builder.event_starts]
    ends = [*ends, *builder.event_ends]
    # flows naming no element of their process are reported by the parser; here they lead nowhere
    graph.edges = [e for e in graph.edges if e.source in graph.nodes and e.target in graph.nodes]
    for key in ends:
        graph.nodes[key].top_end = True
    for key, node in graph.nodes.items():  # a timer on a call activity bounds every wait inside the call
        parts = key.split("/")
        if node.waiting and any(graph.nodes.get("/".join(parts[:i]), node).timed for i in range(1, len(parts))):
            node.timed = True
    return graph


class _Builder:
    def __init__(self, graph: CharterGraph, index: Mapping[str, tuple[str, etree._Element]],
                 writes: Callable[[etree._Element], frozenset[str]], known_roles: frozenset[str]):
        self.graph, self.index, self.writes, self.known_roles = graph, index, writes, known_roles
        self.seen_roles: set[tuple[str, str]] = set()
        # An event subprocess may start whenever its parent runs: its start events are entry points where no
        # role is known to have passed. When it interrupts the top process, its ends end the case.
        self.event_starts: list[str] = []
        self.event_ends: list[str] = []

    def inline(self, container: etree._Element, file: str, prefix: str,
               stack: tuple[str, ...]) -> tuple[list[str], list[str]]:
        """Add the container's flow nodes and flows; return its (start keys, end keys)."""
        children = [c for c in container if isinstance(c.tag, str) and local(c) in FLOW_NODES
                    and not (local(c) == "subProcess" and c.get("triggeredByEvent") == "true")]
        event_ends: list[str] = []
        for event_process in (c for c in container if isinstance(c.tag, str) and local(c) == "subProcess"
                              and c.get("triggeredByEvent") == "true"):
            inner_starts, inner_ends = self.inline(event_process, file, prefix + (event_process.get("id") or "") + "/",
                                                   stack)
            interrupting = all(_start_interrupts(event_process, key) for key in inner_starts)
            if prefix:  # it may start while the enclosing call runs: what passed before the call holds
                self.graph.edges.extend(Edge(prefix[:-1], start, "boundary") for start in inner_starts)
                if interrupting:
                    event_ends.extend(inner_ends)  # it ends the enclosing process: the call completes
            else:
                self.event_starts.extend(inner_starts)
                if interrupting:
                    self.event_ends.extend(inner_ends)
        exit_of: dict[str, str] = {}
        starts, ends = [], []
        for child in children:
            element_id = child.get("id") or ""
            key = prefix + element_id
            kind = local(child)
            role = self._role(child, file)
            if kind in _CONTAINERS:
                self._add(Node(key, element_id, file, kind, child.get("name") or element_id))
                exit_key = key + EXIT
                self._add(Node(exit_key, element_id, file, "callExit", child.get("name") or element_id, role))
                exit_of[element_id] = exit_key
                self._enter(child, file, key, exit_key, stack)
                continue
            operators = child.iter(f"{{{SPIFF_NS}}}serviceTaskOperator")
            self._add(Node(key, element_id, file, kind, child.get("name") or element_id, role, self.writes(child),
                           kind in _WAITING and not _is_timer(child) and _link(child) is None,
                           operations=frozenset(o.get("id") or "" for o in operators)))
            if kind == "startEvent":
                starts.append(key)
            elif kind == "endEvent":
                ends.append(key)
        self._flows(container, children, file, prefix, exit_of)
        self._boundaries(children, prefix)
        self._links(children, prefix)
        self._event_gateway_timers(children, prefix)
        if prefix:  # a called process completes with its main paths: a side branch's end does not complete it
            main = self._main_reach(starts)
            ends = [end for end in ends if end in main]
        return starts, [*ends, *event_ends]

    def _main_reach(self, starts: list[str]) -> set[str]:
        return reachable(starts, [edge for edge in self.graph.edges if edge.kind != "side"])

    def _role(self, element: etree._Element, file: str) -> str | None:
        role = role_of(element)
        if role is not None and role not in self.known_roles:
            if (file, element.get("id") or "") not in self.seen_roles:
                self.seen_roles.add((file, element.get("id") or ""))
                self.graph.unknown_roles.append((file, element.get("id") or "", role))
            return None
        return role

    def _add(self, node: Node) -> None:
        self.graph.nodes[node.key] = node

    def _enter(self, element: etree._Element, file: str, key: str, exit_key: str, stack: tuple[str, ...]) -> None:
        inner: etree._Element | None = None
        inner_file = file
        called = element.get("calledElement") or ""
        if local(element) != "callActivity":
            inner = element
        elif called in self.index and called not in stack and len(stack) < MAX_CALL_DEPTH:
            inner_file, inner = self.index[called]
        if inner is None:  # unknown or recursive call: opaque, only the call's own role counts
            self.graph.edges.append(Edge(key, exit_key, "call"))
            return
        starts, ends = self.inline(inner, inner_file, key + "/", (*stack, called or key))
        self.graph.edges.extend(Edge(key, start, "call") for start in starts)
        self.graph.edges.extend(Edge(end, exit_key, "call") for end in ends)

    def _flows(self, container: etree._Element, children: list[etree._Element], file: str, prefix: str,
               exit_of: Mapping[str, str]) -> None:
        flows = [f for f in container if isinstance(f.tag, str) and local(f) == "sequenceFlow"]
        defaults = {c.get("default") for c in children if c.get("default")}
        parsed: dict[str, ast.expr | None] = {}
        texts: dict[str, str] = {}
        understood: dict[str, bool] = {}
        for flow in flows:
            node = flow.find(f"{{{BPMN_NS}}}conditionExpression")
            text = (node.text or "").strip() if node is not None else ""
            texts[flow.get("id") or ""] = text
            parsed[flow.get("id") or ""], understood[flow.get("id") or ""] = _condition(text)
        for flow in flows:
            flow_id = flow.get("id") or ""
            source, target = flow.get("sourceRef") or "", flow.get("targetRef") or ""
            siblings = None
            if flow_id in defaults:
                siblings = tuple((s, parsed[s], texts[s], understood[s]) for s in
                                 (f.get("id") or "" for f in flows if f.get("sourceRef") == source and f is not flow))
            self.graph.edges.append(Edge(exit_of.get(source, prefix + source), prefix + target, "flow", flow_id,
                                         file, parsed[flow_id], texts[flow_id], siblings))

    def _links(self, children: list[etree._Element], prefix: str) -> None:
        """A link throw event goes on at the link catch event of the same name (an implicit flow)."""
        catches: dict[str, list[str]] = {}
        for child in children:
            if local(child) == "intermediateCatchEvent" and _link(child) is not None:
                catches.setdefault(_link(child) or "", []).append(prefix + (child.get("id") or ""))
        for child in children:
            if local(child) == "intermediateThrowEvent" and _link(child) is not None:
                self.graph.edges.extend(Edge(prefix + (child.get("id") or ""), target, "flow")
                                        for target in catches.get(_link(child) or "", ()))

    def _boundaries(self, children: list[etree._Element], prefix: str) -> None:
        for child in children:
            if local(child) != "boundaryEvent":
                continue
            host = prefix + (child.get("attachedToRef") or "")
            kind = "side" if child.get("cancelActivity") == "false" else "boundary"
            self.graph.edges.append(Edge(host, prefix + (child.get("id") or ""), kind))
            if _is_timer(child) and host in self.graph.nodes:
                self.graph.nodes[host].timed = True

    def _event_gateway_timers(self, children: list[etree._Element], prefix: str) -> None:
        """A catch event after an event-based gateway that also waits for a timer has that timer as due time."""
        by_id = {c.get("id"): c for c in children}
        for gateway in (c for c in children if local(c) == "eventBasedGateway"):
            key = prefix + (gateway.get("id") or "")
            targets = [e.target for e in self.graph.edges if e.source == key]
            if any(_is_timer(by_id[t.removeprefix(prefix)]) for t in targets if t.removeprefix(prefix) in by_id):
                for target in targets:
                    if target in self.graph.nodes:
                        self.graph.nodes[target].timed = True


def _start_interrupts(event_process: etree._Element, key: str) -> bool:
    start_id = key.rsplit("/", 1)[-1]
    start = next((c for c in event_process if isinstance(c.tag, str) and c.get("id") == start_id), None)
    return start is None or start.get("isInterrupting") != "false"


def _link(element: etree._Element) -> str | None:
    definition = element.find(f"{{{BPMN_NS}}}linkEventDefinition")
    return None if definition is None else (definition.get("name") or "")


def _is_timer(element: etree._Element) -> bool:
    return element.find(f"{{{BPMN_NS}}}timerEventDefinition") is not None


def _condition(text: str) -> tuple[ast.expr | None, bool]:
    """(parsed condition, understood). An empty condition is always true; a refused one is reported by the
    safe-expression check and taken here as possible."""
    if not text:
        return None, True
    try:
        return parse_expression(text).body, True
    except Exception:  # noqa: BLE001 - refused expressions have their own finding
        return None, False


def reachable(starts: Iterable[str], edges: Iterable[Edge]) -> set[str]:
    """The nodes reached from `starts` along `edges`."""
    out: dict[str, list[str]] = {}
    for edge in edges:
        out.setdefault(edge.source, []).append(edge.target)
    seen, pending = set(), list(starts)
    while pending:
        key = pending.pop()
        if key not in seen:
            seen.add(key)
            pending.extend(out.get(key, ()))
    return seen
