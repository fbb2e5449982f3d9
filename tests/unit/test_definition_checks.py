"""Deployment checks: a diagram with code, unsafe expressions, unknown operations or hostile XML is refused,
with findings that name the element and the rule."""

from __future__ import annotations

import contextlib
import os
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.errors import DefinitionRefused, Finding
from engine.runtime.definitions import Bundle, bundles_from_library, parse_bundle
from engine.runtime.script_engine import OperationRegistry
from engine.runtime.xml import MAX_DIAGRAM_BYTES, read_xml

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="defs" targetNamespace="http://telerad.example/tests">
"""


def process(body: str, process_id: str = "p", called: str = "") -> str:
    """A process start -> <element 'step'> -> end, where ``body`` defines 'step' and its outgoing flows."""
    return f"""{HEADER}  <bpmn:process id="{process_id}" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="step" />
    {body}
    <bpmn:endEvent id="end" />
  </bpmn:process>{called}
</bpmn:definitions>"""


TO_END = '<bpmn:sequenceFlow id="f_end" sourceRef="step" targetRef="end" />'


def operations(*names: str) -> OperationRegistry:
    registry = OperationRegistry()
    for name in names:
        registry.register(name, lambda **kwargs: {"ok": True})
    return registry


def refused(files: dict[str, str] | str, registry: OperationRegistry | None = None,
            process_id: str = "p") -> list[Finding]:
    if isinstance(files, str):
        files = {"x.bpmn": files}
    with pytest.raises(DefinitionRefused) as caught:
        parse_bundle(Bundle(process_id, files), registry or operations())
    assert caught.value.findings, "a refusal must say why"
    return caught.value.findings


def summary(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.element_id, f.rule) for f in findings}


# --------------------------------------------------------------------------------------------------
# No code in diagrams
# --------------------------------------------------------------------------------------------------


def test_script_task_is_refused():
    xml = process(f"""<bpmn:scriptTask id="step" scriptFormat="python">
      <bpmn:script>import os; os.system('id')</bpmn:script>
    </bpmn:scriptTask>{TO_END}""")
    findings = refused(xml)
    assert summary(findings) == {("step", "no-script")}
    assert findings[0].file == "x.bpmn"


def test_empty_script_task_is_refused_too():
    xml = process(f'<bpmn:scriptTask id="step" scriptFormat="python" />{TO_END}')
    assert summary(refused(xml)) == {("step", "no-script")}


@pytest.mark.parametrize("extension", ["preScript", "postScript"])
def test_user_task_pre_or_post_script_is_refused(extension):
    xml = process(f"""<bpmn:userTask id="step">
      <bpmn:extensionElements>
        <spiffworkflow:{extension}>import os</spiffworkflow:{extension}>
      </bpmn:extensionElements>
    </bpmn:userTask>{TO_END}""")
    findings = refused(xml)
    assert summary(findings) == {("step", "no-script")}
    assert extension in findings[0].message


def test_whitespace_only_pre_script_is_still_refused():
    xml = process(f"""<bpmn:userTask id="step">
      <bpmn:extensionElements><spiffworkflow:preScript>   </spiffworkflow:preScript></bpmn:extensionElements>
    </bpmn:userTask>{TO_END}""")
    assert summary(refused(xml)) == {("step", "no-script")}


def test_every_script_is_reported_not_only_the_first():
    xml = process("""<bpmn:scriptTask id="step"><bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f_mid" sourceRef="step" targetRef="review" />
    <bpmn:userTask id="review">
      <bpmn:extensionElements><spiffworkflow:postScript>y = 2</spiffworkflow:postScript></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f_end" sourceRef="review" targetRef="end" />""")
    assert summary(refused(xml)) == {("step", "no-script"), ("review", "no-script")}


# --------------------------------------------------------------------------------------------------
# Only safe expressions
# --------------------------------------------------------------------------------------------------


def test_unsafe_gateway_condition_is_refused_and_names_the_gateway():
    xml = process("""<bpmn:exclusiveGateway id="step" default="f_default" />
    <bpmn:sequenceFlow id="f_cond" sourceRef="step" targetRef="end">
      <bpmn:conditionExpression>__import__('os').system('id')</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_default" sourceRef="step" targetRef="end" />""")
    findings = refused(xml)
    # The finding names the gateway that evaluates the condition (not the sequence flow carrying it).
    assert summary(findings) == {("step", "safe-expression")}
    assert "__import__('os').system('id')" in findings[0].message


def test_unsafe_inclusive_gateway_condition_is_refused():
    xml = process("""<bpmn:inclusiveGateway id="step" default="f_default" />
    <bpmn:sequenceFlow id="f_cond" sourceRef="step" targetRef="end">
      <bpmn:conditionExpression>().__class__.__base__.__subclasses__()</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_default" sourceRef="step" targetRef="end" />""")
    assert summary(refused(xml)) == {("step", "safe-expression")}


