"""Deployment-time charter checks: path analysis over charter diagrams (engine.runtime.charter_paths).

The diagrams of tests/data/bpmn/charter/ are copies of the shipped ones, tagged with charter roles; each
DEFEATED variant changes them in one way that breaks an invariant, and must be refused naming the rule id
and the element.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from engine.ports import InMemoryDirectory, SystemClock
from engine.runtime import OperationRegistry
from engine.runtime.charter_domains import Domains
from engine.runtime.charter_paths import check_charter
from engine.runtime.validation import validate_library
from engine.runtime.xml import read_xml
from engine.services.bootstrap import default_operations
from forms import default_registry
from tests.conftest import DATA

CHARTER = DATA / "bpmn" / "charter"
# a designer's "vital emergency: straight to acquisition" flow, after the protocol and its facts
SHORTCUT_FLOW = ('<bpmn:sequenceFlow id="f_shortcut" name="urgence vitale" sourceRef="final_pregnancy_known" '
                 'targetRef="acquisition_merge"><bpmn:conditionExpression>urgency == "vital"'
                 '</bpmn:conditionExpression></bpmn:sequenceFlow>\n    <bpmn:sequenceFlow id="f_final_pregnancy_ok"')
SHORTCUT_DI = ('<bpmndi:BPMNEdge id="f_shortcut_di" bpmnElement="f_shortcut"><di:waypoint x="3920" y="647"/>'
               '<di:waypoint x="4560" y="313"/></bpmndi:BPMNEdge>\n'
               '      <bpmndi:BPMNEdge id="f_protocol_facts_pregnancy_di"')

# name -> (edits (file, old, new), findings that must be among the errors (rule, element id, file))
VARIANTS: dict[str, tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]] = {
    "contrast_gateway_never_true": (
        [("telediagnosis.bpmn", 'protocol_facts["contrast"] == True</bpmn:conditionExpression>',
          "contrast_agent == True</bpmn:conditionExpression>")],
        [("CH-4.1.10", "f_contrast_yes", "telediagnosis.bpmn")]),
    "refusal_condition_outside_the_enum": (
        [("telediagnosis.bpmn", 'justification == "refuse"', 'justification == "refused"')],
        [("CH-1.2", "f_refuse_request", "telediagnosis.bpmn")]),
    "presence_attestation_removed": (
        [("contrast_safety.bpmn", 'sourceRef="cs_inject" targetRef="attest_physician_presence"',
          'sourceRef="cs_inject" targetRef="record_injection"')],
        [("CH-4.1.10", "record_injection", "contrast_safety.bpmn"),
         ("CH-4.1.10", "acquire_images", "telediagnosis.bpmn")]),
    "shortcut_from_protocol_to_acquisition": (
        [("telediagnosis.bpmn", '<bpmn:sequenceFlow id="f_final_pregnancy_ok"', SHORTCUT_FLOW),
         ("telediagnosis.bpmn", '<bpmndi:BPMNEdge id="f_protocol_facts_pregnancy_di"', SHORTCUT_DI)],
        [("CH-4.1.10", "acquire_images", "telediagnosis.bpmn")]),
    "identity_check_removed": (
        [("telediagnosis.bpmn", 'sourceRef="inform_patient" targetRef="check_identity"',
          'sourceRef="inform_patient" targetRef="justify_merge"')],
        [("CH-4.1.6", "acquire_images", "telediagnosis.bpmn"), ("CH-4.1.6", "telediagnosis", "telediagnosis.bpmn")]),
    "end_without_release_or_refusal": (
        [("telediagnosis.bpmn", 'sourceRef="justification_outcome" targetRef="call_refusal_on_request"',
          'sourceRef="justification_outcome" targetRef="end_refused"')],
        [("CH-1.2", "end_refused", "telediagnosis.bpmn")]),
    "local_end_without_local_handling": (
        [("telediagnosis.bpmn", 'sourceRef="alert_outcome" targetRef="open_routing"',
          'sourceRef="alert_outcome" targetRef="end_handled_locally"')],
        [("CH-1.2", "end_handled_locally", "telediagnosis.bpmn")]),
    "required_role_removed": (
        [("telediagnosis.bpmn", '<spiffworkflow:property name="charterRole" value="report_release"/>', "")],
        [("CH-1.2", "telediagnosis", "telediagnosis.bpmn"),
         ("CH-1.2", "end_report_acknowledged", "telediagnosis.bpmn")]),
    "called_process_lost_its_role": (
        [("contrast_safety.bpmn", '<spiffworkflow:property name="charterRole" value="presence_attestation"/>', "")],
        [("CH-4.1.10", "record_injection", "contrast_safety.bpmn"),
         ("CH-4.1.10", "acquire_images", "telediagnosis.bpmn")]),
}


def charter_files() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(CHARTER.iterdir()) if p.suffix in (".bpmn", ".dmn")}


def defeated(name: str) -> dict[str, str]:
    files = charter_files()
    for file, old, new in VARIANTS[name][0]:
        assert files[file].count(old) == 1, f"{name}: {old!r} is not once in {file}"
        files[file] = files[file].replace(old, new)
    return files


def write_variant(name: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for file, text in defeated(name).items():
        (folder / file).write_text(text, encoding="utf-8")
    return folder


def operations() -> OperationRegistry:
    return default_operations(InMemoryDirectory(), SystemClock())


def analyse(files: dict[str, str], process_id: str = "telediagnosis"):
    return check_charter(files, process_id, operations(), default_registry().schema)


def found(findings) -> set[tuple[str, str, str]]:
    return {(f.rule, f.element_id, f.file) for f in findings}


def test_the_tagged_diagrams_pass_with_no_finding():
    for process_id in ("telediagnosis", "teleexpertise"):
        report = analyse(charter_files(), process_id)
        assert [(f.rule, f.element_id, f.message) for f in report.errors] == []
        assert all(f.rule == "condition.dead" for f in report.warnings)
    # the overdue branch of a non-interrupting timer ends without release: a side branch does not end the case
    assert "end_overdue_handled" not in {f.element_id for f in analyse(charter_files()).errors}


@pytest.mark.charter("CH-4.1.12", negative=True)
def test_a_waiting_step_without_a_due_time_is_refused():
    files = charter_files()
    text = files["telediagnosis.bpmn"]
    start = text.index('<bpmn:boundaryEvent id="check_identity_due"')
    end = text.index("</bpmn:boundaryEvent>", start) + len("</bpmn:boundaryEvent>")
    files["telediagnosis.bpmn"] = text[:start] + text[end:]
    report = analyse(files)
    assert ("CH-4.1.12", "check_identity", "telediagnosis.bpmn") in found(report.errors)
    # interpret has a (non-interrupting) report timer: it is not a waiting state without due time
    assert "interpret" not in {f.element_id for f in report.errors}


@pytest.mark.charter("CH-1.2", negative=True)
@pytest.mark.charter("CH-4.1.6", negative=True)
@pytest.mark.charter("CH-4.1.10", negative=True)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_defeated_telediagnosis_is_refused_naming_rule_and_element(variant):
    report = analyse(defeated(variant))
    assert set(VARIANTS[variant][1]) <= found(report.errors), [(f.rule, f.element_id) for f in report.errors]
    for finding in report.errors:
        assert finding.message and "CH-" not in finding.message  # French, no internal code in the message


@pytest.mark.charter("CH-1.2", negative=True)
@pytest.mark.charter("CH-4.1.6", negative=True)
@pytest.mark.charter("CH-4.1.10", negative=True)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_telerad_validation_reports_the_charter_errors_in_their_file(variant):
    registry = default_registry()
    reports = {r.file: r for r in validate_library(defeated(variant), operations(), registry.exists)}
    for rule, element, file in VARIANTS[variant][1]:
        assert (rule, element) in {(f.rule, f.element_id) for f in reports[file].errors}


@pytest.mark.charter("CH-4.1.10", negative=True)
def test_a_shortcut_message_shows_the_path_taken():
    report = analyse(defeated("shortcut_from_protocol_to_acquisition"))
    finding = next(f for f in report.errors if f.element_id == "acquire_images")
    assert ("« Choisir le protocole » → « Radioprotection du protocole retenu » → « Réaliser l'acquisition"
            in finding.message)


@pytest.mark.charter("CH-4.1.10", negative=True)
def test_the_contraindication_loop_back_to_the_protocol_is_not_a_path_to_acquisition():
    """After a change of protocol decided in contrast_safety, the case goes back to the protocol choice: the
    default flow to acquisition cannot follow `contrast_outcome == "change_protocol"` (same value)."""
    files = charter_files()
    assert not [f for f in analyse(files).errors if f.element_id == "acquire_images"]
    # the same diagram, where the caller's gateway no longer looks at the outcome: acquisition without presence
    files["telediagnosis.bpmn"] = files["telediagnosis.bpmn"].replace(
        'contrast_outcome == "change_protocol"', 'contrast_decision == "contraindicated"')
    assert ("CH-4.1.10", "acquire_images", "telediagnosis.bpmn") in found(analyse(files).errors)


def test_a_process_outside_the_charter_families_is_not_analysed():
    files = {"flow.bpmn": (DATA / "bpmn" / "engine_flow.bpmn").read_text(encoding="utf-8")}
    report = check_charter(files, "engine_flow", operations(), default_registry().schema)
    assert report.errors == [] and report.warnings == []


@pytest.mark.charter("CH-4.1.9", negative=True)
def test_an_unknown_charter_role_is_an_error():
    files = charter_files()
    files["telediagnosis.bpmn"] = files["telediagnosis.bpmn"].replace('value="protocol"/>', 'value="protocole"/>', 1)
    errors = found(analyse(files).errors)
    assert ("charter.role", "choose_protocol", "telediagnosis.bpmn") in errors
    assert ("CH-4.1.9", "telediagnosis", "telediagnosis.bpmn") in errors


# ------------------------------------------------------------------------------------------ domains


def domains(operations_registry: OperationRegistry | None = None) -> Domains:
    roots = {name: read_xml(text, name) for name, text in charter_files().items()}
    return Domains(roots, operations_registry or operations(), default_registry().schema)


def cond(text: str) -> ast.expr:
    return ast.parse(text, mode="eval").body


@pytest.mark.parametrize(("condition", "possible"), [
    ('justification == "more_info"', True),          # enum of td_justify
    ('justification == "validatee"', False),         # not in the enum
    ('justification in ("refuse", "more_info")', True),
    ('justification not in ("validate", "modify", "substitute", "more_info", "refuse")', False),
    ("urgent_finding == True", True),                 # boolean field of td_report
    ("urgent_finding == 'yes'", False),
    ("contrast_agent == True", False),                # produced by nothing
    ("not (contrast_agent == True)", False),          # reading it fails: never true either
    ("pregnancy_block == True", True),                # DMN output entries
    ("pregnancy_block == 'maybe'", False),
    ('offer["candidates"] == [] and offer["exhausted"] == False', True),  # operation result, undeclared
    ("expert_id == local_radiologist_id", True),      # two open values: not understood, possible
    ('site_id == "ch-brest"', True),                  # start data: anything
    ('justification == "refuse" and justification == "more_info"', False),
    ("urgent_finding > 3", True),                     # outside the understood language: possible
])
def test_condition_satisfiability_over_value_domains(condition, possible):
    assert domains().satisfiable([cond(condition)]) is possible


def test_declared_result_domains_of_an_operation_bound_its_conditions():
    registry, undeclared = OperationRegistry(), OperationRegistry()
    for name in operations().names():
        undeclared.register(name, lambda **kw: {})
        if name == "telerad.protocol_facts":
            registry.register(name, lambda **kw: {}, result_domains={"contrast": (True, False)})
        elif name == "telerad.contrast_outcome":
            registry.register(name, lambda **kw: "", result_values=("inject", "change_protocol"))
        else:
            registry.register(name, lambda **kw: {})
    assert registry.result_domains("telerad.protocol_facts") == {"contrast": (True, False)}
    assert registry.result_values("telerad.contrast_outcome") == ("inject", "change_protocol")
    known = domains(registry)
    assert known.satisfiable([cond('protocol_facts["contrast"] == True')])
    assert not known.satisfiable([cond('protocol_facts["contrast"] == "yes"')])
    assert known.satisfiable([cond('protocol_facts["modality"] == "CT"')])  # undeclared key: anything
    assert not known.satisfiable([cond('contrast_outcome == "cancel"')])
    assert domains(undeclared).satisfiable([cond('protocol_facts["contrast"] == "yes"')])  # nothing declared


def test_shipped_folder_copy_is_current_enough_to_be_a_fixture(tmp_path):
    """The fixture is a copy: it stays valid on its own (parse, forms, operations), whatever the lead changes."""
    for path in CHARTER.iterdir():
        shutil.copy(path, tmp_path / path.name)
    reports = validate_library(charter_files(), operations(), default_registry().exists)
    assert [(r.file, f.rule, f.element_id) for r in reports for f in r.errors] == []


SIDE_BRANCH = ('<bpmn:boundaryEvent id="cs_late" cancelActivity="false" '
               'attachedToRef="check_contraindications_requester">'
               '<bpmn:timerEventDefinition><bpmn:timeDuration>"PT1H"</bpmn:timeDuration></bpmn:timerEventDefinition>'
               '</bpmn:boundaryEvent><bpmn:sequenceFlow id="cs_late_flow" sourceRef="cs_late" targetRef="cs_late_end"/>'
               '<bpmn:endEvent id="cs_late_end"/>\n    <bpmn:sequenceFlow id="cs_f_requester_join"')


def test_a_side_branch_ending_inside_a_called_process_does_not_complete_the_call():
    """A non-interrupting timer's branch that ends in contrast_safety leaves the main token there: the case
    does not go on to acquisition through it (and the timer is the waiting task's due time)."""
    files = charter_files()
    files["contrast_safety.bpmn"] = files["contrast_safety.bpmn"].replace(
        '<bpmn:sequenceFlow id="cs_f_requester_join"', SIDE_BRANCH, 1)
    report = analyse(files)
    assert report.errors == []
    assert "check_contraindications_requester" not in {f.element_id for f in report.warnings}
    # an interrupting timer on the presence attestation: cancelled, the call completes without it
    files["contrast_safety.bpmn"] = files["contrast_safety.bpmn"].replace(
        'cancelActivity="false" attachedToRef="check_contraindications_requester"',
        'attachedToRef="attest_physician_presence"', 1)
    assert ("CH-4.1.10", "acquire_images", "telediagnosis.bpmn") in found(analyse(files).errors)


@pytest.mark.charter("CH-4.1.2", negative=True)
@pytest.mark.charter("CH-4.1.3", negative=True)
@pytest.mark.charter("CH-4.1.6", negative=True)
@pytest.mark.charter("CH-4.1.7", negative=True)
@pytest.mark.charter("CH-4.1.9", negative=True)
@pytest.mark.parametrize(("role", "rule"), [("identity_check", "CH-4.1.6"), ("consent", "CH-4.1.7"),
                                            ("justification", "CH-4.1.2"), ("radioprotection", "CH-4.1.3"),
                                            ("protocol", "CH-4.1.9")])
def test_acquisition_without_each_step_required_before_it_is_refused(role, rule):
    files = charter_files()
    tag = f'<spiffworkflow:property name="charterRole" value="{role}"/>'
    assert tag in files["telediagnosis.bpmn"]
    files["telediagnosis.bpmn"] = files["telediagnosis.bpmn"].replace(tag, "")
    errors = found(analyse(files).errors)
    assert {(rule, "acquire_images", "telediagnosis.bpmn"), (rule, "telediagnosis", "telediagnosis.bpmn")} <= errors


@pytest.mark.charter("CH-4.1.13", negative=True)
def test_a_poor_prognosis_gateway_that_can_never_be_true_is_refused():
    files = charter_files()
    text = files["telediagnosis.bpmn"]
    files["telediagnosis.bpmn"] = text.replace("poor_prognosis == True", 'poor_prognosis == "oui"')
    finding = next(f for f in analyse(files).errors if f.element_id == "f_bad_news")
    assert finding.rule == "CH-4.1.13" and "« poor_prognosis » ne peut valoir que True, False" in finding.message


def test_a_presence_attestation_in_a_parallel_branch_covers_the_acquisition_after_the_join():
    """split -> (presence | difficulty briefing) -> join -> acquisition: every path passes the presence."""
    files = charter_files()
    text = files["telediagnosis.bpmn"]
    text = text.replace('sourceRef="contrast_needed" targetRef="call_contrast_safety"',
                        'sourceRef="contrast_needed" targetRef="split"')
    text = text.replace('<bpmn:sequenceFlow id="f_final_pregnancy_ok"', (
        '<bpmn:parallelGateway id="split"/><bpmn:parallelGateway id="join"/>'
        '<bpmn:sequenceFlow id="p1" sourceRef="split" targetRef="presence"/>'
        '<bpmn:sequenceFlow id="p2" sourceRef="split" targetRef="briefing"/>'
        '<bpmn:userTask id="presence"><bpmn:extensionElements><spiffworkflow:properties>'
        '<spiffworkflow:property name="charterRole" value="presence_attestation"/>'
        '<spiffworkflow:property name="formJsonSchemaFilename" value="cs_presence.schema.json"/>'
        '</spiffworkflow:properties></bpmn:extensionElements></bpmn:userTask><bpmn:userTask id="briefing"/>'
        '<bpmn:sequenceFlow id="p3" sourceRef="presence" targetRef="join"/>'
        '<bpmn:sequenceFlow id="p4" sourceRef="briefing" targetRef="join"/>'
        '<bpmn:sequenceFlow id="p5" sourceRef="join" targetRef="acquisition_merge"/>'
        '\n    <bpmn:sequenceFlow id="f_final_pregnancy_ok"'), 1)
    files["telediagnosis.bpmn"] = text
    assert [f for f in analyse(files).errors if f.rule == "CH-4.1.10"] == []
    # without the attestation in the branch: refused
    files["telediagnosis.bpmn"] = text.replace('targetRef="presence"/>', 'targetRef="briefing"/>')
    assert ("CH-4.1.10", "acquire_images", "telediagnosis.bpmn") in found(analyse(files).errors)


@pytest.mark.charter("CH-4.1.10", negative=True)
def test_a_diagram_too_complex_to_prove_is_refused(monkeypatch):
    monkeypatch.setattr("engine.runtime.charter_search.MAX_SEARCH_STATES", 3)
    errors = analyse(charter_files()).errors
    assert [(f.rule, f.element_id) for f in errors] == [("CH-4.1.10", "telediagnosis")]
    assert "trop complexe" in errors[0].message


EVENT_SUBPROCESS = (
    '<bpmn:subProcess id="on_message" triggeredByEvent="true"><bpmn:startEvent id="urgent_start">'
    '<bpmn:messageEventDefinition id="urgent_message"/></bpmn:startEvent>'
    '<bpmn:userTask id="hidden_acquisition"><bpmn:extensionElements><spiffworkflow:properties>'
    '<spiffworkflow:property name="charterRole" value="acquisition"/></spiffworkflow:properties>'
    '</bpmn:extensionElements></bpmn:userTask><bpmn:endEvent id="hidden_end"/>'
    '<bpmn:sequenceFlow id="h1" sourceRef="urgent_start" targetRef="hidden_acquisition"/>'
    '<bpmn:sequenceFlow id="h2" sourceRef="hidden_acquisition" targetRef="hidden_end"/></bpmn:subProcess>'
    '\n    <bpmn:sequenceFlow id="f_final_pregnancy_ok"')


@pytest.mark.charter("CH-1.2", negative=True)
@pytest.mark.charter("CH-4.1.6", negative=True)
def test_an_acquisition_hidden_in_an_event_subprocess_is_analysed():
    files = charter_files()
    files["telediagnosis.bpmn"] = files["telediagnosis.bpmn"].replace(
        '<bpmn:sequenceFlow id="f_final_pregnancy_ok"', EVENT_SUBPROCESS, 1)
    errors = found(analyse(files).errors)
    assert {("CH-4.1.6", "hidden_acquisition", "telediagnosis.bpmn"),
            ("CH-1.2", "hidden_end", "telediagnosis.bpmn")} <= errors
    # the same, inside the called contrast_safety: it can start only while the call runs
    files = charter_files()
    files["contrast_safety.bpmn"] = files["contrast_safety.bpmn"].replace(
        '<bpmn:sequenceFlow id="cs_f_requester_join"',
        EVENT_SUBPROCESS.replace("f_final_pregnancy_ok", "cs_f_requester_join"), 1)
    errors = found(analyse(files).errors)
    assert ("CH-4.1.10", "hidden_acquisition", "contrast_safety.bpmn") in errors
    assert ("CH-4.1.6", "hidden_acquisition", "contrast_safety.bpmn") not in errors


@pytest.mark.charter("CH-4.1.10", negative=True)
def test_a_link_event_shortcut_is_a_path_too():
    files = charter_files()
    files["telediagnosis.bpmn"] = files["telediagnosis.bpmn"].replace(
        'sourceRef="final_pregnancy_known" targetRef="contrast_needed"',
        'sourceRef="final_pregnancy_known" targetRef="jump"', 1).replace(
        '<bpmn:sequenceFlow id="f_final_pregnancy_ok"',
        '<bpmn:intermediateThrowEvent id="jump"><bpmn:linkEventDefinition name="go"/></bpmn:intermediateThrowEvent>'
        '<bpmn:intermediateCatchEvent id="landing"><bpmn:linkEventDefinition name="go"/></bpmn:intermediateCatchEvent>'
        '<bpmn:sequenceFlow id="f_landing" sourceRef="landing" targetRef="acquisition_merge"/>'
        '\n    <bpmn:sequenceFlow id="f_final_pregnancy_ok"', 1)
    report = analyse(files)
    assert ("CH-4.1.10", "acquire_images", "telediagnosis.bpmn") in found(report.errors)
    assert "landing" not in {f.element_id for f in report.warnings}  # a link is no waiting state


@pytest.mark.charter("CH-4.1.10", negative=True)
def test_protocol_facts_overwritten_by_a_form_prove_nothing():
    """A user task whose form writes `protocol_facts` between the facts and the contrast gateway: the gateway
    then reads what someone typed, not what the protocol implies."""
    files = charter_files()
    text = files["telediagnosis.bpmn"]
    files["telediagnosis.bpmn"] = text.replace(
        'sourceRef="final_pregnancy_known" targetRef="contrast_needed"',
        'sourceRef="final_pregnancy_known" targetRef="retype"', 1).replace(
        '<bpmn:sequenceFlow id="f_final_pregnancy_ok"',
        '<bpmn:userTask id="retype"><bpmn:extensionElements><spiffworkflow:properties>'
        '<spiffworkflow:property name="formJsonSchemaFilename" value="retype.schema.json"/>'
        '</spiffworkflow:properties></bpmn:extensionElements></bpmn:userTask>'
        '<bpmn:sequenceFlow id="f_retyped" sourceRef="retype" targetRef="contrast_needed"/>'
        '\n    <bpmn:sequenceFlow id="f_final_pregnancy_ok"', 1)
    registry = default_registry()

    def schema(key: str) -> dict:
        if key == "retype.schema.json":
            return {"type": "object", "required": ["protocol_facts"], "properties": {"protocol_facts": {
                "type": "object", "required": ["contrast"], "additionalProperties": False,
                "properties": {"contrast": {"type": "boolean"}}}}}
        return registry.schema(key)

    errors = found(check_charter(files, "telediagnosis", operations(), schema).errors)
    assert ("CH-4.1.10", "acquire_images", "telediagnosis.bpmn") in errors


def test_a_timer_on_a_call_activity_is_the_due_time_of_the_waits_inside():
    files = charter_files()
    text = files["bad_news.bpmn"]
    start = text.index('<bpmn:boundaryEvent id="propose_announcement_due"')
    end = text.index("</bpmn:boundaryEvent>", start) + len("</bpmn:boundaryEvent>")
    files["bad_news.bpmn"] = text[:start] + text[end:]
    assert ("CH-4.1.12", "propose_announcement", "bad_news.bpmn") in found(analyse(files).errors)
    files["telediagnosis.bpmn"] = files["telediagnosis.bpmn"].replace(
        '<bpmn:sequenceFlow id="f_final_pregnancy_ok"',
        '<bpmn:boundaryEvent id="announcement_due" cancelActivity="false" attachedToRef="call_bad_news">'
        '<bpmn:timerEventDefinition><bpmn:timeDuration>"P1D"</bpmn:timeDuration></bpmn:timerEventDefinition>'
        '</bpmn:boundaryEvent>\n    <bpmn:sequenceFlow id="f_final_pregnancy_ok"', 1)
    assert "propose_announcement" not in {f.element_id for f in analyse(files).errors}


@pytest.mark.charter("CH-4.2.1", negative=True)
def test_a_teleexpertise_opinion_before_the_patients_consent_is_refused():
    files = charter_files()
    files["teleexpertise.bpmn"] = files["teleexpertise.bpmn"].replace(
        'sourceRef="te_expert_valid" targetRef="te_consent"', 'sourceRef="te_expert_valid" targetRef="te_check_merge"')
    errors = found(analyse(files, "teleexpertise").errors)
    assert {("CH-4.2.1", "te_report", "teleexpertise.bpmn"), ("CH-4.2.1", "teleexpertise", "teleexpertise.bpmn")} \
        <= errors


@pytest.mark.charter("CH-4.1.10", negative=True)
def test_an_injection_without_the_contraindication_check_is_refused():
    files = charter_files()
    files["contrast_safety.bpmn"] = files["contrast_safety.bpmn"].replace(
        '<spiffworkflow:property name="charterRole" value="contraindication_check"/>', "")
    assert ("CH-4.1.10", "record_injection", "contrast_safety.bpmn") in found(analyse(files).errors)
