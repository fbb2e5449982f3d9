"""Element-level diff of two bundles (the designer's visual diff between versions)."""

from __future__ import annotations

import re

import pytest

from engine.errors import DefinitionRefused
from engine.runtime import Bundle
from engine.runtime.diff import FileDiff, diff_bundles
from tests.conftest import DATA

MIGRATION = DATA / "bpmn" / "migration"
FLOW = (MIGRATION / "mig_flow.bpmn").read_text(encoding="utf-8")
ACK = (MIGRATION / "mig_ack.bpmn").read_text(encoding="utf-8")
NOTHING = FileDiff((), (), ())


def bundle(flow: str = FLOW, **extra: str) -> Bundle:
    return Bundle("mig_flow", {"mig_flow.bpmn": flow, "mig_ack.bpmn": ACK, **extra})


def flow_diff(new_flow: str) -> FileDiff:
    result = diff_bundles(bundle(), bundle(new_flow))
    assert result["mig_ack.bpmn"] == NOTHING
    return result["mig_flow.bpmn"]


def test_identical_bundles_have_no_difference():
    assert diff_bundles(bundle(), bundle()) == {"mig_ack.bpmn": NOTHING, "mig_flow.bpmn": NOTHING}


def test_relabel_is_a_change_of_that_element_only():
    assert flow_diff(FLOW.replace('name="Review the case"', 'name="Relire le dossier"')) == \
        FileDiff((), (), ("review",))


def test_layout_whitespace_and_flow_references_are_not_changes():
    moved = FLOW.replace('<dc:Bounds x="260" y="80"', '<dc:Bounds x="400" y="300"')
    moved = moved.replace('<di:waypoint x="200" y="120" />', '<di:waypoint x="250" y="140" />')
    moved = moved.replace('<bpmn:endEvent id="end_done" />', '<bpmn:endEvent id="end_done">\n    </bpmn:endEvent>')
    moved = moved.replace('id="review_di"', 'id="review_shape"')  # DI ids are not elements either
    # incoming/outgoing references only repeat the sequence flows (bpmn-js writes them, others do not)
    moved = moved.replace('<bpmn:userTask id="review" name="Review the case" />',
                          '<bpmn:userTask id="review" name="Review the case"><bpmn:incoming>f_submit_review'
                          '</bpmn:incoming><bpmn:outgoing>f_review_call</bpmn:outgoing></bpmn:userTask>')
    assert flow_diff(moved) == NOTHING


def test_added_task_reports_the_task_its_flows_and_the_rerouted_flow():
    added = FLOW.replace(
        '<bpmn:sequenceFlow id="f_review_call" sourceRef="review" targetRef="call_ack" />',
        '<bpmn:sequenceFlow id="f_review_call" sourceRef="review" targetRef="double_check" />'
        '<bpmn:userTask id="double_check" name="Double check">'
        '<bpmn:incoming>f_review_call</bpmn:incoming><bpmn:outgoing>f_check_call</bpmn:outgoing></bpmn:userTask>'
        '<bpmn:sequenceFlow id="f_check_call" sourceRef="double_check" targetRef="call_ack" />')
    added = added.replace('<bpmn:flowNodeRef>call_ack</bpmn:flowNodeRef>',
                          '<bpmn:flowNodeRef>call_ack</bpmn:flowNodeRef><bpmn:flowNodeRef>double_check'
                          '</bpmn:flowNodeRef>')
    # review and call_ack are not changed: only the flow between them (and the lane that gained a task) is.
    assert flow_diff(added) == FileDiff(("double_check", "f_check_call"), (), ("f_review_call", "mig_lane_radiologist"))


def test_removed_elements():
    removed = re.sub(r'<bpmn:boundaryEvent id="review_timeout".*?</bpmn:boundaryEvent>', "", FLOW, flags=re.S)
    removed = removed.replace('<bpmn:sequenceFlow id="f_timeout_escalate" sourceRef="review_timeout" '
                              'targetRef="escalate" />', "")
    removed = removed.replace("<bpmn:flowNodeRef>review_timeout</bpmn:flowNodeRef>", "")
    assert flow_diff(removed) == FileDiff((), ("f_timeout_escalate", "review_timeout", "review_timeout_def"),
                                          ("mig_lane_radiologist",))


def test_timer_change_marks_the_event_and_its_definition():
    changed = FLOW.replace('escalation["review"]', 'escalation["review_night"]')
    assert flow_diff(changed) == FileDiff((), (), ("review_timeout", "review_timeout_def"))


def test_extension_elements_are_compared():
    changed = FLOW.replace('value="test_submit.schema.json"', 'value="bench_step.schema.json"')
    assert flow_diff(changed) == FileDiff((), (), ("submit",))


def test_container_is_not_changed_by_a_change_inside_it():
    def sub(label: str) -> str:
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:subProcess id="sub" name="Sous-processus">
      <bpmn:userTask id="inner" name="{label}" />
    </bpmn:subProcess>
  </bpmn:process>