@pytest.mark.parametrize("timer_kind", ["timeDuration", "timeDate", "timeCycle"])
def test_unsafe_timer_expression_is_refused(timer_kind):
    xml = process(f"""<bpmn:intermediateCatchEvent id="step">
      <bpmn:timerEventDefinition id="step_timer">
        <bpmn:{timer_kind} xsi:type="bpmn:tFormalExpression">().__class__</bpmn:{timer_kind}>
      </bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>{TO_END}""")
    findings = refused(xml)
    assert summary(findings) == {("step", "safe-expression")}
    assert "().__class__" in findings[0].message


def test_unsafe_boundary_timer_is_refused_and_names_the_boundary_event():
    xml = process(f"""<bpmn:userTask id="step" />{TO_END}
    <bpmn:boundaryEvent id="late" attachedToRef="step" cancelActivity="true">
      <bpmn:timerEventDefinition id="late_timer">
        <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">open('/etc/passwd').read()</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f_late" sourceRef="late" targetRef="end" />""")
    assert summary(refused(xml)) == {("late", "safe-expression")}


def test_unsafe_multi_instance_expressions_are_refused():
    xml = process(f"""<bpmn:userTask id="step">
      <bpmn:multiInstanceLoopCharacteristics isSequential="true">
        <bpmn:loopCardinality>().__class__</bpmn:loopCardinality>
        <bpmn:completionCondition>globals()</bpmn:completionCondition>
      </bpmn:multiInstanceLoopCharacteristics>
    </bpmn:userTask>{TO_END}""")
    findings = refused(xml)
    assert summary(findings) == {("step", "safe-expression")}
    assert len(findings) == 2


def test_escalation_timer_expression_is_accepted():
    xml = process(f"""<bpmn:userTask id="step" />{TO_END}
    <bpmn:boundaryEvent id="late" attachedToRef="step" cancelActivity="true">
      <bpmn:timerEventDefinition id="late_timer">
        <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">escalation["accept_tier1"]</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f_late" sourceRef="late" targetRef="end" />""")
    parse_bundle(Bundle("p", {"x.bpmn": xml}), operations())


# --------------------------------------------------------------------------------------------------
# Service tasks call registered operations only
# --------------------------------------------------------------------------------------------------


def service_task(operation: str, parameter_value: str = "urgency") -> str:
    return process(f"""<bpmn:serviceTask id="step">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="{operation}" resultVariable="result">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="urgency" type="str" value="{parameter_value}" />
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
    </bpmn:serviceTask>{TO_END}""")


def test_service_task_with_unregistered_operation_is_refused():
    findings = refused(service_task("os.system"), operations("telerad.priority"))
    assert summary(findings) == {("step", "service-operation")}
    assert "« os.system » n'existe pas" in findings[0].message
    assert "telerad.priority" in findings[0].message  # the operations that can be chosen instead


def test_service_task_with_registered_operation_is_accepted():
    parsed = parse_bundle(Bundle("p", {"x.bpmn": service_task("telerad.priority")}),
                          operations("telerad.priority"))
    assert parsed.bundle.process_id == "p"


def test_service_task_parameter_is_an_expression_and_is_checked():
    xml = service_task("telerad.priority", parameter_value="open(&apos;/etc/passwd&apos;)")
    findings = refused(xml, operations("telerad.priority"))
    assert summary(findings) == {("step", "safe-expression")}
    assert "le paramètre « urgency »" in findings[0].message and "appel de fonction" in findings[0].message


# --------------------------------------------------------------------------------------------------
# Hostile XML
# --------------------------------------------------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="http://t">
  <bpmn:process id="p" name="&lol9;" isExecutable="true"><bpmn:startEvent id="s" /></bpmn:process>
</bpmn:definitions>"""


def xxe(system_id: str) -> str:
    return f"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY leak SYSTEM "{system_id}">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="http://t">
  <bpmn:process id="p" isExecutable="true"><bpmn:documentation>&leak;</bpmn:documentation></bpmn:process>
</bpmn:definitions>"""


def external_dtd(system_id: str) -> str:
    return f"""<?xml version="1.0"?>
<!DOCTYPE bpmn:definitions SYSTEM "{system_id}">
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="http://t" />"""


