"""Generated BPMN DI: complete, readable (columns, lanes, no overlaps), stable, and still a valid diagram."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from engine.errors import DefinitionRefused
from engine.runtime.layout import di_problems, layout, main

BPMN = Path(__file__).parent.parent / "data" / "bpmn"
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
}
Box = tuple[float, float, float, float]

LOOP = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="loop_defs" targetNamespace="t">
  <bpmn:process id="loop" name="Request with questions" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="request" />
    <bpmn:userTask id="request" name="Request the exam" />
    <bpmn:sequenceFlow id="f2" sourceRef="request" targetRef="validate" />
    <bpmn:userTask id="validate" name="Validate the indication" />
    <bpmn:sequenceFlow id="f3" sourceRef="validate" targetRef="complete" />
    <bpmn:exclusiveGateway id="complete" name="Complete?" default="f_no" />
    <bpmn:sequenceFlow id="f_yes" name="yes" sourceRef="complete" targetRef="end">
      <bpmn:conditionExpression>complete == True</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_no" name="no" sourceRef="complete" targetRef="ask_more" />
    <bpmn:userTask id="ask_more" name="Ask for more information" />
    <bpmn:sequenceFlow id="f_back" sourceRef="ask_more" targetRef="request" />
    <bpmn:endEvent id="end" name="Indication validated" />
  </bpmn:process>
</bpmn:definitions>
"""

TWO_POOLS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs" targetNamespace="t">
  <bpmn:collaboration id="collab">
    <bpmn:participant id="p_site" name="Requesting site" processRef="site" />
    <bpmn:participant id="p_ris" name="Hospital RIS" />
    <bpmn:messageFlow id="m_order" name="order" sourceRef="p_ris" targetRef="receive" />
    <bpmn:messageFlow id="m_report" sourceRef="send" targetRef="reader_start" />
  </bpmn:collaboration>
  <bpmn:process id="site" isExecutable="true">
    <bpmn:startEvent id="s1" />
    <bpmn:sequenceFlow id="a1" sourceRef="s1" targetRef="receive" />
    <bpmn:receiveTask id="receive" name="Receive order" />
    <bpmn:sequenceFlow id="a2" sourceRef="receive" targetRef="send" />
    <bpmn:sendTask id="send" name="Send report" />
    <bpmn:sequenceFlow id="a3" sourceRef="send" targetRef="e1" />
    <bpmn:endEvent id="e1" />
  </bpmn:process>
  <bpmn:process id="reader" name="Report reader" isExecutable="false">
    <bpmn:startEvent id="reader_start" />
    <bpmn:sequenceFlow id="b1" sourceRef="reader_start" targetRef="reader_end" />
    <bpmn:endEvent id="reader_end" />
  </bpmn:process>
