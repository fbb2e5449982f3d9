"""The conformance matrix says only what is true: an enforcement counts when the product reaches it (a deployed
diagram element, a form a deployed user task uses, code reached from a route, a command, a listener or an
operation a deployed diagram calls), and a rule is enforced only with a negative test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.domain.actors import Actor
from engine.runtime import Bundle
from engine.services.conformance import conformance_matrix
from engine.services.conformance_build import build_graph
from engine.services.conformance_entries import entry_points
from engine.services.conformance_sources import deployed_diagrams, read_catalogue, read_tests, registry_forms
from engine.services.definitions import deploy_definition
from web.cli.main import main
from web.config import PROJECT_ROOT

SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"


@pytest.fixture(scope="module")
def matrix():
    return conformance_matrix(PROJECT_ROOT)


def by_id(rules):
    return {rule.id: rule for rule in rules}


def test_the_catalogue_lists_every_rule_of_the_shared_charter(matrix):
    assert len(matrix) >= 46
    assert {"CH-1.1", "CH-4.1.10", "CH-4.2.3", "CH-9.1"} <= {r.id for r in matrix}


def test_no_rule_of_the_repository_matrix_is_only_declared(matrix):
    declared_only = {r.id: [u.where for u in r.unreached] for r in matrix if r.status == "declared_only"}
    assert declared_only == {}, "marks or citations that nothing in the product reaches"


def test_outside_rules_have_a_reason_and_the_procedures_are_all_in_software_scope(matrix):
    assert all(r.reason for r in matrix if r.status == "outside")
    procedures = [r for r in matrix if r.id.split(".")[0] in ("CH-1", "CH-2", "CH-3", "CH-4")]
    assert procedures and all(r.scope == "software" for r in procedures)


def test_enforcements_say_where_they_are_reached_from(matrix):
    enforcements = [e for rule in matrix for e in rule.enforced_by]
    assert enforcements and all(e.reached_from for e in enforcements)
    code = {e.where: e.reached_from for e in enforcements if e.kind == "code"}
    assert "commande telerad deploy" in code["engine.services.definitions.deploy_definition"]
    assert any(o.startswith("opération telerad.candidate_pool ← telediagnosis.bpmn#")
               for o in code["engine.domain.routing.candidate_pool"])


def test_CH7_fee_rules_are_enforced_by_the_fee_pages_and_command(matrix):
    rules = by_id(matrix)
    for rule_id in ("CH-6.4", "CH-7.1", "CH-7.2", "CH-7.3", "CH-7.4", "CH-7.5", "CH-7.6"):
        assert rules[rule_id].status == "enforced" and rules[rule_id].negative_tests, rule_id
        assert not any(e.where.startswith("engine.domain.fees") for e in rules[rule_id].enforced_by)
    entries = {label for rule_id in ("CH-7.1", "CH-7.6") for e in rules[rule_id].enforced_by
               for label in e.reached_from}
    assert any(label.startswith("route") and "/fees/statement" in label for label in entries)
    assert any("telerad fees statement" in label for label in entries)
    assert any("/cases/<int:case_id>/acts" in label for label in entries)


def test_CH8_2_research_exports_are_enforced_by_pages_and_the_command(matrix):
    rule = by_id(matrix)["CH-8.2"]
    assert rule.status == "enforced" and rule.negative_tests
    reached = {label for e in rule.enforced_by for label in e.reached_from}
    assert any(label.startswith("route") and "/research" in label for label in reached), reached
    assert any("telerad research export" in label for label in reached), reached


def test_CH6_3_and_CH3_5_are_enforced_by_features_a_user_opens(matrix):
    rules = by_id(matrix)
    for rule_id in ("CH-6.3", "CH-3.5"):
        assert rules[rule_id].status == "enforced" and rules[rule_id].negative_tests, rule_id
    indicator_entries = {label for e in rules["CH-6.3"].enforced_by for label in e.reached_from}
    assert any(label.startswith("route") and "/admin/indicators" in label for label in indicator_entries)
    assert any("telerad indicators" in label for label in indicator_entries)
    share_entries = {label for e in rules["CH-3.5"].enforced_by for label in e.reached_from}
    assert any("telerad.candidate_pool" in label for label in share_entries)


def test_CH5_6_site_visits_and_devices_are_enforced_by_pages_a_user_opens(matrix):
    rule = by_id(matrix)["CH-5.6"]
    reached = {e.where: e.reached_from for e in rule.enforced_by}
    assert rule.status == "enforced" and rule.negative_tests
    assert "route GET/POST /site-visits" in reached["engine.services.site_visits.record_visit"]
    assert "route POST /site-devices/<int:device_id>/validate" in reached[
        "engine.services.site_devices.validate_device"]


def test_the_product_entry_points_are_found_in_the_source():
    graph = build_graph(PROJECT_ROOT)
    labels = {label for names in entry_points(graph, {}).values() for label in names}
    assert {"route GET/POST /tasks/<task_id>", "route POST /api/v1/tasks/<task_id>/complete",
            "commande telerad users create", "commande telerad hl7 outbox retry", "commande telerad demo",
            "réception HL7 (MLLP) : InboundHandler.__call__", "planificateur des échéances : TimerScheduler.tick",
            "réception DICOM (C-STORE) : StorageSCP._on_store"} <= labels
    assert "telerad.candidate_pool" in graph.operations


def test_cli_json_shape():
    result = CliRunner().invoke(main, ["conformance", "--json", "--repo"])
    assert result.exit_code == 0, result.output
    rules = json.loads(result.output)["rules"]
    assert {r["status"] for r in rules} <= {"enforced", "declared_only", "missing", "outside"}
    for rule in rules:
        assert {"id", "title", "scope", "status", "enforced_by", "tests", "negative_tests",
                "missing_negative_test", "missing_enforcement", "unreached"} <= set(rule)
        assert set(rule["negative_tests"]) <= set(rule["tests"])
        for enforcement in rule["enforced_by"]:
            assert set(enforcement) == {"where", "kind", "reached_from"} and enforcement["reached_from"]
        if rule["status"] == "enforced":
            assert rule["enforced_by"] and rule["negative_tests"]
    human = CliRunner().invoke(main, ["conformance", "--repo"])
    assert human.exit_code == 0 and "règles :" in human.output and "manquante" in human.output


# --- small projects written for the test -------------------------------------------------------------------

def project(tmp_path: Path, rules: str, files: dict[str, str]) -> Path:
    (tmp_path / "docs" / "charter").mkdir(parents=True)
    (tmp_path / "docs" / "charter" / "REQUIREMENTS.md").write_text(rules, encoding="utf-8")
    for folder in ("workflows/bpmn", "forms/schemas", "tests"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


MARKED = ('from engine.domain.charter import enforces\n\n\n@enforces("CH-99.1")\ndef gate(value):\n'
          '    return value > 0\n')
VIEW = ('from flask import Blueprint\n\nfrom engine.domain.rules import gate\n\n'
        'bp = Blueprint("things", __name__, url_prefix="/things")\n\n\n@bp.post("/<int:n>")\n'
        'def create(n):\n    return str(gate(n))\n')
NEGATIVE = ('import pytest\n\n\n@pytest.mark.charter("CH-99.1", negative=True)\ndef test_refused():\n'
            '    assert True\n')


def test_a_marked_function_that_nothing_calls_is_declared_only(tmp_path):
    root = project(tmp_path, "- CH-99.1 A gate.\n", {"engine/domain/rules.py": MARKED, "tests/test_x.py": NEGATIVE})
    (rule,) = conformance_matrix(root)
    assert (rule.status, rule.enforced_by, [u.where for u in rule.unreached]) == (
        "declared_only", [], ["engine.domain.rules.gate"])



def test_the_command_fails_when_a_rule_is_only_declared(tmp_path, monkeypatch):
    import web.config

    root = project(tmp_path, "- CH-99.1 A gate.\n", {"engine/domain/rules.py": MARKED})
    monkeypatch.setattr(web.config, "PROJECT_ROOT", root)
    result = CliRunner().invoke(main, ["conformance", "--repo", "--json"])
    assert result.exit_code == 1 and json.loads(result.output)["rules"][0]["status"] == "declared_only"
    result = CliRunner().invoke(main, ["conformance", "--repo"])
    assert result.exit_code == 1
    assert "déclarée seulement" in result.output and "non atteinte : engine.domain.rules.gate" in result.output


def test_a_marked_function_reached_from_a_route_is_enforced_once_a_negative_test_exists(tmp_path):
    files = {"engine/domain/rules.py": MARKED, "web/things.py": VIEW}
    (rule,) = conformance_matrix(project(tmp_path, "- CH-99.1 A gate.\n", files))
    assert (rule.status, rule.missing_negative_test, rule.missing_enforcement) == ("missing", True, False)
    assert [(e.where, e.kind, e.reached_from) for e in rule.enforced_by] == [
        ("engine.domain.rules.gate", "code", ("route POST /things/<int:n>",))]
    (tmp_path / "tests" / "test_x.py").write_text(NEGATIVE, encoding="utf-8")
    (rule,) = conformance_matrix(tmp_path)
    assert (rule.status, rule.negative_tests) == ("enforced", ["tests/test_x.py::test_refused"])


def test_a_method_reached_only_by_a_name_nobody_calls_stays_unreached(tmp_path):
    code = ('from engine.domain.charter import enforces\n\n\nclass Catalogue:\n    @enforces("CH-99.1")\n'
            '    def check(self):\n        return True\n\n    def other(self):\n        return 1\n')
    view = VIEW.replace("from engine.domain.rules import gate", "from engine.domain.rules import Catalogue") \
        .replace("str(gate(n))", "str(Catalogue().other())")
    files = {"engine/domain/rules.py": code, "web/things.py": view}
    (rule,) = conformance_matrix(project(tmp_path, "- CH-99.1 A gate.\n", files))
    assert rule.status == "declared_only"


OPERATIONS = ('from engine.domain.rules import gate\n\n\ndef register_all(registry):\n'
              '    def check(value):\n        return {"ok": gate(value)}\n\n'
              '    operations = {"telerad.check": check}\n    for name, operation in operations.items():\n'
              '        registry.register(name, operation)\n')
CONTEXT = ('from engine.services.operations import register_all\n\n\ndef build(registry):\n'
           '    register_all(registry)\n')
CLI = ('import click\n\nfrom engine.services.context import build\n\n\n@click.group()\ndef main():\n    pass\n\n\n'
       '@main.command()\ndef run_all():\n    build(None)\n')


def diagram(process_id: str, body: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/'
            f'20100524/MODEL" xmlns:spiffworkflow="{SPIFF}" id="{process_id}_defs" targetNamespace="urn:t">\n'
            f'  <bpmn:process id="{process_id}" isExecutable="true">\n    <bpmn:startEvent id="{process_id}_start"/>\n'
            f'{body}    <bpmn:endEvent id="{process_id}_end"/>\n  </bpmn:process>\n</bpmn:definitions>\n')


def test_an_operation_counts_only_when_a_diagram_calls_it(tmp_path):
    files = {"engine/domain/rules.py": MARKED, "engine/services/operations.py": OPERATIONS,
             "engine/services/context.py": CONTEXT, "web/cli/main.py": CLI, "tests/test_x.py": NEGATIVE}
    root = project(tmp_path, "- CH-99.1 A gate.\n", files)
    (rule,) = conformance_matrix(root)
    assert rule.status == "declared_only"  # registered at start-up, but no diagram calls it
    service = ('    <bpmn:serviceTask id="run_check"><bpmn:extensionElements>'
               '<spiffworkflow:serviceTaskOperator id="telerad.check" resultVariable="r"/>'
               '</bpmn:extensionElements></bpmn:serviceTask>\n')
    (root / "workflows" / "bpmn" / "p.bpmn").write_text(diagram("p", service), encoding="utf-8")
    (rule,) = conformance_matrix(root)
    assert rule.status == "enforced"
    assert rule.enforced_by[0].reached_from == ("opération telerad.check ← p.bpmn#run_check",)


def user_task(task_id: str, form: str, documentation: str = "", role: str = "") -> str:
    properties = f'<spiffworkflow:property name="formJsonSchemaFilename" value="{form}"/>'
    if role:
        properties += f'<spiffworkflow:property name="charterRole" value="{role}"/>'
    return (f'    <bpmn:userTask id="{task_id}"><bpmn:documentation>{documentation}</bpmn:documentation>'
            f'<bpmn:extensionElements><spiffworkflow:properties>{properties}</spiffworkflow:properties>'
            f'</bpmn:extensionElements></bpmn:userTask>\n')


FORM = {"type": "object", "properties": {"ok": {"type": "boolean", "x-charter": ["CH-99.4"]}}}


def test_the_repository_matrix_reads_citations_roles_and_forms_of_user_tasks(tmp_path):
    rules = "- CH-99.1 Cited.\n- CH-99.4 A used form.\n- CH-99.5 An unused form.\n- CH-4.1.6 Identity.\n"
    files = {"workflows/bpmn/p.bpmn": diagram("p", user_task("t", "used.schema.json", "Charte : CH-99.1",
                                                             "identity_check")),
             "forms/schemas/used.schema.json": json.dumps(FORM),
             "forms/schemas/unused.schema.json": json.dumps(FORM).replace("CH-99.4", "CH-99.5")}
    matrix = by_id(conformance_matrix(project(tmp_path, rules, files)))
    assert [(e.where, e.kind, e.reached_from) for e in matrix["CH-99.1"].enforced_by] == [
        ("p.bpmn#t", "diagram", ("procédure p (dépôt)",))]
    assert [e.kind for e in matrix["CH-4.1.6"].enforced_by] == ["charter_role"]
    assert [(e.where, e.reached_from) for e in matrix["CH-99.4"].enforced_by] == [
        ("used.schema.json#ok", ("tâche p.bpmn#t",))]
    unused = matrix["CH-99.5"]
    assert (unused.status, unused.enforced_by, [(u.where, u.kind) for u in unused.unreached]) == (
        "declared_only", [], [("unused.schema.json#ok", "form")])


def test_deployed_versions_are_what_counts(make_ctx, tmp_path):
    """Only the latest deployed version of each process counts; the repository's files do not."""
    from forms import FormRegistry

    forms_dir = tmp_path / "forms_in_use"
    forms_dir.mkdir()
    (forms_dir / "used.schema.json").write_text(json.dumps(FORM), encoding="utf-8")
    (forms_dir / "unused.schema.json").write_text(json.dumps(FORM).replace("CH-99.4", "CH-99.5"), encoding="utf-8")
    ctx = make_ctx(forms=FormRegistry([forms_dir]))
    rules = "".join(f"- CH-99.{n} Rule {n}.\n" for n in range(1, 6))
    root = project(tmp_path / "project", rules, {
        "workflows/bpmn/q.bpmn": diagram("q", user_task("only_in_repo", "used.schema.json", "CH-99.2"))})
    first = diagram("p", user_task("old", "used.schema.json", "Charte : CH-99.3"))
    latest = diagram("p", user_task("t", "used.schema.json", "Charte : CH-99.1"))
    for text in (first, latest):
        deploy_definition(ctx, Actor("designer"), Bundle("p", {"p.bpmn": text}))
    matrix = by_id(conformance_matrix(root, deployed_diagrams(ctx), registry_forms(ctx)))
    assert [(e.where, e.reached_from) for e in matrix["CH-99.1"].enforced_by] == [
        ("p.bpmn#t", ("procédure déployée p v2",))]
    assert matrix["CH-99.2"].status == "missing" and matrix["CH-99.2"].missing_enforcement  # not deployed
    assert matrix["CH-99.3"].enforced_by == []  # an older version
    assert [e.reached_from for e in matrix["CH-99.4"].enforced_by] == [("tâche p.bpmn#t",)]
    assert matrix["CH-99.5"].status == "declared_only"  # a form no deployed user task uses
    assert by_id(conformance_matrix(root))["CH-99.2"].enforced_by  # the same rule with --repo