</bpmn:definitions>"""

    result = diff_bundles(Bundle("p", {"p.bpmn": sub("A")}), Bundle("p", {"p.bpmn": sub("B")}))
    assert result == {"p.bpmn": FileDiff((), (), ("inner",))}


def test_a_file_on_one_side_only_is_all_added_or_removed_without_its_layout():
    before, after = Bundle("mig_flow", {"mig_flow.bpmn": FLOW}), bundle()
    ack_ids = ("f_mig_ack_1", "f_mig_ack_2", "acknowledge", "mig_ack", "mig_ack_defs", "mig_ack_end",
               "mig_ack_lane", "mig_ack_lanes", "mig_ack_start")
    assert diff_bundles(before, after) == {"mig_ack.bpmn": FileDiff(tuple(sorted(ack_ids)), (), ()),
                                           "mig_flow.bpmn": NOTHING}
    removed = diff_bundles(after, Bundle("mig_flow", {"mig_ack.bpmn": ACK}))["mig_flow.bpmn"]
    assert "review" in removed.removed and "mig_flow_defs" in removed.removed
    assert not [i for i in removed.removed if i.endswith("_di") or i.startswith("mig_flow_plane")]
    assert (removed.added, removed.changed) == ((), ())


DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/"
             xmlns:dmndi="https://www.omg.org/spec/DMN/20191111/DMNDI/"
             xmlns:dc="http://www.omg.org/spec/DMN/20180521/DC/" id="prio_defs" name="Priorité" namespace="t">
  <decision id="priority" name="Priorité">
    <decisionTable id="priority_table" hitPolicy="UNIQUE">
      <input id="in_urgency" label="Urgence">
        <inputExpression id="in_urgency_expr" typeRef="string"><text>urgency</text></inputExpression>
      </input>
      <output id="out_level" name="level" typeRef="integer" />
      <rule id="rule_vital">
        <inputEntry id="r1_i"><text>"vital"</text></inputEntry>
        <outputEntry id="r1_o"><text>3</text></outputEntry>
      </rule>
      <rule id="rule_other">
        <inputEntry id="r2_i"><text>-</text></inputEntry>
        <outputEntry id="r2_o"><text>1</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
  <dmndi:DMNDI>
    <dmndi:DMNDiagram id="prio_diagram">
      <dmndi:DMNShape id="priority_shape" dmnElementRef="priority"><dc:Bounds height="80" width="180" x="X" y="0" />
      </dmndi:DMNShape>
    </dmndi:DMNDiagram>
  </dmndi:DMNDI>
</definitions>"""


def test_dmn_rules_and_cells_are_compared_the_decision_only_for_its_own_attributes():
    before = Bundle("p", {"prio.dmn": DMN.replace('x="X"', 'x="10"')})
    changed = DMN.replace('x="X"', 'x="500"').replace("<text>3</text>", "<text>4</text>")
    changed = changed.replace("</decisionTable>", '<rule id="rule_urgent"><inputEntry id="r3_i"><text>"urgent"'
                                                  '</text></inputEntry><outputEntry id="r3_o"><text>2</text>'
                                                  "</outputEntry></rule></decisionTable>")
    assert diff_bundles(before, Bundle("p", {"prio.dmn": changed})) == {
        "prio.dmn": FileDiff(("r3_i", "r3_o", "rule_urgent"), (), ("r1_o", "rule_vital"))}
    policy = DMN.replace('x="X"', 'x="10"').replace('hitPolicy="UNIQUE"', 'hitPolicy="FIRST"')
    assert diff_bundles(before, Bundle("p", {"prio.dmn": policy})) == {
        "prio.dmn": FileDiff((), (), ("priority", "priority_table"))}


def test_unsafe_xml_is_refused_by_the_safe_reader():
    evil = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><bpmn:definitions ' \
           'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">&e;</bpmn:definitions>'
    with pytest.raises(DefinitionRefused):
        diff_bundles(bundle(), Bundle("mig_flow", {"mig_flow.bpmn": evil}))


def test_attributes_at_their_bpmn_default_are_not_a_change():
    # bpmn-js drops cancelActivity="true" (the default) when it saves a diagram edited in the browser.
    from engine.runtime.definitions import Bundle
    from engine.runtime.diff import diff_bundles

    ns = 'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"'
    base = (f'<bpmn:definitions {ns} id="d" targetNamespace="t"><bpmn:process id="p" isExecutable="true">'
            '<bpmn:userTask id="t"/><bpmn:boundaryEvent id="b" attachedToRef="t"{attr}>'
            '<bpmn:timerEventDefinition id="td"/></bpmn:boundaryEvent></bpmn:process></bpmn:definitions>')
    explicit = Bundle("p", {"p.bpmn": base.format(attr=' cancelActivity="true"')})
    implicit = Bundle("p", {"p.bpmn": base.format(attr="")})
    not_interrupting = Bundle("p", {"p.bpmn": base.format(attr=' cancelActivity="false"')})
    assert diff_bundles(explicit, implicit)["p.bpmn"].empty
    assert diff_bundles(implicit, not_interrupting)["p.bpmn"].changed == ("b",)