</bpmn:definitions>
"""


def fixture(name: str) -> str:
    return (BPMN / f"{name}.bpmn").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def flow_out() -> str:
    return layout(fixture("engine_flow"))


def parse(text: str) -> etree._Element:
    return etree.fromstring(text.encode())


def shapes(text: str) -> dict[str, Box]:
    found = {}
    for shape in parse(text).iterfind(".//bpmndi:BPMNShape", NS):
        bounds = shape.find("dc:Bounds", NS)
        found[shape.get("bpmnElement")] = tuple(float(bounds.get(k)) for k in ("x", "y", "width", "height"))
    return found


def edges(text: str) -> dict[str, list[tuple[float, float]]]:
    return {edge.get("bpmnElement"): [(float(w.get("x")), float(w.get("y"))) for w in edge.iterfind("di:waypoint", NS)]
            for edge in parse(text).iterfind(".//bpmndi:BPMNEdge", NS)}


def overlap(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def inside(inner: Box, outer: Box) -> bool:
    return (outer[0] <= inner[0] and inner[0] + inner[2] <= outer[0] + outer[2]
            and outer[1] <= inner[1] and inner[1] + inner[3] <= outer[1] + outer[3])


def on_border(point: tuple[float, float], box: Box) -> bool:
    x, y = point
    within_x, within_y = box[0] <= x <= box[0] + box[2], box[1] <= y <= box[1] + box[3]
    return (within_y and x in (box[0], box[0] + box[2])) or (within_x and y in (box[1], box[1] + box[3]))


def semantic(text: str) -> list[tuple[str, dict[str, str], str]]:
    root = parse(text)
    return [(el.tag, dict(el.attrib), (el.text or "").strip()) for el in root.iter(etree.Element)
            if etree.QName(el).namespace != NS["bpmndi"] and not any(
                etree.QName(a).namespace == NS["bpmndi"] for a in el.iterancestors())]


@pytest.mark.parametrize("name", ["engine_flow", "engine_ack"])
def test_fixtures_lack_di_and_layout_completes_it(name):
    text = fixture(name)
    assert "(tâche utilisateur) n'est pas dessiné" in " ".join(di_problems(text))
    assert di_problems(layout(text)) == []


def test_missing_shape_is_named_with_its_kind():
    problems = di_problems(fixture("engine_flow"))
    assert any(p.startswith("L'élément « review » (tâche utilisateur) n'est pas dessiné (aucune forme).")
               for p in problems)
    assert any(p.startswith("L'élément « f_accepted » (flux de séquence) n'est pas dessiné (aucune ligne).")
               for p in problems)


def test_spiffworkflow_still_parses_the_laid_out_diagrams():
    parser = SpiffBpmnParser()
    for name in ("engine_flow", "engine_ack"):
        parser.add_bpmn_str(layout(fixture(name)).encode(), f"{name}.bpmn")
    assert parser.get_spec("engine_flow").name == "engine_flow"
    assert "engine_ack" in parser.get_subprocess_specs("engine_flow")


def test_semantic_part_is_kept(flow_out):
    assert semantic(flow_out) == semantic(fixture("engine_flow"))
    assert flow_out.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions')
    assert "\n  <bpmn:process " in flow_out and "\n    <bpmn:laneSet " in flow_out  # 2-space indentation


def test_no_two_node_shapes_overlap(flow_out):
    root = parse(flow_out)
    nodes = {el.get("id") for el in root.find("bpmn:process", NS) if etree.QName(el).localname.endswith(
        ("Task", "Event", "Gateway", "Activity"))}
    hosts = {b.get("id"): b.get("attachedToRef") for b in root.iterfind(".//bpmn:boundaryEvent", NS)}
    boxes = {k: v for k, v in shapes(flow_out).items() if k in nodes}
    assert set(boxes) == nodes
    for a in boxes:
        for b in boxes:
            if a < b and hosts.get(a) != b and hosts.get(b) != a:
                assert not overlap(boxes[a], boxes[b]), (a, b)


def test_each_node_lies_in_its_lane_band_and_lanes_follow_the_lane_set(flow_out):
    boxes = shapes(flow_out)
    lanes = parse(flow_out).findall(".//bpmn:lane", NS)
    assert [boxes[lane.get("id")][1] for lane in lanes] == sorted(boxes[lane.get("id")][1] for lane in lanes)
    for lane in lanes:
        band = boxes[lane.get("id")]
        assert inside(band, boxes["engine_flow_participant"])
        for ref in lane.iterfind("bpmn:flowNodeRef", NS):
            assert inside(boxes[ref.text], band), ref.text


def test_columns_follow_the_flow_and_edges_are_orthogonal(flow_out):
    boxes, routes = shapes(flow_out), edges(flow_out)
    order = ["start", "submit", "prioritise", "is_accepted", "review", "wait_images", "call_ack", "end_done"]
    assert [boxes[n][0] + boxes[n][2] / 2 for n in order] == sorted(boxes[n][0] + boxes[n][2] / 2 for n in order)
    submit, prioritise = boxes["submit"], boxes["prioritise"]
    assert routes["f_submit_prioritise"][0] == (submit[0] + submit[2], submit[1] + submit[3] / 2)
    assert routes["f_submit_prioritise"][-1] == (prioritise[0], prioritise[1] + prioritise[3] / 2)
    flows = {f.get("id"): f for f in parse(flow_out).iterfind(".//bpmn:sequenceFlow", NS)}
    for flow_id, points in routes.items():
        assert len(points) >= 2
        assert all(a[0] == b[0] or a[1] == b[1] for a, b in zip(points, points[1:], strict=False)), flow_id
        assert on_border(points[0], boxes[flows[flow_id].get("sourceRef")]), flow_id
        assert on_border(points[-1], boxes[flows[flow_id].get("targetRef")]), flow_id


def test_boundary_event_sits_on_its_host_bottom_and_its_flow_leaves_downward(flow_out):
    boxes, routes = shapes(flow_out), edges(flow_out)
    host, timer = boxes["review"], boxes["review_timeout"]
    bottom = host[1] + host[3]
    assert timer[1] < bottom < timer[1] + timer[3]
    assert host[0] <= timer[0] + timer[2] / 2 <= host[0] + host[2]
    assert routes["f_timeout_escalate"][0] == (timer[0] + timer[2] / 2, timer[1] + timer[3])
    assert boxes["escalate"][0] > host[0] + host[2]  # the timeout's target goes to a later column
    assert boxes["escalate"][1] > host[1]  # ...below the happy path, which stays straight
    assert boxes["wait_images"][1] + 18 == host[1] + 40


def test_layout_is_idempotent_and_replaces_existing_di(flow_out):
    assert layout(flow_out) == flow_out
    tampered = flow_out.replace('x="350"', 'x="9999"')
    doubled = tampered.replace("</bpmn:definitions>", tampered[tampered.index("  <bpmndi:BPMNDiagram"):
                                                                 tampered.index("</bpmn:definitions>")]
                               + "</bpmn:definitions>")
    assert doubled.count("<bpmndi:BPMNDiagram") == 2
    assert layout(doubled) == flow_out


def test_loop_back_edge_keeps_the_diagram_finite_and_runs_below():
    out = layout(LOOP)
    boxes, routes = shapes(out), edges(out)
    request, ask = boxes["request"], boxes["ask_more"]
    assert request[0] < ask[0]  # the loop target stays left of the loop source
    assert boxes["end"][1] + 18 == request[1] + 40  # the first written branch keeps the straight line
    assert boxes["loop_participant"][2] <= 60 + 5 * 170  # five columns: start, request, validate, gateway, end
    back = routes["f_back"]
    assert back[0] == (ask[0] + ask[2] / 2, ask[1] + ask[3])  # leaves the bottom of the source
    assert back[-1] == (request[0] + request[2] / 2, request[1] + request[3])  # enters the bottom of the target
    lowest = max(y for _, y in back)
    assert lowest > max(b[1] + b[3] for k, b in boxes.items() if k != "loop_participant")
    assert not any(overlap((min(a[0], b[0]), min(a[1], b[1]), abs(a[0] - b[0]), abs(a[1] - b[1])), box)
                   for a, b in zip(back, back[1:], strict=False) for k, box in boxes.items()
                   if k not in ("loop_participant", "request", "ask_more"))
    assert lowest < boxes["loop_participant"][1] + boxes["loop_participant"][3]
    assert di_problems(out) == []
    assert layout(out) == out


def test_cycle_without_start_event_terminates():
    text = LOOP.replace('<bpmn:startEvent id="start" />', '<bpmn:task id="start" />')
    assert di_problems(layout(text)) == []


def test_process_without_collaboration_gets_one():
    out = layout(fixture("engine_ack"))
    root = parse(out)
    collaboration = root[0]
    assert collaboration.tag == f"{{{NS['bpmn']}}}collaboration"
    assert collaboration.get("id") == "engine_ack_collaboration"
    participant = collaboration.find("bpmn:participant", NS)
    assert dict(participant.attrib) == {"id": "engine_ack_participant", "name": "Acknowledge",
                                        "processRef": "engine_ack"}
    assert root.find(".//bpmndi:BPMNPlane", NS).get("bpmnElement") == "engine_ack_collaboration"
    pool = root.find(".//bpmndi:BPMNShape[@bpmnElement='engine_ack_participant']", NS)
    assert pool.get("isHorizontal") == "true"


def test_existing_collaboration_is_reused_and_pools_stack_with_message_flows():
    out = layout(TWO_POOLS)
    root = parse(out)
    assert len(root.findall("bpmn:collaboration", NS)) == 1
    participants = root.findall("bpmn:collaboration/bpmn:participant", NS)
    assert [p.get("id") for p in participants] == ["p_site", "p_ris", "reader_participant"]
    assert participants[2].get("name") == "Report reader"
    boxes, routes = shapes(out), edges(out)
    pools = [boxes[p.get("id")] for p in participants]
    for upper, lower in zip(pools, pools[1:], strict=False):
        assert upper[1] + upper[3] < lower[1] and upper[2] == lower[2]
    receive = boxes["receive"]  # the RIS pool is drawn below the site's: its message comes up from under
    assert routes["m_order"] == [(receive[0] + 50, pools[1][1]), (receive[0] + 50, receive[1] + receive[3])]
    report = routes["m_report"]
    assert report[0] == (boxes["send"][0] + 50, boxes["send"][1] + boxes["send"][3])
    assert all(a[0] == b[0] or a[1] == b[1] for a, b in zip(report, report[1:], strict=False))
    assert di_problems(out) == []


def test_di_problems_reports_missing_edge_dangling_and_empty_shapes(flow_out):
    root = parse(flow_out)
    plane = root.find(".//bpmndi:BPMNPlane", NS)
    plane.remove(plane.find("bpmndi:BPMNEdge[@bpmnElement='f_accepted']", NS))
    ghost = etree.SubElement(plane, f"{{{NS['bpmndi']}}}BPMNShape", id="ghost_di", bpmnElement="ghost")
    etree.SubElement(ghost, f"{{{NS['dc']}}}Bounds", x="0", y="0", width="10", height="10")
    plane.find("bpmndi:BPMNShape[@bpmnElement='submit']/dc:Bounds", NS).set("width", "0")
    short = plane.find("bpmndi:BPMNEdge[@bpmnElement='f_call_end']", NS)
    short.remove(short.find("di:waypoint", NS))
    problems = di_problems(etree.tostring(root, encoding="unicode"))
    generate = "générez le dessin du fichier avec python -m engine.runtime.layout."
    assert problems == [
        "Le dessin BPMNShape « submit_di » de l'élément « submit » (tâche utilisateur) a une taille nulle ou "
        f"négative. Redessinez l'élément dans le modeleur, ou {generate}",
        "Le dessin BPMNShape « ghost_di » renvoie à l'élément « ghost », qui n'existe pas. Supprimez ce dessin, "
        "ou rétablissez l'élément.",
        f"L'élément « f_accepted » (flux de séquence) n'est pas dessiné (aucune ligne). Dessinez-le dans le "
        f"modeleur, ou {generate}",
        "L'élément « f_call_end » (flux de séquence) est dessiné par une ligne de moins de 2 points. Dessinez-le "
        f"dans le modeleur, ou {generate}",
    ]


def test_expanded_subprocess_is_refused_clearly():
    text = LOOP.replace('<bpmn:userTask id="validate" name="Validate the indication" />',
                        '<bpmn:subProcess id="validate"><bpmn:startEvent id="inner" /></bpmn:subProcess>')
    with pytest.raises(NotImplementedError, match="subProcess 'validate'.*callActivity"):
        layout(text)
    empty = LOOP.replace('<bpmn:userTask id="validate" name="Validate the indication" />',
                         '<bpmn:subProcess id="validate" />')
    assert shapes(layout(empty))["validate"][2:] == (100, 80)


def test_non_bpmn_and_unsafe_input_are_refused():
    with pytest.raises(DefinitionRefused):
        layout("<html/>")
    with pytest.raises(DefinitionRefused):
        layout('<!DOCTYPE x [<!ENTITY a "b">]><bpmn:definitions xmlns:bpmn="' + NS["bpmn"] + '"/>')


def test_cli_rewrites_in_place_and_checks(tmp_path, capsys):
    target = tmp_path / "engine_flow.bpmn"
    target.write_text(fixture("engine_flow"), encoding="utf-8")
    assert main(["--check", str(target)]) == 1
    assert "« review » (tâche utilisateur) n'est pas dessiné" in capsys.readouterr().out
    assert main([str(target)]) == 0
    assert "DI regenerated" in capsys.readouterr().out
    assert target.read_text(encoding="utf-8") == layout(fixture("engine_flow"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["engine_flow.bpmn"]  # no temp file left behind
    assert main([str(target)]) == 0
    assert "unchanged" in capsys.readouterr().out
    assert main(["--check", str(target)]) == 0
    assert "DI complete" in capsys.readouterr().out
    broken = tmp_path / "broken.bpmn"
    broken.write_text("<not xml", encoding="utf-8")
    assert main([str(broken)]) == 1
    assert "n'est pas un XML bien formé" in capsys.readouterr().err
