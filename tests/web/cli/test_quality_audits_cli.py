"""`telerad audit-report`: a quarter's quality audit report issued from the command line, a new version each time,
listed; bad input refused in French (CH-6.3)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine.services.keyring import KeyRing
from engine.store.quality_audit_models import QualityAuditReport
from tests import demo_app
from tests.integration import quality_audit_scenario as scenario
from web.cli.main import main

demo_ctx = demo_app.demo_ctx


def cli(database_url, tmp_path, *arguments):
    key_file = tmp_path / "keys.json"
    if not key_file.exists():
        KeyRing.development().save(key_file)
    env = {"TELERAD_DATABASE_URL": database_url, "TELERAD_INSTANCE_PATH": str(tmp_path / "instance"),
           "TELERAD_KEYS_FILE": str(key_file), "TELERAD_AUDIT_SYSLOG": ""}
    return CliRunner().invoke(main, ["audit-report", *arguments], env=env)


@pytest.mark.charter("CH-6.3")
def test_CH6_3_a_report_is_issued_and_listed_from_the_command_line(demo_ctx, clock, database_url, tmp_path):
    built = scenario.build(demo_ctx, clock)
    result = cli(database_url, tmp_path, "issue", "--quarter", "2026-Q1", "--site", "ch-brest", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["version"], report["issued_by"], report["quarter"]) == (1, "cli", "2026-Q1")
    assert report["notable_counts"] == {"overdue": 1, "refusal": 1, "tier4": 1, "identity_hold": 1}
    assert [c["case_id"] for c in report["notable_cases"]][:2] == [built.vital, built.refused]
    result = cli(database_url, tmp_path, "issue", "--quarter", "2026-Q1", "--territory", "brest")
    assert result.exit_code == 0 and "version 1 (4 dossier(s) marquant(s))" in result.output, result.output
    result = cli(database_url, tmp_path, "issue", "--quarter", "2026-Q1", "--site", "ch-brest")
    assert result.exit_code == 0 and "CH de Brest (urgences), 2026-Q1, version 2" in result.output, result.output
    listed = json.loads(cli(database_url, tmp_path, "list", "--json").output)
    assert sorted((r["scope_id"], r["version"]) for r in listed) == [("brest", 1), ("ch-brest", 1), ("ch-brest", 2)]


@pytest.mark.charter("CH-6.3", negative=True)
def test_CH6_3_bad_input_is_refused_in_french_on_the_command_line(demo_ctx, database_url, tmp_path):
    for arguments, message in ((("--quarter", "2026-Q5", "--site", "ch-brest"), "Trimestre invalide"),
                               (("--quarter", "2026-Q1", "--site", "nowhere"), "Site inconnu"),
                               (("--quarter", "2026-Q1"), "soit --site, soit --territory"),
                               (("--quarter", "2026-Q1", "--site", "ch-brest", "--territory", "brest"), "soit --site"),
                               (("--quarter", "2099-Q1", "--site", "ch-brest"), "pas commencé")):
        result = cli(database_url, tmp_path, "issue", *arguments)
        assert result.exit_code != 0 and message in result.output, (arguments, result.output)
    with demo_ctx.read() as session:
        assert session.execute(select(QualityAuditReport)).first() is None
