"""Process designer pages on the demo data: only designers get in; drafts saved as JSON with their findings;
deploy, import, download, diff, migration dry run and form schemas through the browser's routes."""

from __future__ import annotations

import io
import json
import re

import pytest

from engine.domain.actors import Actor
from engine.services import designer
from tests import demo_app
from tests.demo_app import login

app, demo_ctx = demo_app.app, demo_app.demo_ctx  # the fixtures of the clinician pages (demo data)

DESIGNER = Actor("designer", frozenset({"process_designer"}))
SCRIPT_TASK = '<bpmn:scriptTask id="sneaky" name="x"><bpmn:script>print(1)</bpmn:script></bpmn:scriptTask>'


@pytest.fixture
def client(app, demo_ctx, clock):
    return login(app, demo_ctx, clock, "designer")


def _draft(client) -> dict:
    response = client.get("/designer/processes/telediagnosis/draft.json")
    assert response.status_code == 200
    return response.get_json()


def test_every_designer_route_refuses_clinicians(app, demo_ctx, clock):
    clinician = login(app, demo_ctx, clock, "dr.legall")
    for method, url in (("get", "/designer/"), ("get", "/designer/processes/telediagnosis"),
                        ("get", "/designer/processes/telediagnosis/edit"),
                        ("get", "/designer/processes/telediagnosis/draft.json"),
                        ("post", "/designer/processes/telediagnosis/draft"),
                        ("post", "/designer/processes/telediagnosis/deploy"),
                        ("post", "/designer/processes/telediagnosis/discard"), ("post", "/designer/import"),
                        ("get", "/designer/versions/1"), ("get", "/designer/versions/1/files/telediagnosis.bpmn"),
                        ("get", "/designer/forms/td_report.schema.json"), ("post", "/designer/forms/preview"),
                        ("post", "/designer/forms/td_report.schema.json"), ("get", "/designer/forms.json"),
                        ("get", "/designer/processes/telediagnosis/diff?from=1&to=1"),
                        ("get", "/designer/processes/telediagnosis/migrate?from=1&to=1")):
        assert getattr(clinician, method)(url).status_code == 403, url
    assert app.test_client().get("/designer/").status_code == 302  # anonymous: to the login page


def test_save_shows_findings_with_element_ids_then_deploy_makes_a_new_version(client, demo_ctx):
    page = client.get("/designer/").get_data(as_text=True)
    assert "telediagnosis" in page and "Procédures" in page
    draft = _draft(client)
    assert draft["revision"] == 0 and "telediagnosis.bpmn" in draft["files"]
    assert 'id="designer"' in client.get("/designer/processes/telediagnosis/edit").get_data(as_text=True)

    files = dict(draft["files"])
    files["telediagnosis.bpmn"] = files["telediagnosis.bpmn"].replace("<bpmn:startEvent ",
                                                                      SCRIPT_TASK + "<bpmn:startEvent ", 1)
    saved = client.post("/designer/processes/telediagnosis/draft", json={"files": files, "revision": 0}).get_json()
    assert saved["revision"] == 1 and saved["error_count"] > 0
    assert any(f["element_id"] == "sneaky" and f["rule"] == "no-script" and f["message"].startswith(
        "Tâche de script interdite") for r in saved["reports"] for f in r["errors"])
    refused = client.post("/designer/processes/telediagnosis/deploy", data={"revision": 1})
    assert refused.status_code == 302 and refused.headers["Location"].endswith("/edit")

    stale = client.post("/designer/processes/telediagnosis/draft", json={"files": draft["files"], "revision": 0})
    assert stale.status_code == 409 and "entre-temps" in stale.get_json()["error"]
    assert client.post("/designer/processes/telediagnosis/draft", json={"files": "x"}).status_code == 400

    files["telediagnosis.bpmn"] = draft["files"]["telediagnosis.bpmn"].replace(
        'name="Rédiger la demande"', 'name="Rédiger la demande d\'examen"', 1)
    fixed = client.post("/designer/processes/telediagnosis/draft", json={"files": files, "revision": 1})
    assert fixed.get_json()["error_count"] == 0
    deployed = client.post("/designer/processes/telediagnosis/deploy", data={"revision": 2}, follow_redirects=True)
    page = deployed.get_data(as_text=True)
    assert "Version 2 déployée" in page and 'data-version="2"' in page