def test_billion_laughs_is_refused_without_expanding():
    tracemalloc.start()
    try:
        findings = refused(BILLION_LAUGHS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # libxml2's amplification guard stops this one while parsing ("xml.syntax"); either way it is refused
    # and the 10**9 'lol's are never built.
    assert [f.rule for f in findings] in (["xml.dtd"], ["xml.syntax"])
    assert peak < 10_000_000


def test_entity_declarations_are_refused():
    small = BILLION_LAUGHS.replace("&lol9;", "&lol2;")
    assert [(f.rule, f.file) for f in refused(small)] == [("xml.dtd", "x.bpmn")]


def test_xxe_is_refused_without_leaking_the_file(tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-42", encoding="utf-8")
    findings = refused(xxe(secret.as_uri()))
    assert [f.rule for f in findings] == ["xml.dtd"]
    assert all("TOP-SECRET-42" not in f.message for f in findings)


@contextlib.contextmanager
def fifo_trap(tmp_path: Path):
    """A named pipe: whoever opens it for reading blocks until a writer comes, so an XML parser that
    tried to fetch it would hang instead of returning. Unblock any such reader on the way out."""
    path = tmp_path / "trap"
    os.mkfifo(path)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):  # ENXIO: nobody is reading, as it should be
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)


def run_briefly(function: Callable[[], Any], seconds: float = 5.0) -> dict[str, Any]:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = function()
        except BaseException as err:  # reported to the test
            outcome["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    outcome["blocked"] = thread.is_alive()
    return outcome


@pytest.mark.parametrize("document", [xxe, external_dtd], ids=["external-entity", "external-dtd"])
def test_external_resources_are_never_opened(tmp_path: Path, document):
    """Stronger than checking the refusal: the parser itself never opens the entity or DTD."""
    with fifo_trap(tmp_path) as trap:
        outcome = run_briefly(lambda: read_xml(document(trap.as_uri()), "x.bpmn"))
    assert not outcome["blocked"], "the XML parser opened an external resource"
    assert isinstance(outcome.get("error"), DefinitionRefused)
    assert [f.rule for f in outcome["error"].findings] == ["xml.dtd"]


def test_any_doctype_is_refused_even_without_entities():
    xml = '<?xml version="1.0"?><!DOCTYPE d><d xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"/>'
    assert [f.rule for f in refused(xml)] == ["xml.dtd"]


@pytest.mark.parametrize("text", ["<bpmn:definitions", "<a><b></a>", "", "not xml at all"],
                         ids=["truncated", "mismatched", "empty", "text"])
def test_malformed_xml_is_refused(text):
    findings = refused(text)
    assert [(f.rule, f.file) for f in findings] == [("xml.syntax", "x.bpmn")]


def test_oversized_file_is_refused_before_parsing():
    findings = refused(" " * (MAX_DIAGRAM_BYTES + 1))
    assert [(f.rule, f.file) for f in findings] == [("xml.size", "x.bpmn")]


def test_size_limit_counts_bytes_not_characters():
    text = "é" * (MAX_DIAGRAM_BYTES // 2 + 1)  # fewer characters than the limit, more bytes
    assert len(text) < MAX_DIAGRAM_BYTES
    assert [f.rule for f in refused(text)] == ["xml.size"]


def test_document_that_is_neither_bpmn_nor_dmn_is_refused():
    findings = refused('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" />')
    assert [(f.rule, f.file) for f in findings] == [("xml.kind", "x.bpmn")]


# --------------------------------------------------------------------------------------------------
# A valid diagram
# --------------------------------------------------------------------------------------------------

VALID = process("""<bpmn:userTask id="step" name="Review">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="formJsonSchemaFilename" value="test_submit.schema.json" />
        </spiffworkflow:properties>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f_gw" sourceRef="step" targetRef="gw" />
    <bpmn:exclusiveGateway id="gw" default="f_default" />
    <bpmn:sequenceFlow id="f_cond" sourceRef="gw" targetRef="end">
      <bpmn:conditionExpression>accepted == True and modality in ("CT", "MR")</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_default" sourceRef="gw" targetRef="end" />""")


def test_valid_diagram_is_accepted():
    parsed = parse_bundle(Bundle("p", {"x.bpmn": VALID}), operations())
    assert parsed.spec.name == "p"
    assert "step" in {spec.bpmn_id for spec in parsed.spec.task_specs.values()}


def test_shipped_test_diagrams_are_accepted():
    data = Path(__file__).parents[1] / "data" / "bpmn"
    files = {path.name: path.read_text(encoding="utf-8") for path in sorted(data.glob("*.bpmn"))}
    parsed = parse_bundle(Bundle("engine_flow", files), operations("test.priority"))
    assert "engine_ack" in parsed.subprocess_specs


# --------------------------------------------------------------------------------------------------
# Library -> bundles, content hash
# --------------------------------------------------------------------------------------------------

CALLED = f"""{HEADER}  <bpmn:process id="sub" isExecutable="true">
    <bpmn:startEvent id="sub_start" />
    <bpmn:sequenceFlow id="sub_f1" sourceRef="sub_start" targetRef="sub_task" />
    <bpmn:userTask id="sub_task" />
    <bpmn:sequenceFlow id="sub_f2" sourceRef="sub_task" targetRef="sub_end" />
    <bpmn:endEvent id="sub_end" />
  </bpmn:process>
</bpmn:definitions>"""
MAIN = process(f'<bpmn:callActivity id="step" calledElement="sub" />{TO_END}', process_id="main")
OTHER = process(f'<bpmn:userTask id="step" />{TO_END}', process_id="other")
LIBRARY = {"main.bpmn": MAIN, "sub.bpmn": CALLED, "other.bpmn": OTHER}


def test_library_bundles_carry_called_processes_with_their_callers():
    bundles = {b.process_id: b for b in bundles_from_library(LIBRARY)}
    assert set(bundles) == {"main", "other"}  # 'sub' is called, so it is no bundle of its own
    assert set(bundles["main"].files) == {"main.bpmn", "sub.bpmn"}
    assert bundles["main"].files["sub.bpmn"] == CALLED
    assert set(bundles["other"].files) == {"other.bpmn"}


def test_library_bundle_parses_with_its_subprocess():
    (main,) = [b for b in bundles_from_library(LIBRARY) if b.process_id == "main"]
    parsed = parse_bundle(main, operations())
    assert set(parsed.subprocess_specs) == {"sub"}


def test_library_refuses_hostile_xml_in_any_file():
    with pytest.raises(DefinitionRefused) as caught:
        bundles_from_library({**LIBRARY, "evil.bpmn": xxe("file:///etc/passwd")})
    assert [(f.rule, f.file) for f in caught.value.findings] == [("xml.dtd", "evil.bpmn")]


def test_content_hash_is_stable_for_equal_content():
    first = Bundle("main", {"main.bpmn": MAIN, "sub.bpmn": CALLED})
    second = Bundle("main", {"sub.bpmn": CALLED, "main.bpmn": MAIN})  # same files, other order
    assert first.content_hash == second.content_hash
    assert len(first.content_hash) == 64
    assert Bundle.from_json(first.to_json()).content_hash == first.content_hash


def test_content_hash_changes_when_one_byte_changes():
    base = Bundle("main", {"main.bpmn": MAIN, "sub.bpmn": CALLED})
    changed = CALLED.replace('id="sub_task"', 'id="sub_tasK"')
    assert len(changed) == len(CALLED)
    assert Bundle("main", {"main.bpmn": MAIN, "sub.bpmn": changed}).content_hash != base.content_hash
    assert Bundle("other", dict(base.files)).content_hash != base.content_hash
    assert Bundle("main", {"main2.bpmn": MAIN, "sub.bpmn": CALLED}).content_hash != base.content_hash


# --------------------------------------------------------------------------------------------------
# DMN cells (Python expressions)
# --------------------------------------------------------------------------------------------------

RULE_TASK = process("""<bpmn:businessRuleTask id="step">
      <bpmn:extensionElements>
        <spiffworkflow:calledDecisionId>route</spiffworkflow:calledDecisionId>
      </bpmn:extensionElements>
    </bpmn:businessRuleTask>""" + TO_END)


def dmn(input_cell: str, output_cell: str, input_expression: str = "modality") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="route_defs" name="Route"
             namespace="http://telerad.example/tests">
  <decision id="route" name="Route">
    <decisionTable id="route_table" hitPolicy="UNIQUE">
      <input id="in_modality" label="Modality">
        <inputExpression id="in_modality_expr" typeRef="string"><text>{input_expression}</text></inputExpression>
      </input>
      <output id="out_tier" label="Tier" name="tier" typeRef="string" />
      <rule id="r1">
        <inputEntry id="r1_in"><text>{input_cell}</text></inputEntry>
        <outputEntry id="r1_out"><text>{output_cell}</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
</definitions>"""


def test_library_bundle_includes_the_decision_table_it_calls():
    (bundle,) = bundles_from_library({"main.bpmn": RULE_TASK, "route.dmn": dmn('"CT"', '"tier1"')})
    assert set(bundle.files) == {"main.bpmn", "route.dmn"}


def test_safe_decision_table_is_accepted():
    parse_bundle(Bundle("p", {"x.bpmn": RULE_TASK, "route.dmn": dmn('? in ("CT", "MR")', '"tier1"')}),
                 operations())


@pytest.mark.parametrize(
    ("input_cell", "output_cell", "input_expression"),
    [('"CT"', "__import__('os')", "modality"), ("().__class__", '"x"', "modality"),
     ('"CT"', '"x"', "().__class__")],
    ids=["output-cell", "input-cell", "input-expression"],
)
def test_unsafe_decision_table_cell_is_refused(input_cell, output_cell, input_expression):
    findings = refused({"x.bpmn": RULE_TASK, "route.dmn": dmn(input_cell, output_cell, input_expression)})
    assert summary(findings) == {("step", "safe-expression")}
