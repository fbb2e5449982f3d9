"""`telerad fees`: a CCAM table loaded by date of effect (a bad file refused whole, in French), the month's statements
computed and issued from the command line (CH-7), as JSON for scripts."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine.services.ccam_tables import list_tables
from engine.services.keyring import KeyRing
from tests.integration import fees_scenario
from web.cli.main import main

fees_ctx = fees_scenario.fees_ctx


def cli(database_url, tmp_path, *arguments):
    key_file = tmp_path / "keys.json"
    if not key_file.exists():
        KeyRing.development().save(key_file)
    env = {"TELERAD_DATABASE_URL": database_url, "TELERAD_INSTANCE_PATH": str(tmp_path / "instance"),
           "TELERAD_KEYS_FILE": str(key_file), "TELERAD_AUDIT_SYSLOG": ""}
    return CliRunner().invoke(main, ["fees", *arguments], env=env)


@pytest.mark.charter("CH-7.6")
def test_CH7_the_months_statements_from_the_command_line(fees_ctx, database_url, tmp_path):
    result = cli(database_url, tmp_path, "statement", "--month", "2025-12", "--site", "ch-brest", "--json")
    assert result.exit_code == 0, result.output
    site = json.loads(result.output)
    assert site["totals"]["due_to_radiologists_eur"] == "278.17" and site["totals"]["transmission_costs_eur"] == "90.00"
    result = cli(database_url, tmp_path, "statement", "--month", "2025-12", "--json")
    assert result.exit_code == 0, result.output
    assert {(s["scope"]["id"], s["totals"]["due_to_radiologists_eur"]) for s in json.loads(result.output)} == {
        ("dr.legall", "74.54"), ("dr.morvan", "203.63")}
    result = cli(database_url, tmp_path, "statement", "--month", "2025-12", "--radiologist", "dr.legall", "--issue")
    assert result.exit_code == 0 and "dû aux radiologues 74.54 €" in result.output, result.output
    result = cli(database_url, tmp_path, "statement", "--month", "2025-12", "--radiologist", "dr.legall", "--issue")
    assert result.exit_code == 1 and "déjà émis" in result.output
    result = cli(database_url, tmp_path, "statement", "--month", "décembre")
    assert result.exit_code == 1 and "Mois invalide" in result.output


@pytest.mark.charter("CH-7.1", negative=True)
@pytest.mark.charter("CH-7.2", negative=True)
def test_CH7_1_a_bad_ccam_file_is_refused_whole_from_the_command_line(fees_ctx, database_url, tmp_path):
    bad = tmp_path / "ccam.csv"
    bad.write_text("code,label,modality,family,price_eur,technical_share_eur\n"
                   "ACQK001,Scanographie du crâne,CT,scanner,100.00,70.00\nFORFAIT,Forfait,CT,scanner,500,0\n",
                   encoding="utf-8")
    result = cli(database_url, tmp_path, "load-ccam", str(bad), "--effective", "2026-01-01")
    assert result.exit_code == 1 and "code CCAM invalide" in result.output and "rien n'a été chargé" in result.output
    bad.write_text("code,label,modality,family,price_eur,technical_share_eur\n"
                   "ACQK001,Scanographie du crâne,CT,scanner,85.27,\n", encoding="utf-8")
    result = cli(database_url, tmp_path, "load-ccam", str(bad), "--effective", "2026-01-01")
    assert result.exit_code == 1 and "part technique" in result.output  # CH-7.2 needs it
    result = cli(database_url, tmp_path, "load-ccam", str(bad), "--effective", "janvier")
    assert result.exit_code == 1 and "Date d'effet invalide" in result.output
    assert len(list_tables(fees_ctx)) == 1
    bad.write_text("code,label,modality,family,price_eur,technical_share_eur\n"
                   "ACQK001,Scanographie du crâne,CT,scanner,100.00,70.00\n", encoding="utf-8")
    result = cli(database_url, tmp_path, "load-ccam", str(bad), "--effective", "2026-01-01")
    assert result.exit_code == 0 and "1 acte(s)" in result.output, result.output
    assert [t.sample for t in list_tables(fees_ctx)] == [False, True]
