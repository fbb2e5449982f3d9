"""`telerad indicators`: the same figures as the dashboard, as a French table or JSON; bad input refused in French
(CH-6.3)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine.services.keyring import KeyRing
from tests import demo_app
from web.cli.main import main

demo_ctx = demo_app.demo_ctx
# The demo's three cases are created on the test clock's day, Monday 5 January 2026, at CH de Brest.
WEEK = ("--from", "2026-01-05", "--to", "2026-01-11")


def cli(database_url, tmp_path, *arguments):
    key_file = tmp_path / "keys.json"
    if not key_file.exists():
        KeyRing.development().save(key_file)
    env = {"TELERAD_DATABASE_URL": database_url, "TELERAD_INSTANCE_PATH": str(tmp_path / "instance"),
           "TELERAD_KEYS_FILE": str(key_file), "TELERAD_AUDIT_SYSLOG": ""}
    return CliRunner().invoke(main, ["indicators", *arguments], env=env)


@pytest.mark.charter("CH-6.3")
def test_CH6_3_the_command_prints_the_figures_as_json_and_as_a_french_table(demo_ctx, database_url, tmp_path):
    result = cli(database_url, tmp_path, *WEEK, "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["period"] == {"start": "2026-01-05", "end": "2026-01-11", "timezone": "Europe/Paris"}
    assert figures["requests"]["by_urgency"] == {"vital": 1, "urgent": 1, "scheduled": 1, "unknown": 0}
    assert figures["acceptance"]["offered"] == 3 and figures["acceptance"]["accepted"] == 1  # the wrist X-ray
    result = cli(database_url, tmp_path, *WEEK, "--site", "ch-morlaix", "--json")
    assert json.loads(result.output)["requests"]["total"] == 0
    result = cli(database_url, tmp_path, *WEEK, "--site", "ch-brest")
    assert result.exit_code == 0, result.output
    assert "Indicateurs qualité du 05/01/2026 au 11/01/2026" in result.output
    assert "Filtres : site_id = ch-brest" in result.output
    assert "Demandes (télédiagnostic et téléexpertise)" in result.output and "2026-01-05" in result.output


@pytest.mark.charter("CH-6.3", negative=True)
def test_CH6_3_bad_input_is_refused_in_french_on_the_command_line(demo_ctx, database_url, tmp_path):
    for arguments, message in ((("--from", "2026-02-30"), "AAAA-MM-JJ"),
                               (("--from", "2026-01-11", "--to", "2026-01-05"), "précède"),
                               ((*WEEK, "--site", "nowhere"), "Site inconnu"),
                               ((*WEEK, "--territory", "nowhere"), "Territoire inconnu"),
                               ((*WEEK, "--radiologist", "nobody"), "Radiologue inconnu")):
        result = cli(database_url, tmp_path, *arguments)
        assert result.exit_code != 0 and message in result.output, (arguments, result.output)
        assert "Traceback" not in result.output
