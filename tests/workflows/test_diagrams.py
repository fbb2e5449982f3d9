"""Static checks of the shipped charter diagrams, forms and decision table (no database).

Every diagram is complete for bpmn-js, contains no code, deploys with the real service operations, gives
each user task a French form and a lane naming a role; the telediagnosis graph can only end with an
acknowledged report or a motivated refusal (CH-1.2); rule ids cited by the diagrams exist in the
catalogue; and every rule of the radioprotection table is hit by at least one case (CH-4.1.3).
"""

from __future__ import annotations

import ast
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from engine.ports import InMemoryDirectory, SystemClock
from engine.runtime import Bundle, OperationRegistry, Runtime, bundles_from_library
from engine.runtime.checks import check_xml
from engine.runtime.definitions import lane_roles, read_library
from engine.runtime.layout import di_problems
from engine.runtime.xml import BPMN_NS, SPIFF_NS, read_xml
from engine.services.bootstrap import default_operations
from forms.registry import check_schema

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows" / "bpmn"
SCHEMAS = ROOT / "forms" / "schemas"
BPMN_FILES = sorted(WORKFLOWS.glob("*.bpmn"))
DMN_FILES = sorted(WORKFLOWS.glob("*.dmn"))
SCHEMA_FILES = sorted(SCHEMAS.glob("*.json"))
CATALOGUES = (ROOT / "docs" / "charter" / "REQUIREMENTS.md", Path("/work/shared/charter/REQUIREMENTS.md"))
ROLES = frozenset({"requester", "technologist", "radiologist", "local_radiologist", "tele_expert", "site_lead"})
RULE_ID = re.compile(r"CH-\d+(?:\.\d+)*")
CATALOGUE_RULE = re.compile(r"^- (CH-\d+(?:\.\d+)*) ")
NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}

FLOW_NODES = frozenset({
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "task", "userTask", "serviceTask", "scriptTask", "manualTask", "businessRuleTask", "sendTask", "receiveTask",
    "callActivity", "subProcess", "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway",
})
# Words that betray an English title (the UI and the forms are French).
ENGLISH_WORDS = frozenset({"the", "of", "and", "with", "without", "is", "are", "which", "when", "request", "check",
                           "form", "yes", "name", "reason", "please", "enter", "details"})


def ids(paths: Iterable[Path]) -> list[str]:
    return [p.name for p in paths]


def local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def root_of(path: Path) -> etree._Element:
    return read_xml(path.read_bytes(), path.name)


def processes(root: etree._Element) -> list[etree._Element]:
    return root.findall("bpmn:process", NS)


def properties(element: etree._Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in element.iterfind(".//spiffworkflow:property", NS)}


def lanes_of(process: etree._Element) -> dict[str, etree._Element]:
    """Flow node id -> the (innermost) lane holding it."""
    holder = {}
    for lane in process.iterfind(".//bpmn:lane", NS):
        for ref in lane.findall("bpmn:flowNodeRef", NS):
            holder[(ref.text or "").strip()] = lane
    return holder


USER_TASKS = [(path, task.get("id")) for path in BPMN_FILES for task in root_of(path).iter(f"{{{BPMN_NS}}}userTask")]
LIBRARY_BUNDLES = bundles_from_library(read_library([*BPMN_FILES, *DMN_FILES]))


def user_task(path: Path, task_id: str) -> etree._Element:
    found = root_of(path).find(f".//bpmn:userTask[@id='{task_id}']", NS)
    assert found is not None
    return found


def form_of(path: Path, task_id: str) -> str:
    return properties(user_task(path, task_id)).get("formJsonSchemaFilename", "")


# --------------------------------------------------------------------------------------------------
# Diagram interchange, no code, deployable
# --------------------------------------------------------------------------------------------------


def test_the_library_ships_both_process_families():
    # CH-1.1: the two families, plus the identity check of images held on arrival (CH-4.1.6)
    assert {b.process_id for b in LIBRARY_BUNDLES} == {"telediagnosis", "teleexpertise", "image_identity_check"}
    assert DMN_FILES and len(BPMN_FILES) >= 2


@pytest.mark.parametrize("path", BPMN_FILES, ids=ids(BPMN_FILES))
def test_di_is_complete_a_shape_for_every_node_lane_and_boundary_event_an_edge_for_every_flow(path):
    assert di_problems(path.read_text(encoding="utf-8"), path.name) == []