def test_negative_marks_are_read_on_tests_classes_and_modules(tmp_path):
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_x.py").write_text(
        'import pytest\n\npytestmark = pytest.mark.charter("CH-1.1", negative=True)\n\n\n'
        '@pytest.mark.charter("CH-4.1.1")\ndef test_a():\n    pass\n\n\n'
        '@pytest.mark.charter("CH-4.1.2", negative=True)\nclass TestGroup:\n    def test_b(self):\n        pass\n',
        encoding="utf-8")
    found = {rule: [(t.name, t.negative) for t in refs] for rule, refs in read_tests(tests).items()}
    assert found == {"CH-1.1": [("tests/test_x.py::test_a", True), ("tests/test_x.py::TestGroup::test_b", True)],
                     "CH-4.1.1": [("tests/test_x.py::test_a", False)],
                     "CH-4.1.2": [("tests/test_x.py::TestGroup::test_b", True)]}


def test_outside_scope_needs_the_scope_file(tmp_path):
    (tmp_path / "REQUIREMENTS.md").write_text("- CH-5.2 Displays.\n", encoding="utf-8")
    (tmp_path / "scope.toml").write_text('[rules."CH-5.2"]\nscope = "outside"\nreason = "hardware"\n',
                                         encoding="utf-8")
    (rule,) = read_catalogue(tmp_path)
    assert (rule.scope, rule.reason) == ("outside", "hardware")


