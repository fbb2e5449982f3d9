"""CH-9.1: the conformance matrix of one version of the charter (rule pack) on the page and on the command line:
the 2025 pack has the update's rules (CH-3.5.1, CH-3.5.2 enforced; CH-10.x outside the software), the 2020 pack
has not; an unknown version is ignored on the page and refused on the command line; the default stays every rule."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from tests import demo_app
from tests.demo_app import login
from web.cli.main import main

app, demo_ctx = demo_app.app, demo_app.demo_ctx


def rule_ids(page: str) -> set[str]:
    return set(re.findall(r'<tr id="rule-([^"]+)">', page))


@pytest.mark.charter("CH-9.1")
def test_the_page_shows_the_matrix_of_the_chosen_version(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "auditor")
    every = rule_ids(client.get("/admin/conformance").get_data(as_text=True))
    of_2025 = rule_ids(client.get("/admin/conformance?charter=2025").get_data(as_text=True))
    of_2020 = rule_ids(client.get("/admin/conformance?charter=2020").get_data(as_text=True))
    assert {"CH-3.5.1", "CH-3.5.2", "CH-10.1"} <= of_2025 and not {"CH-3.5.1", "CH-10.1"} & of_2020
    assert of_2020 | of_2025 == every and {"CH-3.3", "CH-3.5", "CH-9.1"} <= of_2020
    assert rule_ids(client.get("/admin/conformance?charter=1999").get_data(as_text=True)) == every
    page = client.get("/admin/conformance?charter=2025&status=enforced").get_data(as_text=True)
    assert {"CH-3.5.1", "CH-3.5.2"} <= rule_ids(page)


@pytest.mark.charter("CH-9.1", negative=True)
def test_the_command_line_matrix_of_a_version_and_an_unknown_one_refused():
    runner = CliRunner()
    result = runner.invoke(main, ["conformance", "--repo", "--charter", "2025", "--json"])
    found = {r["id"]: r["status"] for r in json.loads(result.output)["rules"]}
    assert found["CH-3.5.1"] == "enforced" and found["CH-3.5.2"] == "enforced" and found["CH-10.3"] == "outside"
    result = runner.invoke(main, ["conformance", "--repo", "--charter", "2020", "--json"])
    assert "CH-3.5.1" not in {r["id"] for r in json.loads(result.output)["rules"]}
    result = runner.invoke(main, ["conformance", "--repo", "--charter", "1999"])
    assert result.exit_code == 2 and "1999" in result.output
