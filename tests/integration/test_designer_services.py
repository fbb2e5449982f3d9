"""Process designer use cases: drafts validated on save, deployed as new versions, imports, form schemas."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from engine.domain.actors import Actor
from engine.errors import Conflict, DefinitionRefused, Forbidden
from engine.services import designer
from engine.services.definitions import deploy_library
from engine.store.designer_models import DiagramDraft
from engine.store.models import AuditEvent, ProcessDefinition
from forms import default_registry
from tests.conftest import DATA

ROOT = DATA.parents[1]
DESIGNER = Actor("sophie", frozenset({"process_designer"}))
CLINICIAN = Actor("dr-martin", frozenset({"requester"}), frozenset({"site-a"}))
SCRIPT_TASK = '<bpmn:scriptTask id="sneaky" name="x"><bpmn:script>print(1)</bpmn:script></bpmn:scriptTask>'


@pytest.fixture
def charter_ctx(make_ctx):
    ctx = make_ctx(forms=default_registry(), escalation=None, operations=None)
    deploy_library(ctx, Actor("setup"), ROOT / "workflows" / "bpmn")
    return ctx


def _relabel(files: dict[str, str], old: str, new: str) -> dict[str, str]:
    changed = {name: text.replace(f'name="{old}"', f'name="{new}"', 1) for name, text in files.items()}
    assert changed != files, f"label {old!r} not found"
    return changed


@pytest.mark.charter("CH-9.1")
def test_CH9_1_a_saved_draft_is_validated_and_deployed_as_the_next_version(charter_ctx):
    ctx = charter_ctx
    draft = designer.open_draft(ctx, DESIGNER, "telediagnosis")
    assert draft.revision == 0 and "telediagnosis.bpmn" in draft.files and draft.base_version == 1
    files = _relabel(draft.files, "Rédiger la demande", "Rédiger la demande d'examen")
    saved = designer.save_draft(ctx, DESIGNER, "telediagnosis", files, expected_revision=0)
    assert (saved.revision, saved.error_count) == (1, 0)
    assert designer.process_info(ctx, DESIGNER, "telediagnosis").draft.revision == 1

    deployed = designer.deploy_draft(ctx, DESIGNER, "telediagnosis", expected_revision=1)
    assert (deployed.version, deployed.created) == (2, True)
    info = designer.process_info(ctx, DESIGNER, "telediagnosis")
    assert info.draft is None and [v.version for v in info.versions] == [2, 1]
    _version, bundle = designer.version_bundle(ctx, DESIGNER, deployed.definition_id)
    assert "Rédiger la demande d'examen" in bundle.files["telediagnosis.bpmn"]
    with ctx.read() as session:
        actions = session.execute(select(AuditEvent.action).where(AuditEvent.chain == 0)).scalars().all()
    assert actions.count("draft.saved") == 1 and actions[-1] == "definition.deployed"


def test_a_script_task_is_stored_with_its_finding_and_refused_at_deployment(charter_ctx):
    ctx = charter_ctx
    files = dict(designer.open_draft(ctx, DESIGNER, "telediagnosis").files)
    files["telediagnosis.bpmn"] = files["telediagnosis.bpmn"].replace("<bpmn:startEvent ", SCRIPT_TASK
                                                                      + "<bpmn:startEvent ", 1)
    saved = designer.save_draft(ctx, DESIGNER, "telediagnosis", files, expected_revision=0)
    assert saved.error_count > 0
    findings = [f for report in saved.reports for f in report["errors"]]
    assert any(f["element_id"] == "sneaky" for f in findings), findings
    with pytest.raises(DefinitionRefused) as refused:
        designer.deploy_draft(ctx, DESIGNER, "telediagnosis", expected_revision=1)
    assert any(f.element_id == "sneaky" for f in refused.value.findings)
    with ctx.read() as session:
        assert session.execute(select(func.count()).select_from(ProcessDefinition)
                               .where(ProcessDefinition.process_id == "telediagnosis")).scalar() == 1


def test_a_stale_revision_is_a_conflict_and_the_newer_draft_is_kept(charter_ctx):
    ctx = charter_ctx
    files = designer.open_draft(ctx, DESIGNER, "telediagnosis").files
    designer.save_draft(ctx, DESIGNER, "telediagnosis", _relabel(files, "Rédiger la demande", "Première"), 0)
    with pytest.raises(Conflict, match="sophie"):
        designer.save_draft(ctx, DESIGNER, "telediagnosis", _relabel(files, "Rédiger la demande", "Seconde"), 0)
    with pytest.raises(Conflict):
        designer.deploy_draft(ctx, DESIGNER, "telediagnosis", expected_revision=0)
    assert 'name="Première"' in designer.open_draft(ctx, DESIGNER, "telediagnosis").files["telediagnosis.bpmn"]


def test_only_designers_may_read_or_change_diagrams(charter_ctx):
    for call in (lambda: designer.list_processes(charter_ctx, CLINICIAN),
                 lambda: designer.open_draft(charter_ctx, CLINICIAN, "telediagnosis"),
                 lambda: designer.save_draft(charter_ctx, CLINICIAN, "telediagnosis", {"a.bpmn": "<x/>"}, 0),
                 lambda: designer.deploy_draft(charter_ctx, CLINICIAN, "telediagnosis", 1),
                 lambda: designer.save_form_schema(charter_ctx, CLINICIAN, "td_report.schema.json", "{}")):
        with pytest.raises(Forbidden):
            call()


def test_importing_a_broken_or_foreign_file_gives_findings_not_a_crash(charter_ctx):
    ctx = charter_ctx
    with pytest.raises(DefinitionRefused) as refused:
        designer.import_diagram(ctx, DESIGNER, "other.bpmn", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x/>')
    assert refused.value.findings[0].rule == "xml.dtd"
    assert "DOCTYPE" in refused.value.findings[0].message and "interdites" in refused.value.findings[0].message
    with pytest.raises(DefinitionRefused, match="UTF-8"):
        designer.import_diagram(ctx, DESIGNER, "other.bpmn", "é".encode("latin-1"))
    # A diagram from another modeler: a process without lanes, forms or DI. Stored as a draft with its findings.
    foreign = (b'<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions '
               b'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">'
               b'<bpmn:process id="imported" isExecutable="true"><bpmn:startEvent id="s"/>'
               b'<bpmn:sequenceFlow id="f" sourceRef="s" targetRef="t"/><bpmn:userTask id="t" name="Lire"/>'
               b'<bpmn:sequenceFlow id="g" sourceRef="t" targetRef="e"/><bpmn:endEvent id="e"/>'
               b'</bpmn:process></bpmn:definitions>')
    draft = designer.import_diagram(ctx, DESIGNER, "imported.bpmn", foreign)
    assert draft.process_id == "imported" and draft.revision == 1 and draft.error_count > 0
    rules = {f["rule"] for report in draft.reports for f in report["errors"]}
    assert {"di", "form"} <= rules, rules
    with pytest.raises(DefinitionRefused):
        designer.deploy_draft(ctx, DESIGNER, "imported", 1)
    assert [p.process_id for p in designer.list_processes(ctx, DESIGNER)].count("imported") == 1


def test_an_edited_form_gets_a_new_immutable_key_usable_by_a_diagram(charter_ctx):
    ctx = charter_ctx
    schema = designer.form_schema(ctx, DESIGNER, "td_report.schema.json")
    schema["title"] = "Compte rendu (v2)"
    key = designer.save_form_schema(ctx, DESIGNER, "td_report.schema.json", json.dumps(schema))
    assert key == "td_report.v2.schema.json"
    assert designer.save_form_schema(ctx, DESIGNER, key, json.dumps(schema)) == "td_report.v3.schema.json"
    assert ctx.forms.exists(key) and ctx.forms.schema(key)["title"] == "Compte rendu (v2)"
    files = dict(designer.open_draft(ctx, DESIGNER, "telediagnosis").files)
    files["telediagnosis.bpmn"] = files["telediagnosis.bpmn"].replace('"td_report.schema.json"', f'"{key}"')
    assert designer.save_draft(ctx, DESIGNER, "telediagnosis", files, 0).error_count == 0
    files["telediagnosis.bpmn"] = files["telediagnosis.bpmn"].replace(f'"{key}"', '"td_missing.schema.json"')
    # the missing form, and the report step (charter role) left without the form its answers are checked on
    assert designer.save_draft(ctx, DESIGNER, "telediagnosis", files, 1).error_count == 2

    for bad, message in (("{", "JSON invalide"), ('{"type": "array"}', "objet"),
                         ('{"type": "object", "properties": {}}', "au moins un champ")):
        with pytest.raises(designer.FormRefused, match=message):
            designer.save_form_schema(ctx, DESIGNER, "td_report.schema.json", bad)
    # the context above the fields must name forms and fields that exist (issue 17, item 1)
    for context, missing in (([{"form": "td_absent.schema.json", "fields": ["x"]}], "td_absent.schema.json"),
                             ([{"form": "td_request.schema.json", "fields": ["question", "egfr_typo"]}], "egfr_typo")):
        with pytest.raises(designer.FormRefused, match=f"x-context.*{missing}"):
            designer.save_form_schema(ctx, DESIGNER, "td_report.schema.json",
                                      json.dumps({**schema, "x-context": context}))


def test_a_draft_that_no_longer_defines_its_process_is_refused(charter_ctx):
    ctx = charter_ctx
    files = dict(designer.open_draft(ctx, DESIGNER, "telediagnosis").files)
    files["telediagnosis.bpmn"] = files["telediagnosis.bpmn"].replace('id="telediagnosis"', 'id="renamed"', 1)
    saved = designer.save_draft(ctx, DESIGNER, "telediagnosis", files, 0)
    assert saved.error_count >= 1
    with ctx.read() as session:
        assert session.execute(select(DiagramDraft.error_count)).scalar_one() == saved.error_count