def test_a_call_through_a_protocol_reaches_its_implementations_but_a_library_object_does_not(tmp_path):
    ports = ('from typing import Protocol\n\n\nclass Directory(Protocol):\n    def on_call(self) -> str: ...\n')
    adapter = ('from engine.domain.rules import gate\n\n\nclass SqlDirectory:\n    def on_call(self):\n'
               '        return gate(1)\n')
    marked_method = ('from engine.domain.charter import enforces\n\n\nclass Catalogue:\n    @enforces("CH-99.2")\n'
                     '    def execute(self):\n        return True\n')
    view = ('from flask import Blueprint\nfrom sqlalchemy.orm import Session\n\nfrom engine.ports import Directory\n\n'
            'bp = Blueprint("things", __name__)\n\n\n@bp.get("/things")\n'
            'def things(directory: Directory, session: Session):\n    session.execute("select 1")\n'
            '    return directory.on_call()\n')
    files = {"engine/domain/rules.py": MARKED, "engine/ports.py": ports, "engine/store/adapter.py": adapter,
             "engine/domain/catalogue.py": marked_method, "web/things.py": view}
    matrix = by_id(conformance_matrix(project(tmp_path, "- CH-99.1 A gate.\n- CH-99.2 Another.\n", files)))
    assert [e.reached_from for e in matrix["CH-99.1"].enforced_by] == [("route GET /things",)]
    assert matrix["CH-99.2"].status == "declared_only"


