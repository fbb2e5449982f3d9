"""`telerad audit verify` detects an edited, a removed or a re-chained audit event."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from engine.services.instances import start_instance
from engine.services.tasks import complete_task
from tests.integration.test_engine_services import REQUESTER, SUBMIT, only_task
from web.cli.main import main

pytestmark = [pytest.mark.charter("CH-5.3")]


def run_verify(database_url, tmp_path):
    env = {"TELERAD_DATABASE_URL": database_url, "TELERAD_INSTANCE_PATH": str(tmp_path / "instance")}
    return CliRunner().invoke(main, ["audit", "verify", "--json"], env=env)


@pytest.fixture
def busy(deployed):
    start_instance(deployed, REQUESTER, "engine_flow", {}, site_id="site-a")
    complete_task(deployed, REQUESTER, only_task(deployed, REQUESTER).id, dict(SUBMIT))
    return deployed


def test_intact_chain_verifies(busy, database_url, tmp_path):
    result = run_verify(database_url, tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and report["checked"] >= 3


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
