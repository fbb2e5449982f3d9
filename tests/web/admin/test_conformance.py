"""The charter conformance matrix in the product (/admin/conformance): administrators and auditors see every
rule with its status and where each enforcement is reached from, for the deployed versions; clinicians are
refused on the server."""

from __future__ import annotations

import re

import pytest

from engine.services.conformance import conformance_matrix
from engine.services.conformance_sources import deployed_diagrams, registry_forms
from tests import demo_app
from tests.demo_app import login
from web.config import PROJECT_ROOT

app, demo_ctx = demo_app.app, demo_app.demo_ctx  # the demo data, with the library deployed


def no_inline_code(page):
    return not re.search(r"<script(?![^>]*\bsrc=)", page) and " style=" not in page and "<style" not in page


def row_of(page, rule_id):
    match = re.search(rf'<tr id="rule-{re.escape(rule_id)}">.*?</tr>', page, re.S)
    assert match, rule_id
    return match.group(0)


@pytest.mark.parametrize("username", ["admin", "auditor"])
def test_administrators_and_auditors_see_the_matrix_of_the_deployed_versions(app, demo_ctx, clock, username):
    client = login(app, demo_ctx, clock, username)
    response = client.get("/admin/conformance")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert no_inline_code(page)
    assert "Content-Security-Policy" in response.headers
    expected = conformance_matrix(PROJECT_ROOT, deployed_diagrams(demo_ctx), registry_forms(demo_ctx))
    assert len(re.findall(r'<tr id="rule-', page)) == len(expected)
    labels = {"enforced": "Appliquée", "declared_only": "Déclarée seulement", "missing": "Manquante",
              "outside": "Hors logiciel"}
    for rule in expected:
        row = row_of(page, rule.id)
        assert labels[rule.status] in row
        for enforcement in rule.enforced_by:
            assert enforcement.where.replace("<", "&lt;").replace(">", "&gt;") in row.replace("&#39;", "'")
    candidate_pool = row_of(page, "CH-3.3")
    assert "procédure déployée telediagnosis v1" in candidate_pool  # the deployed version, not the files
    assert "opération telerad.candidate_pool ← telediagnosis.bpmn#" in candidate_pool
    outside = row_of(page, "CH-5.2")
    assert "Hors logiciel" in outside


def test_the_status_filter_shows_only_the_rules_of_that_status(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "auditor")
    page = client.get("/admin/conformance?status=outside").get_data(as_text=True)
    shown = re.findall(r'<tr id="rule-([^"]+)"', page)
    # CH-6.2 and CH-6.4 are in scope (the convention's content, issue 19, item 5); CH-10.x: the 2025 pack
    assert shown == ["CH-5.2", "CH-5.4", "CH-10.1", "CH-10.2", "CH-10.3"]
    assert '<option value="outside" selected>' in page
    everything = client.get("/admin/conformance?status=nonsense")  # an unknown filter shows every rule
    assert everything.status_code == 200
    assert len(re.findall(r'<tr id="rule-', everything.get_data(as_text=True))) >= 46


@pytest.mark.parametrize("username", ["dr.martin", "dr.legall", "designer", "dr.guillou"])
def test_clinicians_and_designers_are_refused_on_the_server(app, demo_ctx, clock, username):
    client = login(app, demo_ctx, clock, username)
    response = client.get("/admin/conformance")
    assert response.status_code in (403, 404)
    assert "rule-CH-" not in response.get_data(as_text=True)


def test_anonymous_visitors_are_sent_to_the_login_page(app):
    response = app.test_client().get("/admin/conformance")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
