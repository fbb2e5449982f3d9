"""Element-level differences between two bundles (what the designer's visual diff colours).

Every element that carries an ``id`` is compared, in BPMN files (tasks, events, gateways, sequence flows,
lanes, data objects, messages, event definitions...) and in DMN files (decisions, tables, columns, rules,
entries...), except the diagram interchange (``bpmndi:``, ``dmndi:``, ``dc:``, ``di:`` elements and
everything below them): moving a shape is not a change.

An element is *changed* when its id exists on both sides and its canonical form differs. The canonical form
is its tag, its attributes, its stripped text and the canonical forms of its children (extension elements
included), with two kinds of children left out:

- children that are elements compared on their own (flow nodes, sequence flows, lanes, DMN rules and
  columns...): a sub-process is not changed because a task inside it changed, nor a decision because one
  of its rules changed;
- ``bpmn:incoming`` / ``bpmn:outgoing`` references, which only repeat what the sequence flows say (the
  changed flow is reported, not both of its ends).

Details that describe an element without being drawn on their own (event definitions, conditions, loop
characteristics, I/O specifications...) stay in their parent's canonical form even when they carry an id,
so a changed timer duration marks the boundary event as changed too.

Attributes written with their BPMN default value (``cancelActivity="true"``...) count as absent: bpmn-js
leaves them out when it saves a diagram. A relabel (``name`` attribute) is a change here; whether it
matters for running cases is decided by ``engine.runtime.migration``, which ignores labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lxml import etree

from engine.runtime.definitions import Bundle
from engine.runtime.xml import BPMN_NS, read_xml

# Elements compared on their own, hence left out of their parent's canonical form (local names).
STANDALONE = frozenset({
    # BPMN containers, flow nodes and connecting objects
    "process", "subProcess", "transaction", "adHocSubProcess", "callActivity",
    "task", "userTask", "manualTask", "serviceTask", "scriptTask", "businessRuleTask", "sendTask", "receiveTask",
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "exclusiveGateway", "inclusiveGateway", "parallelGateway", "eventBasedGateway", "complexGateway",
    "sequenceFlow", "messageFlow", "association", "dataAssociation",
    # data, artifacts, swimlanes, collaboration and root elements
    "dataObject", "dataObjectReference", "dataStore", "dataStoreReference", "textAnnotation", "group",
    "laneSet", "childLaneSet", "lane", "collaboration", "participant", "message", "signal", "error", "escalation",
    "correlationProperty", "correlationKey", "category", "categoryValue", "itemDefinition",
    # DMN
    "decision", "inputData", "businessKnowledgeModel", "knowledgeSource", "rule", "input", "output",
})
_DI_NAMESPACE = re.compile(r"/(BPMN/\d+/DI|DD/\d+/D[CI]|DMN/\d+/(DMNDI|DC|DI))/?$")
_REDUNDANT = frozenset({f"{{{BPMN_NS}}}incoming", f"{{{BPMN_NS}}}outgoing"})
# Attributes written with their BPMN schema default mean the same as when left out (bpmn-js drops them on save).
_DEFAULTS = {
    f"{{{BPMN_NS}}}boundaryEvent": {"cancelActivity": "true"},
    f"{{{BPMN_NS}}}startEvent": {"isInterrupting": "true", "parallelMultiple": "false"},
    f"{{{BPMN_NS}}}intermediateCatchEvent": {"parallelMultiple": "false"},
    f"{{{BPMN_NS}}}subProcess": {"triggeredByEvent": "false"},
    f"{{{BPMN_NS}}}process": {"isClosed": "false", "processType": "None"},
    f"{{{BPMN_NS}}}exclusiveGateway": {"gatewayDirection": "Unspecified"},
    f"{{{BPMN_NS}}}parallelGateway": {"gatewayDirection": "Unspecified"},
    f"{{{BPMN_NS}}}inclusiveGateway": {"gatewayDirection": "Unspecified"},
    f"{{{BPMN_NS}}}multiInstanceLoopCharacteristics": {"isSequential": "false"},
}


@dataclass(frozen=True)
class FileDiff:
    """Element ids of one file, each tuple sorted."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff_bundles(old: Bundle, new: Bundle) -> dict[str, FileDiff]:
    """Per file name (every file of either bundle), the elements added, removed and changed from old to new."""
    result: dict[str, FileDiff] = {}
    for name in sorted({*old.files, *new.files}):
        before = element_forms(old.files[name], name) if name in old.files else {}
        after = element_forms(new.files[name], name) if name in new.files else {}
        result[name] = FileDiff(
            added=tuple(sorted(after.keys() - before.keys())),
            removed=tuple(sorted(before.keys() - after.keys())),
            changed=tuple(sorted(k for k in before.keys() & after.keys() if before[k] != after[k])),
        )
    return result


def element_forms(text: str, filename: str) -> dict[str, Any]:
    """The canonical form of every element with an id in a diagram file (DI left out), by id."""
    root = read_xml(text, filename)
    forms: dict[str, Any] = {}
    for element in _semantic_elements(root):
        element_id = element.get("id")
        if element_id and element_id not in forms:
            forms[element_id] = canonical(element)
    return forms


def canonical(element: etree._Element) -> tuple[Any, ...]:
    """Tag, sorted attributes, stripped text and children (see the module docstring for those left out)."""
    children = tuple(canonical(child) for child in element if _part_of_parent(child))
    defaults = _DEFAULTS.get(element.tag, {})
    attributes = tuple(sorted((k, v) for k, v in element.attrib.items() if defaults.get(k) != v))
    return (element.tag, attributes, (element.text or "").strip(), children)


def is_di(element: etree._Element) -> bool:
    namespace = etree.QName(element).namespace or ""
    return bool(_DI_NAMESPACE.search(namespace))


def _semantic_elements(root: etree._Element) -> list[etree._Element]:
    found, pending = [], [root]
    while pending:
        element = pending.pop()
        if not isinstance(element.tag, str) or is_di(element):
            continue  # comments are removed by the reader; DI subtrees are layout only
        found.append(element)
        pending.extend(reversed(list(element)))
    return found


def _part_of_parent(child: etree._Element) -> bool:
    if not isinstance(child.tag, str) or is_di(child) or child.tag in _REDUNDANT:
        return False
    return not (child.get("id") and etree.QName(child).localname in STANDALONE)
