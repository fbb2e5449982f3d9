"""`telerad audit verify` detects an edited, a removed or a re-chained audit event, and, against the signed heads
exported by `telerad audit export-heads`, a rewrite recomputed with the audit key itself (issue 16, item 3)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from engine.services.keyring import KeyRing
from tests.integration.audit_support import busy_case, drop_case_views, plain_sha256, rewrite, rewrite_actor, with_key
from web.cli.main import main

pytestmark = [pytest.mark.charter("CH-5.3")]
DEV = KeyRing.development()


def cli(database_url, tmp_path, *arguments, keys: KeyRing = DEV):
    """The command with the key file of the ring the test data were written with (the development ring)."""
    key_file = tmp_path / "keys.json"
    if not key_file.exists():
        keys.save(key_file)
    env = {"TELERAD_DATABASE_URL": database_url, "TELERAD_INSTANCE_PATH": str(tmp_path / "instance"),
           "TELERAD_KEYS_FILE": str(key_file), "TELERAD_AUDIT_HEADS_FILE": str(tmp_path / "heads.jsonl"),
           "TELERAD_AUDIT_SYSLOG": ""}
    return CliRunner().invoke(main, ["audit", *arguments], env=env)


def run_verify(database_url, tmp_path, *extra):
    return cli(database_url, tmp_path, "verify", "--json", *extra)


@pytest.fixture
def busy(deployed):
    busy_case(deployed)
    return deployed


def test_intact_chain_verifies(busy, database_url, tmp_path):
    result = run_verify(database_url, tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and report["checked"] >= 3
    assert report["keys"] == {"dev-audit": report["checked"]} and report["legacy_events"] == 0
    assert any("DEVELOPMENT" in warning for warning in report["warnings"])
    assert any("no exported heads" in warning for warning in report["warnings"])


@pytest.mark.charter("CH-5.3", negative=True)
@pytest.mark.parametrize("tampering", [
    "UPDATE audit_event SET detail = '{\"task\": \"forged\"}' WHERE seq = 2",
    "UPDATE audit_event SET actor = 'someone.else' WHERE seq = 3",
    "DELETE FROM audit_event WHERE seq = 2",
    "DELETE FROM audit_event WHERE seq = (SELECT max(seq) FROM audit_event)",
])
def test_tampering_is_detected(busy, database_url, tmp_path, tampering):
    with busy.engine.begin() as connection:
        connection.execute(text(tampering))
    result = run_verify(database_url, tmp_path)
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False and report["problems"]


@pytest.mark.charter("CH-5.3", negative=True)
@pytest.mark.parametrize("change", [rewrite_actor, drop_case_views])
def test_the_review_finding_recomputed_with_plain_sha256_is_detected(busy, database_url, tmp_path, change):
    rewrite(busy, plain_sha256, change)
    result = run_verify(database_url, tmp_path)
    assert result.exit_code == 1, result.output
    assert "chain downgraded" in result.output


@pytest.mark.charter("CH-5.3", negative=True)
@pytest.mark.parametrize("change", [rewrite_actor, drop_case_views])
def test_the_review_finding_recomputed_with_the_key_is_detected_against_the_exported_heads(
        busy, database_url, tmp_path, change):
    exported = cli(database_url, tmp_path, "export-heads", "--json")
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.output.splitlines()[-1])["heads"] == 2
    assert run_verify(database_url, tmp_path).exit_code == 0
    rewrite(busy, with_key(DEV.audit_key_id, DEV.audit[0].material), change)
    result = run_verify(database_url, tmp_path)
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["heads"]["lines"] == 1
    assert {p["message"] for p in report["problems"]} <= {
        "exported heads: chain rewritten since this head was exported",
        "exported heads: exported head missing: events were removed"}
    text_output = cli(database_url, tmp_path, "verify", "--heads", str(tmp_path / "heads.jsonl"))
    assert text_output.exit_code == 1 and "CHAIN BROKEN" in text_output.output


def test_a_missing_heads_file_given_on_the_command_line_is_an_error(busy, database_url, tmp_path):
    result = run_verify(database_url, tmp_path, "--heads", str(tmp_path / "nowhere.jsonl"))
    assert result.exit_code == 1 and "no such heads file" in result.output


@pytest.mark.charter("CH-5.3", negative=True)
def test_events_made_with_another_key_file_do_not_verify(busy, database_url, tmp_path):
    result = cli(database_url, tmp_path, "verify", "--json", keys=KeyRing.generate())
    assert result.exit_code == 1
    assert "audit key 'dev-audit' is not in the key file" in result.output
