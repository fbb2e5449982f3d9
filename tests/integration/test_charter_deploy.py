"""A telediagnosis that defeats a charter invariant is never deployed: refused by the deployment service
(deploy_library), the designer's save (findings stored with the draft, shown on the canvas) and deploy, and
`telerad deploy` / `telerad validate`, each finding naming the rule id and the element id.
SQLite and PostgreSQL (database_url fixture)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.errors import DefinitionRefused
from engine.services import designer
from engine.services.definitions import deploy_library
from engine.store.models import ProcessDefinition
from forms import default_registry
from tests import demo_app
from tests.demo_app import login
from tests.unit.test_charter_paths import CHARTER, VARIANTS, defeated, write_variant
from web.cli.main import main

app, demo_ctx = demo_app.app, demo_app.demo_ctx  # the web app on the demo data (shipped diagrams deployed)

DESIGNER = Actor("sophie", frozenset({"process_designer"}))
# one mark per rule the variants defeat: each test below tries every variant, through its entry point
CH1_2 = pytest.mark.charter("CH-1.2", negative=True)
CH4_1_6 = pytest.mark.charter("CH-4.1.6", negative=True)
CH4_1_10 = pytest.mark.charter("CH-4.1.10", negative=True)


@pytest.fixture
def charter_ctx(make_ctx):
    return make_ctx(forms=default_registry(), escalation=None, operations=None)


def expected(variant: str) -> set[tuple[str, str, str]]:
    return set(VARIANTS[variant][1])


def versions(ctx, process_id: str = "telediagnosis") -> list[int]:
    with ctx.read() as session:
        return list(session.execute(select(ProcessDefinition.version)
                                    .where(ProcessDefinition.process_id == process_id)).scalars())


@pytest.mark.charter("CH-9.1")
def test_the_tagged_diagrams_deploy(charter_ctx):
    deployed = {d.process_id for d in deploy_library(charter_ctx, Actor("setup"), CHARTER)}
    assert {"telediagnosis", "teleexpertise"} <= deployed


@CH1_2
@CH4_1_6
@CH4_1_10
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_deployment_service_refuses_a_defeated_telediagnosis(charter_ctx, tmp_path, variant):
    with pytest.raises(DefinitionRefused) as refused:
        deploy_library(charter_ctx, Actor("setup"), write_variant(variant, tmp_path / variant))
    found = {(f.rule, f.element_id, f.file) for f in refused.value.findings}
    assert expected(variant) <= found, found
    assert versions(charter_ctx) == []  # nothing of the refused diagram is stored


@CH1_2
@CH4_1_6
@CH4_1_10
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_designer_save_shows_the_findings_and_deploy_refuses(charter_ctx, variant):
    draft = designer.save_draft(charter_ctx, DESIGNER, "telediagnosis", defeated(variant), expected_revision=0)
    assert draft.error_count > 0
    stored = {(f["rule"], f["element_id"], report["file"]) for report in draft.reports for f in report["errors"]}
    assert expected(variant) <= stored, stored
    with pytest.raises(DefinitionRefused) as refused:
        designer.deploy_draft(charter_ctx, DESIGNER, "telediagnosis", expected_revision=draft.revision)
    assert {(r, e) for r, e, _ in expected(variant)} <= {(f.rule, f.element_id) for f in refused.value.findings}
    assert versions(charter_ctx) == []
    assert designer.process_info(charter_ctx, DESIGNER, "telediagnosis").draft is not None  # kept, to be fixed


@CH1_2
@CH4_1_6
@CH4_1_10
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_telerad_deploy_refuses_a_defeated_telediagnosis(charter_ctx, database_url, tmp_path, variant):
    folder = write_variant(variant, tmp_path / variant)
    env = {"TELERAD_DATABASE_URL": database_url, "TELERAD_INSTANCE_PATH": str(tmp_path / "instance")}
    result = CliRunner().invoke(main, ["deploy", str(folder)], env=env)
    assert result.exit_code != 0
    for rule, element, file in expected(variant):
        assert f"{file}:{element}: [{rule}] " in result.output, result.output
    assert versions(charter_ctx) == []


@CH1_2
@CH4_1_6
@CH4_1_10
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_telerad_validate_reports_the_rule_and_element(tmp_path, variant):
    folder = write_variant(variant, tmp_path / variant)
    result = CliRunner().invoke(main, ["validate", str(folder / "telediagnosis.bpmn"),
                                       str(folder / "contrast_safety.bpmn")])
    assert result.exit_code == 1
    for rule, element, file in expected(variant):
        assert f"{file}:{element}: error [{rule}] " in result.output, result.output


def test_telerad_deploy_accepts_the_tagged_diagrams(charter_ctx, database_url, tmp_path):
    env = {"TELERAD_DATABASE_URL": database_url, "TELERAD_INSTANCE_PATH": str(tmp_path / "instance")}
    result = CliRunner().invoke(main, ["deploy", str(CHARTER)], env=env)
    assert result.exit_code == 0, result.output
    assert "telediagnosis v1: deployed" in result.output
    assert versions(charter_ctx) == [1]


@CH4_1_10
@pytest.mark.parametrize("variant", ["contrast_gateway_never_true", "shortcut_from_protocol_to_acquisition",
                                     "called_process_lost_its_role"])
def test_designer_pages_show_the_findings_and_refuse_the_deployment(app, demo_ctx, clock, variant):
    client = login(app, demo_ctx, clock, "designer")
    draft = client.get("/designer/processes/telediagnosis/draft.json").get_json()
    files = {**draft["files"], **{name: text for name, text in defeated(variant).items() if name.endswith(".bpmn")}}
    saved = client.post("/designer/processes/telediagnosis/draft", json={"files": files, "revision": 0}).get_json()
    shown = {(f["rule"], f["element_id"], report["file"]) for report in saved["reports"] for f in report["errors"]}
    assert expected(variant) <= shown, shown
    refused = client.post("/designer/processes/telediagnosis/deploy", data={"revision": saved["revision"]})
    assert refused.status_code == 302 and refused.headers["Location"].endswith("/edit")
    assert versions(demo_ctx) == [1]