def test_versions_can_be_downloaded_and_compared(client, demo_ctx):
    info = designer.process_info(demo_ctx, DESIGNER, "telediagnosis")
    first = info.latest.definition_id
    files = dict(designer.open_draft(demo_ctx, DESIGNER, "telediagnosis").files)
    files["telediagnosis.bpmn"] = files["telediagnosis.bpmn"].replace('name="Rédiger la demande"',
                                                                      'name="Rédiger la demande d\'examen"', 1)
    designer.save_draft(demo_ctx, DESIGNER, "telediagnosis", files, 0)
    second = designer.deploy_draft(demo_ctx, DESIGNER, "telediagnosis", 1).definition_id

    download = client.get(f"/designer/versions/{second}/files/telediagnosis.bpmn?download=1")
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]
    assert "Rédiger la demande d'examen" in download.get_data(as_text=True)
    assert client.get(f"/designer/versions/{second}/files/nope.bpmn").status_code == 404
    missing = client.get("/designer/versions/999999")  # raised by the use case, answered by the blueprint
    assert missing.status_code == 404 and "Page introuvable" in missing.get_data(as_text=True)
    assert client.get("/designer/processes/nope/draft.json").status_code == 404
    assert client.get("/designer/processes/nope").status_code == 404
    assert "telediagnosis.bpmn" in client.get(f"/designer/versions/{second}").get_data(as_text=True)

    diff = client.get(f"/designer/processes/telediagnosis/diff?from={first}&to={second}").get_data(as_text=True)
    assert 'data-changed="request"' in diff
    assert client.get(f"/designer/processes/other/diff?from={first}&to={second}").status_code == 404