@pytest.mark.parametrize("path", BPMN_FILES, ids=ids(BPMN_FILES))
def test_no_script_task_and_no_pre_or_post_script(path):
    root = root_of(path)
    assert root.findall(".//bpmn:scriptTask", NS) == []
    for name in ("preScript", "postScript", "script"):
        assert root.findall(f".//spiffworkflow:{name}", NS) == [], name
    assert check_xml(root, path.name) == []


@pytest.mark.parametrize("bundle", LIBRARY_BUNDLES, ids=[b.process_id for b in LIBRARY_BUNDLES])
def test_every_bundle_parses_with_the_safe_runtime_and_the_registered_operations(bundle):
    """Parsing runs the deployment checks: every expression in the safe language, every operation known."""
    runtime = Runtime(default_operations(InMemoryDirectory(), SystemClock()))
    assert runtime.definition(bundle).spec is not None


def test_every_diagram_file_is_part_of_some_bundle():
    bundled = {name for bundle in LIBRARY_BUNDLES for name in bundle.files}
    assert bundled == set(ids([*BPMN_FILES, *DMN_FILES]))


@pytest.mark.parametrize("path", BPMN_FILES, ids=ids(BPMN_FILES))
def test_service_tasks_only_call_registered_operations(path):
    registered = default_operations(InMemoryDirectory(), SystemClock()).names()
    for operator in root_of(path).iterfind(".//spiffworkflow:serviceTaskOperator", NS):
        assert operator.get("id") in registered, operator.getparent().getparent().get("id")


# --------------------------------------------------------------------------------------------------
# Forms: one French JSON Schema per user task, no orphan schema
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "task_id"), USER_TASKS, ids=[f"{p.stem}:{t}" for p, t in USER_TASKS])
def test_every_user_task_has_a_valid_french_form(path, task_id):
    name = form_of(path, task_id)
    assert name, f"{task_id} has no formJsonSchemaFilename"
    schema_path = SCHEMAS / name
    assert schema_path.is_file(), f"{task_id}: {name} not in forms/schemas"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    check_schema(schema, name)
    assert_french_title(schema.get("title"), f"{name} (form)")
    untitled = [where for where, prop in schema_properties(schema) if not str(prop.get("title") or "").strip()]
    assert untitled == [], f"{name}: properties without a title"
    for where, prop in schema_properties(schema):
        assert_french_title(prop["title"], f"{name}#{where}")


def schema_properties(schema: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, dict[str, Any]]]:
    for key, prop in (schema.get("properties") or {}).items():
        yield f"{prefix}{key}", prop
        if isinstance(prop, dict) and prop.get("type") == "object":
            yield from schema_properties(prop, f"{prefix}{key}.")


def assert_french_title(title: Any, where: str) -> None:
    assert isinstance(title, str) and title.strip(), f"{where}: no title"
    words = set(re.findall(r"\w+", title.lower()))
    assert not words & ENGLISH_WORDS, f"{where}: title {title!r} is not French"
    assert "_" not in title, f"{where}: title {title!r} looks like a field name"


def test_every_schema_file_is_used_by_some_diagram():
    used = {form_of(path, task_id) for path, task_id in USER_TASKS}
    assert set(ids(SCHEMA_FILES)) - used == set()


# --------------------------------------------------------------------------------------------------
# Lanes: every user task belongs to a role, every lane holds something
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "task_id"), USER_TASKS, ids=[f"{p.stem}:{t}" for p, t in USER_TASKS])
def test_every_user_task_is_in_a_lane_mapped_to_a_role(path, task_id):
    holders = {}
    for process in processes(root_of(path)):
        holders.update(lanes_of(process))
    assert task_id in holders, f"{task_id} is in no lane"
    roles = lane_roles({path.name: etree.fromstring(path.read_bytes())})
    lane_name = holders[task_id].get("name")
    assert roles[lane_name] in ROLES, f"{task_id} in lane {lane_name!r} mapped to {roles[lane_name]!r}"