def test_a_function_a_decorator_registers_runs_once_its_module_is_imported(tmp_path):
    registry = ('_CHECKS = []\n\n\ndef register(key):\n    def keep(check):\n        _CHECKS.append(check)\n'
                '        return check\n    return keep\n\n\ndef run_checks():\n    return [c() for c in _CHECKS]\n')
    checks = ('from engine.domain.charter import enforces\nfrom engine.services.registry import register\n\n\n'
              '@register("form.json")\n@enforces("CH-99.1")\ndef refuse():\n    return False\n')
    view = ('from flask import Blueprint\n\nimport engine.services.checks  # noqa: F401\n'
            'from engine.services.registry import run_checks\n\nbp = Blueprint("things", __name__)\n\n\n'
            '@bp.post("/things")\ndef create():\n    return str(run_checks())\n')
    files = {"engine/services/registry.py": registry, "engine/services/checks.py": checks, "web/things.py": view}
    (rule,) = conformance_matrix(project(tmp_path, "- CH-99.1 A check.\n", files))
    assert [e.reached_from for e in rule.enforced_by] == [("route POST /things",)]


def test_the_command_reads_the_deployed_versions_by_default(make_ctx, database_url, tmp_path, monkeypatch):
    from engine.services.definitions import deploy_library
    from forms import default_registry

    ctx = make_ctx(operations=None, forms=default_registry(), escalation=None)
    deploy_library(ctx, Actor("designer"), PROJECT_ROOT / "workflows" / "bpmn")
    monkeypatch.setenv("TELERAD_DATABASE_URL", database_url)
    monkeypatch.setenv("TELERAD_INSTANCE_PATH", str(tmp_path / "instance"))
    result = CliRunner().invoke(main, ["conformance", "--json"])
    rules = json.loads(result.output)["rules"]
    assert result.exit_code == (1 if any(r["status"] == "declared_only" for r in rules) else 0)
    origins = {o for r in rules if r["id"] == "CH-3.3" for e in r["enforced_by"] for o in e["reached_from"]}
    assert "procédure déployée telediagnosis v1" in origins
    assert any(o.startswith("opération telerad.candidate_pool ← telediagnosis.bpmn#") for o in origins)
    assert not any("(dépôt)" in o for o in origins)


def test_CH5_5_downtime_is_enforced_by_the_incident_pages_and_the_command(matrix):
    rule = by_id(matrix)["CH-5.5"]
    assert rule.status == "enforced" and rule.negative_tests
    reached = {label for e in rule.enforced_by for label in e.reached_from}
    assert any(label.startswith("route") and "/incidents/tasks/<task_id>/back-entry" in label for label in reached)
    assert any("telerad incident declare" in label for label in reached), reached
    assert any("telerad incident close" in label for label in reached), reached
