"""Generate readable BPMN DI for diagrams written by hand as semantic BPMN, and check DI completeness.

`layout(xml)` drops any bpmndi:BPMNDiagram and draws a fresh one: one horizontal pool per participant (a
participant and, if needed, a collaboration are added for processes that have none), lanes as bands in
laneSet order, nodes in columns by longest path from the start events, orthogonal edges. The geometry lives
in `layout_geometry`. `di_problems(xml)` lists what bpmn-js would miss.

    python -m engine.runtime.layout FILE...          rewrite each file in place (atomically)
    python -m engine.runtime.layout --check FILE...  only report DI problems; exit 1 if any
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from lxml import etree

from engine.errors import DefinitionRefused, Finding, TeleradError
from engine.runtime.layout_geometry import Box, Edge, Flow, Lane, Node, Pool, Shape, arrange
from engine.runtime.xml import BPMN_NS, BPMNDI_NS, read_xml

DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
DI_NS = "http://www.omg.org/spec/DD/20100524/DI"
_DI_PREFIXES = {"bpmndi": BPMNDI_NS, "dc": DC_NS, "di": DI_NS}

SUBPROCESSES = frozenset({"subProcess", "transaction", "adHocSubProcess"})
ACTIVITIES = frozenset({"task", "userTask", "serviceTask", "scriptTask", "manualTask", "businessRuleTask",
                        "sendTask", "receiveTask", "callActivity"}) | SUBPROCESSES
EVENTS = frozenset({"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent",
                    "boundaryEvent"})
GATEWAYS = frozenset({"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway",
                      "complexGateway"})
FLOW_NODES = ACTIVITIES | EVENTS | GATEWAYS
_NEED_SHAPE = FLOW_NODES | {"lane", "participant"}
_NEED_EDGE = frozenset({"sequenceFlow", "messageFlow"})
_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _bpmn(name: str) -> str:
    return f"{{{BPMN_NS}}}{name}"


def _bpmndi(name: str) -> str:
    return f"{{{BPMNDI_NS}}}{name}"


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def layout(xml_text: str, filename: str = "diagram.bpmn") -> str:
    """The document with a freshly generated DI (any existing one removed), pretty-printed, UTF-8."""
    root = read_xml(xml_text, filename)
    if etree.QName(root).text != _bpmn("definitions"):
        raise DefinitionRefused([Finding("", "layout.not-bpmn", "Ce document n'est pas un diagramme BPMN (élément "
                                         "racine bpmn:definitions attendu) : il ne peut pas être dessiné.",
                                         filename)])
    _refuse_expanded_subprocesses(root)
    for diagram in root.findall(_bpmndi("BPMNDiagram")):
        root.remove(diagram)
    root = _with_di_namespaces(root)
    used = {str(el.get("id")) for el in root.iter(etree.Element) if el.get("id")}
    _add_missing_participants(root, used)
    processes = {p.get("id"): p for p in root.findall(_bpmn("process"))}
    for collaboration in root.findall(_bpmn("collaboration")):
        participants = [p for p in collaboration.findall(_bpmn("participant")) if p.get("id")]
        if not participants or not collaboration.get("id"):
            continue
        pools = [_pool(p.get("id"), processes.get(p.get("processRef"))) for p in participants]
        messages = [_flow(f) for f in collaboration.findall(_bpmn("messageFlow")) if f.get("id")]
        shapes, edges = arrange(pools, messages)
        _write_diagram(root, collaboration.get("id"), shapes, edges, used)
    etree.indent(root, space="  ")
    top = [*reversed(list(root.itersiblings(preceding=True))), root, *root.itersiblings()]  # comments, PIs
    return _XML_DECLARATION + "".join(etree.tostring(n, encoding="unicode", with_tail=False) + "\n" for n in top)


def _refuse_expanded_subprocesses(root: etree._Element) -> None:
    for element in root.iter(etree.Element):
        if _local(element) in SUBPROCESSES and any(_local(c) in FLOW_NODES | _NEED_EDGE for c in element):
            raise NotImplementedError(
                f"{_local(element)} '{element.get('id')}' contains flow elements: expanded subprocesses are not "
                "laid out (they need their own plane in bpmn-js); model the inner flow as a process and call "
                "it with a callActivity")


def _with_di_namespaces(root: etree._Element) -> etree._Element:
    """Declare bpmndi/dc/di on the definitions element, as bpmn-js does (lxml cannot add to an nsmap)."""
    known = dict(root.nsmap)
    missing = [(p, u) for p, u in _DI_PREFIXES.items() if u not in known.values()]
    if not missing:
        return root
    for prefix, uri in missing:  # a prefix taken by another namespace (dc: Dublin Core...) gets a number
        name, n = prefix, 1
        while name in known:
            name, n = f"{prefix}{n}", n + 1
        known[name] = uri
    fresh = etree.Element(root.tag, attrib=dict(root.attrib), nsmap=known)
    fresh.text = root.text
    fresh.extend(list(root))
    for sibling in reversed(list(root.itersiblings(preceding=True))):
        fresh.addprevious(sibling)
    for sibling in reversed(list(root.itersiblings())):
        fresh.addnext(sibling)
    return fresh


def _fresh_id(base: str, used: set[str]) -> str:
    candidate, n = base, 1
    while candidate in used:
        n += 1
        candidate = f"{base}_{n}"
    used.add(candidate)
    return candidate


def _add_missing_participants(root: etree._Element, used: set[str]) -> None:
    """Give every process a participant, in the first collaboration (created first in definitions if none)."""
    drawn = {p.get("processRef") for p in root.iter(_bpmn("participant"))}
    missing = [p for p in root.findall(_bpmn("process")) if p.get("id") and p.get("id") not in drawn]
    if not missing:
        return
    collaboration = root.find(_bpmn("collaboration"))
    if collaboration is None:
        collaboration = etree.Element(_bpmn("collaboration"),
                                      {"id": _fresh_id(f"{missing[0].get('id')}_collaboration", used)})
        index = next((i for i, child in enumerate(root)
                      if isinstance(child.tag, str) and _local(child) not in ("import", "extension")), len(root))
        root.insert(index, collaboration)
    existing = collaboration.findall(_bpmn("participant"))
    index = collaboration.index(existing[-1]) + 1 if existing else 0  # participants come first
    for offset, process in enumerate(missing):
        pid = process.get("id")
        participant = etree.Element(_bpmn("participant"), {
            "id": _fresh_id(f"{pid}_participant", used), "name": process.get("name") or pid, "processRef": pid})
        collaboration.insert(index + offset, participant)


def _flow(element: etree._Element) -> Flow:
    return Flow(element.get("id"), element.get("sourceRef", ""), element.get("targetRef", ""),
                element.get("name", ""))


def _pool(participant: str, process: etree._Element | None) -> Pool:
    if process is None:
        return Pool(participant, black_box=True)
    lanes: list[Lane] = []
    lane_of: dict[str, Lane] = {}

    def walk(lane_set: etree._Element, depth: int) -> list[str]:
        leaves = []
        for element in lane_set.findall(_bpmn("lane")):
            lane = Lane(element.get("id"), depth, [])
            lanes.append(lane)
            for ref in element.findall(_bpmn("flowNodeRef")):
                lane_of[(ref.text or "").strip()] = lane  # child lanes come later and win
            child = element.find(_bpmn("childLaneSet"))
            lane.leaves = (walk(child, depth + 1) if child is not None else []) or [lane.id]
            leaves.extend(lane.leaves)
        return leaves

    lane_set = process.find(_bpmn("laneSet"))
    first = walk(lane_set, 0)[:1] if lane_set is not None else []
    nodes = []
    for element in process:
        kind = _local(element)
        if kind in FLOW_NODES and element.get("id"):
            lane = lane_of.get(element.get("id"))
            nodes.append(Node(element.get("id"), kind, element.get("name", ""),
                              lane.leaves[0] if lane else (first[0] if first else ""),
                              element.get("attachedToRef", "") if kind == "boundaryEvent" else ""))
    ids = {n.id for n in nodes}
    flows = [_flow(f) for f in process.findall(_bpmn("sequenceFlow")) if f.get("id")]
    return Pool(participant, nodes, [f for f in flows if f.source in ids and f.target in ids], lanes)


def _bounds(parent: etree._Element, box: Box) -> None:
    x, y, w, h = box
    etree.SubElement(parent, f"{{{DC_NS}}}Bounds", {"x": str(x), "y": str(y), "width": str(w), "height": str(h)})


def _write_diagram(root: etree._Element, collaboration: str, shapes: list[Shape], edges: list[Edge],
                   used: set[str]) -> None:
    diagram = etree.Element(_bpmndi("BPMNDiagram"), {"id": _fresh_id(f"BPMNDiagram_{collaboration}", used)})
    plane = etree.SubElement(diagram, _bpmndi("BPMNPlane"),
                             {"id": _fresh_id(f"BPMNPlane_{collaboration}", used), "bpmnElement": collaboration})
    for shape in shapes:
        attrib = {"id": _fresh_id(f"{shape.element}_di", used), "bpmnElement": shape.element}
        if shape.kind in ("participant", "lane"):
            attrib["isHorizontal"] = "true"
        elif shape.kind == "exclusiveGateway":
            attrib["isMarkerVisible"] = "true"
        element = etree.SubElement(plane, _bpmndi("BPMNShape"), attrib)
        _bounds(element, shape.box)
        if shape.label:
            _bounds(etree.SubElement(element, _bpmndi("BPMNLabel")), shape.label)
    for edge in edges:
        element = etree.SubElement(plane, _bpmndi("BPMNEdge"),
                                   {"id": _fresh_id(f"{edge.element}_di", used), "bpmnElement": edge.element})
        for x, y in edge.points:
            etree.SubElement(element, f"{{{DI_NS}}}waypoint", {"x": str(x), "y": str(y)})
        if edge.label:
            _bounds(etree.SubElement(element, _bpmndi("BPMNLabel")), edge.label)
    relationship = root.find(_bpmn("relationship"))  # diagrams go before relationships, after root elements
    if relationship is not None:
        relationship.addprevious(diagram)
    else:
        root.append(diagram)


# BPMN element kinds as the French modeler names them, in DI findings (other kinds keep their BPMN name).
_KINDS_FR = {
    "task": "tâche", "userTask": "tâche utilisateur", "serviceTask": "tâche de service",
    "scriptTask": "tâche de script", "manualTask": "tâche manuelle", "businessRuleTask": "tâche de règle métier",
    "sendTask": "tâche d'envoi", "receiveTask": "tâche de réception", "callActivity": "activité d'appel",
    "subProcess": "sous-processus", "transaction": "transaction", "adHocSubProcess": "sous-processus ad hoc",
    "startEvent": "événement de début", "endEvent": "événement de fin",
    "intermediateCatchEvent": "événement intermédiaire de réception",
    "intermediateThrowEvent": "événement intermédiaire d'émission", "boundaryEvent": "événement attaché",
    "exclusiveGateway": "passerelle exclusive", "parallelGateway": "passerelle parallèle",
    "inclusiveGateway": "passerelle inclusive", "eventBasedGateway": "passerelle basée sur les événements",
    "complexGateway": "passerelle complexe", "lane": "couloir", "participant": "bassin",
    "sequenceFlow": "flux de séquence", "messageFlow": "flux de message",
}
_GENERATE = "générez le dessin du fichier avec python -m engine.runtime.layout"
_REDRAW = f"Dessinez-le dans le modeleur, ou {_GENERATE}."


def _named(kind: str, element_id: str) -> str:
    return f"« {element_id} » ({_KINDS_FR.get(kind, kind)})"


def di_problems(xml_text: str, filename: str = "diagram.bpmn") -> list[str]:
    """What keeps the DI from being complete: missing shapes/edges, dangling references, empty shapes."""
    return [message for _element, message in di_findings(xml_text, filename)]


def di_findings(xml_text: str, filename: str = "diagram.bpmn") -> list[tuple[str, str]]:
    """The same problems as (element id, message): the BPMN element concerned, or the DI element's own id.

    Messages are in French (they become validation findings shown to process designers)."""
    root = read_xml(xml_text, filename)
    semantic = {el.get("id"): el for el in root.iter(etree.Element)
                if etree.QName(el).namespace == BPMN_NS and el.get("id")}
    problems: list[tuple[str, str]] = []
    drawn: dict[str, list[etree._Element]] = {}
    for di in root.iter(_bpmndi("BPMNPlane"), _bpmndi("BPMNShape"), _bpmndi("BPMNEdge")):
        what, ref = f"Le dessin {_local(di)} « {di.get('id', '?')} »", di.get("bpmnElement")
        if ref not in semantic:
            problems.append((di.get("id", ""), f"{what} renvoie à l'élément « {ref} », qui n'existe pas. "
                                               "Supprimez ce dessin, ou rétablissez l'élément." if ref
                             else f"{what} ne renvoie à aucun élément (attribut bpmnElement absent). "
                                  "Supprimez ce dessin."))
            continue
        drawn.setdefault(ref, []).append(di)
        if _local(di) == "BPMNShape":
            problems.extend((ref, f"{what} de l'élément {_named(_local(semantic[ref]), ref)} {p}. "
                                   f"Redessinez l'élément dans le modeleur, ou {_GENERATE}.")
                            for p in _bounds_problems(di))
    for element_id, element in semantic.items():
        kind, dis = _local(element), drawn.get(element_id, [])
        shapes = [d for d in dis if _local(d) == "BPMNShape"]
        edges = [d for d in dis if _local(d) == "BPMNEdge"]
        named = f"L'élément {_named(kind, element_id)}"
        if kind in _NEED_SHAPE and not shapes:
            problems.append((element_id, f"{named} n'est pas dessiné (aucune forme). {_REDRAW}"))
        elif kind in _NEED_SHAPE and len(shapes) > 1:
            problems.append((element_id, f"{named} est dessiné {len(shapes)} fois. Supprimez les formes en double."))
        elif kind in _NEED_EDGE and not edges:
            problems.append((element_id, f"{named} n'est pas dessiné (aucune ligne). {_REDRAW}"))
        elif kind in _NEED_EDGE and any(len(e.findall(f"{{{DI_NS}}}waypoint")) < 2 for e in edges):
            problems.append((element_id, f"{named} est dessiné par une ligne de moins de 2 points. {_REDRAW}"))
    return problems


def _bounds_problems(shape: etree._Element) -> list[str]:
    bounds = shape.find(f"{{{DC_NS}}}Bounds")
    if bounds is None:
        return ["n'a ni position ni taille (dc:Bounds absent)"]
    try:
        values = [float(bounds.get(a, "")) for a in ("x", "y", "width", "height")]
    except ValueError:
        return ["a une position ou une taille non numérique"]
    return ["a une taille nulle ou négative"] if values[2] <= 0 or values[3] <= 0 else []


def _replace_atomically(path: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        shutil.copymode(path, temp)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.runtime.layout",
                                     description="Generate BPMN DI (pools, lanes, shapes, edges) for BPMN files.")
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--check", action="store_true", help="only report DI problems; exit 1 if any")
    args = parser.parse_args(argv)
    failed = False
    for path in args.files:
        try:
            text = path.read_text(encoding="utf-8")
            if args.check:
                problems = di_problems(text, str(path))
                for problem in problems:
                    print(f"{path}: {problem}")
                print(f"{path}: {len(problems)} DI problem(s)" if problems else f"{path}: DI complete")
                failed = failed or bool(problems)
                continue
            result = layout(text, str(path))
            if result == text:
                print(f"{path}: unchanged (DI already as generated)")
                continue
            _replace_atomically(path, result)
            drawn = read_xml(result, str(path))
            shapes, edges = (sum(1 for _ in drawn.iter(_bpmndi(k))) for k in ("BPMNShape", "BPMNEdge"))
            left = di_problems(result, str(path))
            print(f"{path}: DI regenerated ({shapes} shapes, {edges} edges)"
                  + (f", {len(left)} problem(s) left: {left[0]}" if left else ""))
        except (OSError, UnicodeDecodeError, TeleradError, NotImplementedError) as err:
            print(f"{path}: {err}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