@pytest.mark.parametrize("path", BPMN_FILES, ids=ids(BPMN_FILES))
def test_every_lane_holds_nodes_that_exist_and_every_node_is_in_one_lane(path):
    for process in processes(root_of(path)):
        nodes = {el.get("id") for el in process if local(el) in FLOW_NODES}
        seen: dict[str, int] = defaultdict(int)
        for lane in process.iterfind(".//bpmn:lane", NS):
            refs = [(r.text or "").strip() for r in lane.findall("bpmn:flowNodeRef", NS)]
            assert refs, f"lane {lane.get('id')} is empty"
            assert set(refs) <= nodes, f"lane {lane.get('id')} names unknown nodes {set(refs) - nodes}"
            if lane.find("bpmn:childLaneSet", NS) is None:
                for ref in refs:
                    seen[ref] += 1
        assert {n for n in nodes if seen[n] != 1} == set(), "nodes in no lane or in several lanes"


# --------------------------------------------------------------------------------------------------
# CH-1.2: a case ends only with a written report (acknowledged) or a motivated refusal
# --------------------------------------------------------------------------------------------------


def flow_graph(process: etree._Element) -> tuple[dict[str, set[str]], dict[str, etree._Element]]:
    """Successors of every flow node; a boundary event follows its host (reachable when the host is)."""
    nodes = {el.get("id"): el for el in process if local(el) in FLOW_NODES}
    successors: dict[str, set[str]] = {node: set() for node in nodes}
    for flow in process.findall("bpmn:sequenceFlow", NS):
        successors[flow.get("sourceRef")].add(flow.get("targetRef"))
    for node_id, element in nodes.items():
        if local(element) == "boundaryEvent":
            successors[element.get("attachedToRef")].add(node_id)
    return successors, nodes


def reachable(successors: dict[str, set[str]], starts: Iterable[str], removed: set[str]) -> set[str]:
    seen, pending = set(), [s for s in starts if s not in removed]
    while pending:
        node = pending.pop()
        if node in seen:
            continue
        seen.add(node)
        pending.extend(n for n in successors[node] if n not in removed)
    return seen


def ends_bypassing(process: etree._Element, gates: set[str]) -> tuple[set[str], set[str]]:
    """(end events of the main path, those still reachable when the gates are removed).

    The main path excludes what only a non-interrupting boundary event leads to (a reminder, not an end
    of the case)."""
    successors, nodes = flow_graph(process)
    starts = [n for n, el in nodes.items() if local(el) == "startEvent"]
    side_paths = {n for n, el in nodes.items() if local(el) == "boundaryEvent" and el.get("cancelActivity") == "false"}
    main = reachable(successors, starts, side_paths)
    ends = {n for n in main if local(nodes[n]) == "endEvent"}
    return ends, ends & reachable(successors, starts, side_paths | gates)


def closing_gates(process: etree._Element, closing_task: str) -> set[str]:
    refusals = {el.get("id") for el in process.findall("bpmn:callActivity", NS) if el.get("calledElement") == "refusal"}
    return {closing_task} | refusals


def process_named(path: Path, process_id: str) -> etree._Element:
    found = root_of(path).find(f"bpmn:process[@id='{process_id}']", NS)
    assert found is not None
    return found


@pytest.mark.charter("CH-1.2")
@pytest.mark.charter("CH-4.1.15")
def test_CH1_2_telediagnosis_ends_only_through_an_acknowledged_report_or_a_motivated_refusal():
    process = process_named(WORKFLOWS / "telediagnosis.bpmn", "telediagnosis")
    # the site's medical lead may also close a case nobody could take, with the reason (alert_outcome)
    gates = closing_gates(process, "acknowledge_report") | {"alert_outcome"}
    assert gates == {"acknowledge_report", "call_refusal_on_request", "call_refusal_on_images", "alert_outcome"}
    ends, bypassing = ends_bypassing(process, gates)
    assert ends == {"end_report_acknowledged", "end_refused", "end_refused_images", "end_handled_locally"}
    assert bypassing == set(), f"end events reached without a report or a refusal: {bypassing}"
    successors, _ = flow_graph(process)
    for gate in gates:  # and each closing step does lead to an end
        assert reachable(successors, [gate], set()) & ends, gate


