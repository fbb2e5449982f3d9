"""`telerad validate`: findings with element id, rule and message; errors exit non-zero."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from engine.runtime.layout import layout
from web.cli.main import main
from web.config import PROJECT_ROOT

HEADER = ('<?xml version="1.0" encoding="UTF-8"?>\n'
          '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
          'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">')


def diagram(body: str, lanes: str = "") -> str:
    process = f'<bpmn:process id="p" isExecutable="true">{lanes}{body}</bpmn:process>'
    return layout(f"{HEADER}{process}</bpmn:definitions>")


def run(tmp_path, *texts: tuple[str, str]):
    paths = []
    for name, text in texts:
        (tmp_path / name).write_text(text, encoding="utf-8")
        paths.append(str(tmp_path / name))
    result = CliRunner().invoke(main, ["validate", "--json", *paths])
    return result.exit_code, {f["file"]: f for f in json.loads(result.output)["files"]}


LANE = ('<bpmn:laneSet id="ls"><bpmn:lane id="l" name="Médecin"><bpmn:extensionElements><spiffworkflow:properties>'
        '<spiffworkflow:property name="role" value="{role}"/></spiffworkflow:properties></bpmn:extensionElements>'
        '{refs}</bpmn:lane></bpmn:laneSet>')


def refs(*ids: str) -> str:
    return "".join(f"<bpmn:flowNodeRef>{i}</bpmn:flowNodeRef>" for i in ids)


def user_task(task_id: str, form: str = "td_more_info.schema.json") -> str:
    return (f'<bpmn:userTask id="{task_id}"><bpmn:extensionElements><spiffworkflow:properties>'
            f'<spiffworkflow:property name="formJsonSchemaFilename" value="{form}"/></spiffworkflow:properties>'
            f'</bpmn:extensionElements></bpmn:userTask>')


def test_shipped_diagrams_are_valid(tmp_path):
    for path in (PROJECT_ROOT / "workflows" / "bpmn").iterdir():
        shutil.copy(path, tmp_path / path.name)
    result = CliRunner().invoke(main, ["validate", "--json", *[str(p) for p in sorted(tmp_path.iterdir())]])
    report = json.loads(result.output)
    assert result.exit_code == 0 and all(not f["errors"] for f in report["files"]), result.output


def test_script_task_unknown_role_missing_form_and_bad_timers_are_errors_naming_the_element(tmp_path):
    body = ('<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="ask"/>'
            + user_task("ask", "nope.schema.json") +
            '<bpmn:boundaryEvent id="late" attachedToRef="ask"><bpmn:timerEventDefinition id="td">'
            '<bpmn:timeDuration>"PT0S"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>'
            '<bpmn:sequenceFlow id="f2" sourceRef="ask" targetRef="code"/>'
            '<bpmn:scriptTask id="code"><bpmn:script>import os</bpmn:script></bpmn:scriptTask>'
            '<bpmn:sequenceFlow id="f3" sourceRef="code" targetRef="e"/><bpmn:endEvent id="e"/>'
            '<bpmn:sequenceFlow id="f4" sourceRef="late" targetRef="e"/>')
    xml = diagram(body, LANE.format(role="janitor", refs=refs("s", "ask", "late", "code", "e")))
    code, files = run(tmp_path, ("bad.bpmn", xml))
    errors = {(e["element_id"], e["rule"]) for e in files["bad.bpmn"]["errors"]}
    assert code == 1
    assert {("ask", "lane-role"), ("ask", "form"), ("late", "timer")} <= errors
    messages = {(e["element_id"], e["rule"]): e["message"] for e in files["bad.bpmn"]["errors"]}
    assert "Le couloir « Médecin » ne correspond à aucun rôle connu" in messages["ask", "lane-role"]
    assert "Le formulaire « nope.schema.json » n'existe pas" in messages["ask", "form"]
    assert "Le délai « PT0S » n'est pas valide" in messages["late", "timer"]
    assert messages["code", "no-script"].startswith("Tâche de script interdite")


def test_unknown_escalation_setting_and_missing_di_and_unsound_paths(tmp_path):
    body = ('<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="ask"/>' + user_task("ask") +
            '<bpmn:boundaryEvent id="late" attachedToRef="ask"><bpmn:timerEventDefinition id="td">'
            '<bpmn:timeDuration>escalation["coffee"]</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>'
            '<bpmn:sequenceFlow id="f2" sourceRef="ask" targetRef="e"/><bpmn:endEvent id="e"/>'
            '<bpmn:task id="orphan"/><bpmn:sequenceFlow id="f4" sourceRef="late" targetRef="stuck"/>'
            '<bpmn:task id="stuck"/>')
    xml = diagram(body, LANE.format(role="requester", refs=refs("s", "ask", "late", "e", "orphan", "stuck")))
    xml_without_di = xml[:xml.index("<bpmndi:BPMNDiagram")] + "</bpmn:definitions>\n"
    code, files = run(tmp_path, ("unsound.bpmn", xml), ("nodi.bpmn", xml_without_di))
    timer = {(e["element_id"], e["rule"]): e["message"] for e in files["unsound.bpmn"]["errors"]}["late", "timer"]
    assert "Le délai d'escalade « coffee » n'existe pas" in timer and "accept_tier1" in timer
    warnings = {(w["element_id"], w["rule"]): w["message"] for w in files["unsound.bpmn"]["warnings"]}
    assert "il ne sera jamais exécuté" in warnings["orphan", "soundness.unreachable"]
    assert "ne se terminerait jamais" in warnings["stuck", "soundness.no-end"]
    assert any(e["rule"] == "di" and e["element_id"] == "ask" and "n'est pas dessiné" in e["message"]
               for e in files["nodi.bpmn"]["errors"])
    assert code == 1


def test_foreign_or_broken_files_give_findings_not_a_crash(tmp_path):
    camunda = ('<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/'
               '20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="t">'
               '<bpmn:process id="c" isExecutable="true"><bpmn:startEvent id="s"/>'
               '<bpmn:sequenceFlow id="f" sourceRef="s" targetRef="u"/>'
               '<bpmn:userTask id="u" camunda:assignee="demo"/></bpmn:process></bpmn:definitions>')
    code, files = run(tmp_path, ("camunda.bpmn", camunda), ("broken.bpmn", "<bpmn:definitions"))
    assert code == 1
    assert {e["rule"] for e in files["broken.bpmn"]["errors"]} == {"xml.syntax"}
    assert files["broken.bpmn"]["errors"][0]["message"].startswith("Le fichier n'est pas un XML bien formé")
    rules = {(e["element_id"], e["rule"]) for e in files["camunda.bpmn"]["errors"]}
    assert ("u", "lane-role") in rules and ("u", "form") in rules
    assert all(set(e) == {"element_id", "rule", "message"} for e in files["camunda.bpmn"]["errors"])


def _evil_diagram() -> str:
    """A sound diagram whose gateway condition calls __import__ and whose service task names no operation."""
    body = ('<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="ask"/>' + user_task("ask") +
            '<bpmn:sequenceFlow id="f2" sourceRef="ask" targetRef="svc"/>'
            '<bpmn:serviceTask id="svc"><bpmn:extensionElements><spiffworkflow:serviceTaskOperator id="no.such.op" '
            'resultVariable="r"><spiffworkflow:parameters/></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>'
            '</bpmn:serviceTask>'
            '<bpmn:sequenceFlow id="f3" sourceRef="svc" targetRef="g"/>'
            '<bpmn:exclusiveGateway id="g" default="f5"/>'
            '<bpmn:sequenceFlow id="f4" sourceRef="g" targetRef="e"><bpmn:conditionExpression>'
            '__import__("os").system("id") == 0</bpmn:conditionExpression></bpmn:sequenceFlow>'
            '<bpmn:sequenceFlow id="f5" sourceRef="g" targetRef="e"/><bpmn:endEvent id="e"/>')
    return diagram(body, LANE.format(role="requester", refs=refs("s", "ask", "svc", "g", "e")))


def test_every_file_gets_every_check_even_beside_a_broken_neighbour(tmp_path):
    """Issue 16: a file calling __import__ was reported with 0 errors when a file of its folder was broken."""
    alone_dir, beside_dir = tmp_path / "alone", tmp_path / "beside"
    alone_dir.mkdir()
    beside_dir.mkdir()
    _, alone = run(alone_dir, ("evil.bpmn", _evil_diagram()))
    code, beside = run(beside_dir, ("broken.bpmn", "<bpmn:definitions"), ("evil.bpmn", _evil_diagram()),
                       ("camunda.dmn", "<definitions xmlns='https://www.omg.org/spec/DMN/20191111/MODEL/'/>"))
    assert code == 1
    assert {(e["element_id"], e["rule"]) for e in beside["evil.bpmn"]["errors"]} == {
        ("g", "safe-expression"), ("svc", "service-operation")}
    assert any("__import__" in e["message"] for e in beside["evil.bpmn"]["errors"])
    assert beside["evil.bpmn"]["errors"] == alone["evil.bpmn"]["errors"]
    assert {e["rule"] for e in beside["broken.bpmn"]["errors"]} == {"xml.syntax"}


def test_a_file_with_an_error_of_its_own_still_gets_its_expression_and_operation_checks(tmp_path):
    janitor = _evil_diagram().replace('value="requester"', 'value="janitor"')
    _, files = run(tmp_path, ("evil.bpmn", janitor))
    assert {(e["element_id"], e["rule"]) for e in files["evil.bpmn"]["errors"]} == {
        ("ask", "lane-role"), ("g", "safe-expression"), ("svc", "service-operation")}
