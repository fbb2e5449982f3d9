"""The conformance matrix: every charter rule is enforced and proven, or declared outside software scope."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine.services.conformance import conformance_matrix, proving_tests, read_catalogue
from web.cli import main
from web.config import PROJECT_ROOT


@pytest.fixture(scope="module")
def matrix():
    return conformance_matrix(PROJECT_ROOT)


def test_the_catalogue_lists_every_rule_of_the_shared_charter(matrix):
    assert len(matrix) >= 46
    assert {"CH-1.1", "CH-4.1.10", "CH-4.2.3", "CH-9.1"} <= {r.id for r in matrix}


def test_every_rule_is_enforced_and_proven_or_declared_outside_scope_with_a_reason(matrix):
    uncovered = [r.id for r in matrix if r.scope != "outside" and not (r.enforced_by and r.tests)]
    assert uncovered == []
    assert all(r.reason for r in matrix if r.scope == "outside")


def test_rules_of_the_procedures_are_all_in_software_scope(matrix):
    procedures = [r for r in matrix if r.id.split(".")[0] in ("CH-1", "CH-2", "CH-3", "CH-4")]
    assert procedures and all(r.scope == "software" for r in procedures)


def test_a_rule_without_enforcement_or_test_is_reported(tmp_path):
    charter = tmp_path / "docs" / "charter"
    charter.mkdir(parents=True)
    (charter / "REQUIREMENTS.md").write_text("- CH-99.1 An imaginary rule nobody enforces.\n", encoding="utf-8")
    for folder in ("workflows/bpmn", "forms/schemas", "tests"):
        (tmp_path / folder).mkdir(parents=True)
    (rule,) = conformance_matrix(tmp_path)
    assert (rule.id, rule.enforced_by, rule.tests, rule.covered) == ("CH-99.1", [], [], False)


def test_marks_are_read_from_the_test_sources(tmp_path):
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_x.py").write_text(
        'import pytest\n\n@pytest.mark.charter("CH-4.1.1")\ndef test_a():\n    pass\n', encoding="utf-8")
    assert proving_tests(tests) == {"CH-4.1.1": ["tests/test_x.py::test_a"]}


def test_outside_scope_needs_the_scope_file(tmp_path):
    (tmp_path / "REQUIREMENTS.md").write_text("- CH-5.2 Displays.\n", encoding="utf-8")
    (tmp_path / "scope.toml").write_text('[rules."CH-5.2"]\nscope = "outside"\nreason = "hardware"\n',
                                         encoding="utf-8")
    (rule,) = read_catalogue(tmp_path)
    assert (rule.scope, rule.reason, rule.covered) == ("outside", "hardware", True)


def test_cli_json_shape():
    result = CliRunner().invoke(main, ["conformance", "--json"])
    assert result.exit_code == 0, result.output
    rules = json.loads(result.output)["rules"]
    first = rules[0]
    assert {"id", "enforced_by", "tests", "scope"} <= set(first)
    by_id = {r["id"]: r for r in rules}
    assert "contrast_safety.bpmn#attest_physician_presence" in by_id["CH-4.1.10"]["enforced_by"]
    assert any("test_CH4_1_10" in t for t in by_id["CH-4.1.10"]["tests"])