def test_CH1_2_the_structural_check_catches_a_shortcut_to_an_end_event():
    """The check above has teeth: an extra flow from the images straight to an end is found."""
    process = process_named(WORKFLOWS / "telediagnosis.bpmn", "telediagnosis")
    etree.SubElement(process, f"{{{BPMN_NS}}}sequenceFlow",
                     {"id": "shortcut", "sourceRef": "images_available", "targetRef": "end_report_acknowledged"})
    _, bypassing = ends_bypassing(process, closing_gates(process, "acknowledge_report") | {"alert_outcome"})
    assert bypassing == {"end_report_acknowledged"}


@pytest.mark.charter("CH-1.2")
@pytest.mark.charter("CH-4.1.14")
def test_CH1_2_a_refusal_always_states_its_reason_before_ending():
    process = process_named(WORKFLOWS / "refusal.bpmn", "refusal")
    ends, bypassing = ends_bypassing(process, {"state_refusal"})
    assert ends == {"refusal_end_visit", "refusal_end_fallback"}
    assert bypassing == set()


@pytest.mark.charter("CH-1.2")
@pytest.mark.charter("CH-4.2.3")
def test_CH1_2_teleexpertise_ends_only_through_the_experts_report_integrated_in_the_record():
    process = process_named(WORKFLOWS / "teleexpertise.bpmn", "teleexpertise")
    for gate in ("te_report", "te_integrate"):
        ends, bypassing = ends_bypassing(process, {gate})
        assert ends == {"te_end"}
        assert bypassing == set(), gate


# --------------------------------------------------------------------------------------------------
# Rule ids cited in the diagrams exist in the catalogue
# --------------------------------------------------------------------------------------------------


def catalogue_ids() -> set[str]:
    path = next((p for p in CATALOGUES if p.is_file()), None)
    if path is None:
        pytest.skip(f"no charter catalogue at {' or '.join(str(p) for p in CATALOGUES)}")
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        match = CATALOGUE_RULE.match(line.strip())
        if match:
            found.add(match.group(1))
    return found


def cited_ids(path: Path) -> dict[str, set[str]]:
    """Element id -> rule ids cited by its name, documentation or description."""
    cited: dict[str, set[str]] = {}
    for element in root_of(path).iter(etree.Element):
        texts = [element.get("name") or ""]
        texts += [child.text or "" for child in element if local(child) in ("documentation", "description")]
        rules = set(RULE_ID.findall(" ".join(texts)))
        if rules:
            cited[element.get("id") or local(element)] = rules
    return cited


def test_the_catalogue_is_read():
    known = catalogue_ids()
    assert {"CH-1.2", "CH-3.6", "CH-4.1.3", "CH-4.2.3", "CH-9.1"} <= known
    assert "CH-4.11" not in known  # an example in the catalogue's preamble, not a rule