def test_importing_a_broken_file_answers_with_findings(client):
    response = client.post("/designer/import", data={"file": (io.BytesIO(b"<not xml"), "broken.bpmn")},
                           content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "Import refusé" in page
    assert "n&#39;est pas un XML bien formé" in page or "n'est pas un XML bien formé" in page
    response = client.post("/designer/import", data={}, content_type="multipart/form-data")
    assert response.status_code == 302


def test_form_schema_preview_and_save_as_a_new_key(client, demo_ctx):
    page = client.get("/designer/forms/td_report.schema.json").get_data(as_text=True)
    assert "form-schema" in page and "Aperçu" in page
    schema = designer.form_schema(demo_ctx, DESIGNER, "td_report.schema.json")
    schema["properties"]["extra_note"] = {"type": "string", "title": "Remarque du concepteur"}
    preview = client.post("/designer/forms/preview", data=json.dumps(schema), content_type="text/plain")
    assert preview.status_code == 200 and "Remarque du concepteur" in preview.get_json()["html"]
    bad = client.post("/designer/forms/preview", data="{", content_type="text/plain")
    assert bad.status_code == 422 and "JSON invalide" in bad.get_json()["error"]

    saved = client.post("/designer/forms/td_report.schema.json", data={"schema": json.dumps(schema)})
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/designer/forms/td_report.v2.schema.json")
    assert "td_report.v2.schema.json" in client.get("/designer/forms.json").get_json()["forms"]
    refused = client.post("/designer/forms/td_report.schema.json", data={"schema": '{"type": "array"}'})
    assert refused.status_code == 422 and "objet" in refused.get_data(as_text=True)
    # a form that would let the reporting radiologist write the engine's offer (its charter pack, its tier) into
    # the case is refused, as is one that accepts fields it does not declare
    forged = {**schema, "properties": {**schema["properties"], "offer": {"type": "object"}}}
    refused = client.post("/designer/forms/td_report.schema.json", data={"schema": json.dumps(forged)})
    assert refused.status_code == 422 and "offer" in refused.get_data(as_text=True)
    opened = {key: value for key, value in schema.items() if key != "additionalProperties"}
    refused = client.post("/designer/forms/td_report.schema.json", data={"schema": json.dumps(opened)})
    assert refused.status_code == 422 and "additionalProperties" in refused.get_data(as_text=True)
    assert "td_report.v3.schema.json" not in client.get("/designer/forms.json").get_json()["forms"]


def test_migration_dry_run_then_migrate_the_ticked_cases(client, demo_ctx):
    from sqlalchemy import select

    from engine.store.models import AuditEvent, ProcessInstance

    info = designer.process_info(demo_ctx, DESIGNER, "telediagnosis")
    first = info.latest.definition_id
    running = info.latest.running
    assert running >= 3  # the demo cases
    files = dict(designer.open_draft(demo_ctx, DESIGNER, "telediagnosis").files)
    files["telediagnosis.bpmn"] = files["telediagnosis.bpmn"].replace(
        'name="Accepter le dossier"', 'name="Accepter ou décliner le dossier"', 1)
    designer.save_draft(demo_ctx, DESIGNER, "telediagnosis", files, 0)
    second = designer.deploy_draft(demo_ctx, DESIGNER, "telediagnosis", 1).definition_id

    url = f"/designer/processes/telediagnosis/migrate?from={first}&to={second}"
    page = client.get(url).get_data(as_text=True)
    safe = [int(c) for c in re.findall(r'name="case_id" value="(\d+)" id="case-\d+" checked', page)]
    assert len(safe) == running, page  # a relabel blocks no case
    response = client.post(url, data={"case_id": [str(safe[0])]}, follow_redirects=True)
    assert "1 dossier(s) migré(s) vers la version 2" in response.get_data(as_text=True)
    with demo_ctx.read() as session:
        assert session.get(ProcessInstance, safe[0]).definition_id == second
        assert session.get(ProcessInstance, safe[1]).definition_id == first
        migrated = session.execute(select(AuditEvent.action).where(AuditEvent.instance_id == safe[0])).scalars().all()
    assert "instance.migrated" in migrated
    assert client.post(url, data={}).status_code == 200  # nothing ticked: told so, nothing done
    assert client.get(f"/designer/processes/teleexpertise/migrate?from={first}&to={second}").status_code == 404


@pytest.mark.charter("CH-9.1", negative=True)
def test_CH9_1_a_new_version_moves_no_running_case_and_a_clinician_cannot_migrate_one(app, demo_ctx, clock):
    from sqlalchemy import select

    from engine.store.models import AuditEvent, ProcessInstance

    info = designer.process_info(demo_ctx, DESIGNER, "telediagnosis")
    first = info.latest.definition_id
    files = dict(designer.open_draft(demo_ctx, DESIGNER, "telediagnosis").files)
    files["telediagnosis.bpmn"] = files["telediagnosis.bpmn"].replace(
        'name="Accepter le dossier"', 'name="Accepter ou décliner le dossier"', 1)
    designer.save_draft(demo_ctx, DESIGNER, "telediagnosis", files, 0)
    second = designer.deploy_draft(demo_ctx, DESIGNER, "telediagnosis", 1).definition_id
    with demo_ctx.read() as session:
        running = session.execute(select(ProcessInstance.id).where(
            ProcessInstance.process_id == "telediagnosis", ProcessInstance.status == "running")).scalars().all()
        assert {session.get(ProcessInstance, i).definition_id for i in running} == {first}  # none moved by deploy
    url = f"/designer/processes/telediagnosis/migrate?from={first}&to={second}"
    for username in ("dr.legall", "dr.martin"):
        clinician = login(app, demo_ctx, clock, username)
        assert clinician.post(url, data={"case_id": [str(i) for i in running]}).status_code == 403
    with demo_ctx.read() as session:
        assert {session.get(ProcessInstance, i).definition_id for i in running} == {first}
        assert session.execute(select(AuditEvent).where(AuditEvent.action == "instance.migrated")).first() is None


def test_only_the_modeler_page_allows_the_properties_panels_two_style_attributes(app, demo_ctx, clock):
    import base64
    import hashlib

    client = login(app, demo_ctx, clock, "designer")
    modeler = client.get("/designer/processes/telediagnosis/edit").headers["Content-Security-Policy"]
    for value in ("height: 100%", "flex: none; height: auto"):
        digest = base64.b64encode(hashlib.sha256(value.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in modeler
    assert "'unsafe-hashes'" in modeler and "unsafe-inline" not in modeler and "script-src 'self';" in modeler
    elsewhere = client.get("/designer/").headers["Content-Security-Policy"]
    assert "unsafe-hashes" not in elsewhere and "style-src 'self';" in elsewhere