@pytest.mark.parametrize("path", [*BPMN_FILES, *DMN_FILES], ids=ids([*BPMN_FILES, *DMN_FILES]))
def test_rule_ids_cited_in_diagram_documentation_exist(path):
    known = catalogue_ids()
    cited = cited_ids(path)
    assert cited, f"{path.name} cites no charter rule"
    unknown = {element: sorted(rules - known) for element, rules in cited.items() if rules - known}
    assert unknown == {}


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=ids(SCHEMA_FILES))
def test_rule_ids_annotated_in_forms_exist(path):
    known = catalogue_ids()
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            found.update(node.get("x-charter", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(path.read_text(encoding="utf-8")))
    assert found - known == set()


# --------------------------------------------------------------------------------------------------
# CH-4.1.3: every rule of the radioprotection table is hit
# --------------------------------------------------------------------------------------------------

DMN = WORKFLOWS / "radioprotection.dmn"
PROBE = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="{BPMN_NS}" xmlns:spiffworkflow="{SPIFF_NS}" id="probe_defs"
                  targetNamespace="https://telerad.example/tests">
  <bpmn:process id="radioprotection_probe" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="decide" />
    <bpmn:businessRuleTask id="decide">
      <bpmn:extensionElements>
        <spiffworkflow:calledDecisionId>radioprotection</spiffworkflow:calledDecisionId>
      </bpmn:extensionElements>
    </bpmn:businessRuleTask>
    <bpmn:sequenceFlow id="f2" sourceRef="decide" targetRef="end" />
    <bpmn:endEvent id="end" />
  </bpmn:process>
</bpmn:definitions>
"""


def table_rules() -> dict[str, dict[str, Any]]:
    """Rule id -> the outputs that rule gives, read from the table itself."""
    root = root_of(DMN)
    outputs = [o.get("name") for o in root.iter("{*}output")]
    rules = {}
    for rule in root.iter("{*}rule"):
        cells = [ast.literal_eval(entry.findtext("{*}text").strip()) for entry in rule.iter("{*}outputEntry")]
        rules[rule.get("id")] = dict(zip(outputs, cells, strict=True))
    return rules


RULES = table_rules()


def facts(ionizing: bool, minor: bool, childbearing_age: bool) -> dict[str, bool]:
    return {"ionizing": ionizing, "minor": minor, "childbearing_age": childbearing_age}


# (ionizing, minor, childbearing age, pregnancy status) -> the rule expected to decide, in table order.
CASES = [
    (facts(True, False, True), "unknown", "rule_pregnancy_unknown"),
    (facts(True, False, True), "not_applicable", "rule_pregnancy_unknown"),
    (facts(True, True, True), "unknown", "rule_pregnancy_unknown"),  # a girl of 16: blocked before rule_minor
    (facts(True, False, True), "pregnant", "rule_pregnant"),
    (facts(True, True, True), "not_pregnant", "rule_minor_not_pregnant"),  # a girl of 16, pregnancy excluded
    (facts(True, True, False), "not_applicable", "rule_minor"),
    (facts(True, False, True), "not_pregnant", "rule_not_pregnant"),
    (facts(True, False, False), "not_applicable", "rule_default"),  # a man, CT
    (facts(False, False, True), "unknown", "rule_default"),  # MRI: no pregnancy question
    (facts(False, True, False), "not_applicable", "rule_default"),  # a child, ultrasound
]


def decide(case_facts: dict[str, bool], pregnancy_status: str) -> dict[str, Any]:
    bundle = Bundle("radioprotection_probe", {"probe.bpmn": PROBE, DMN.name: DMN.read_text(encoding="utf-8")})
    live = Runtime(OperationRegistry()).start(bundle, {"facts": case_facts, "pregnancy_status": pregnancy_status})
    assert live.snapshot().completed
    return live.case_data()


@pytest.mark.charter("CH-4.1.3")
def test_CH4_1_3_the_table_rules_are_distinguishable_and_in_order():
    assert list(RULES) == ["rule_pregnancy_unknown", "rule_pregnant", "rule_minor_not_pregnant", "rule_minor",
                           "rule_not_pregnant", "rule_default"]
    outputs = [tuple(sorted(o.items())) for o in RULES.values()]
    assert len(set(outputs)) == len(outputs), "two rules give the same outputs: a test could not tell them apart"


@pytest.mark.charter("CH-4.1.3")
@pytest.mark.parametrize(("case_facts", "pregnancy_status", "rule"), CASES,
                         ids=[f"{rule}-{status}-{i}" for i, (_, status, rule) in enumerate(CASES)])
def test_CH4_1_3_radioprotection_table_decides_with_the_expected_rule(case_facts, pregnancy_status, rule):
    data = decide(case_facts, pregnancy_status)
    assert {name: data.get(name) for name in RULES[rule]} == RULES[rule]


@pytest.mark.charter("CH-4.1.3")
def test_CH4_1_3_every_rule_of_the_radioprotection_table_is_exercised():
    assert {rule for _, _, rule in CASES} == set(RULES)


@pytest.mark.charter("CH-4.1.3")
def test_CH4_1_3_exposure_is_blocked_exactly_when_a_woman_of_childbearing_age_has_no_stated_status():
    for status in ("unknown", "not_applicable"):
        assert decide(facts(True, False, True), status)["pregnancy_block"] is True
        assert decide(facts(False, False, True), status)["pregnancy_block"] is False  # not ionizing
        assert decide(facts(True, False, False), status)["pregnancy_block"] is False  # not of childbearing age
    for status in ("pregnant", "not_pregnant"):
        assert decide(facts(True, False, True), status)["pregnancy_block"] is False
    for status in ("unknown", "pregnant"):
        assert "US" in decide(facts(True, False, True), status)["substitution_candidates"]
    assert "US" in decide(facts(True, True, False), "not_applicable")["substitution_candidates"]
