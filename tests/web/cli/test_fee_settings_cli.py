"""`telerad fees settings list|set` (CH-6.4): the remuneration settings from the command line, audited as done by
"cli"; a bad value refused in French with nothing written; the statement computed afterwards uses the new value."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from engine.services.fee_statements import Scope, issue_statement, parse_month
from engine.store.fee_setting_models import FeeSetting
from engine.store.models import AuditEvent
from tests.integration import fees_scenario
from tests.web.cli.test_fees_cli import cli

fees_ctx = fees_scenario.fees_ctx


def _counts(ctx):
    with ctx.read() as session:
        return (session.execute(select(func.count()).select_from(FeeSetting)).scalar_one(),
                session.execute(select(func.count()).select_from(AuditEvent).where(
                    AuditEvent.action == "fees.setting_changed")).scalar_one())


@pytest.mark.charter("CH-6.4")
@pytest.mark.charter("CH-7.6")
def test_CH6_4_settings_listed_and_set_from_the_command_line(fees_ctx, database_url, tmp_path):
    result = cli(database_url, tmp_path, "settings", "list")
    assert result.exit_code == 0, result.output
    assert "transmission_costs       90.00 €  (valeur par défaut, à fixer dans la convention de rémunération)" \
        in result.output and "Site CH de Morlaix (ch-morlaix) :" in result.output  # the demo's own value
    result = cli(database_url, tmp_path, "settings", "set", "transmission_costs", "120", "--effective", "2025-12-01",
                 "--site", "ch-brest", "--reason", "Convention du CH de Brest, article 7")
    assert result.exit_code == 0 and "120.00 € pour le site ch-brest" in result.output, result.output
    result = cli(database_url, tmp_path, "settings", "list", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [(v["name"], v["amount_eur"], v["default"]) for v in listed["organisation"]] == [
        ("on_call_fee", "40.00", True), ("teleexpertise_fee", "50.00", True), ("transmission_costs", "90.00", True)]
    assert [(s["site_id"], s["values"][2]["amount_eur"], s["values"][2]["site_id"]) for s in listed["sites"]] == [
        ("ch-brest", "120.00", "ch-brest"), ("ch-morlaix", "120.00", "ch-morlaix")]
    assert [(h["set_by"], h["effective_from"], h["reason"]) for h in listed["history"]][0] == (
        "cli", "2025-12-01", "Convention du CH de Brest, article 7")
    result = cli(database_url, tmp_path, "statement", "--month", "2025-12", "--site", "ch-brest", "--json")
    site = json.loads(result.output)["totals"]
    assert (site["transmission_costs_eur"], site["site_net_eur"]) == ("120.00", "-37.14")  # 82.86 - 120.00
    assert _counts(fees_ctx) == (2, 2)  # with the demo's ch-morlaix value


@pytest.mark.charter("CH-6.4", negative=True)
@pytest.mark.charter("CH-7.4", negative=True)
def test_CH6_4_bad_settings_are_refused_from_the_command_line(fees_ctx, database_url, tmp_path):
    issue_statement(fees_ctx, fees_scenario.ADMIN, Scope("radiologist", "dr.morvan"), parse_month("2025-12"))
    for arguments, options, message in (
            (["on_call_fee", "-5"], [], "négatif"), (["on_call_fee", "12.345"], [], "deux décimales"),
            (["teleexpertise_fee", "0"], [], "non nulle"), (["prime", "100"], [], "Paramètre inconnu"),
            (["on_call_fee", "45"], ["--site", "ch-nulle-part"], "Site inconnu"),
            (["on_call_fee", "45"], ["--effective", "2026-13-01"], "Date d'effet invalide"),
            (["on_call_fee", "45"], ["--effective", "2025-12-20"], "2025-12 est déjà émis")):
        effective = [] if "--effective" in options else ["--effective", "2026-02-01"]
        result = cli(database_url, tmp_path, "settings", "set", *options, *effective, "--reason", "Convention", "--",
                     *arguments)
        assert result.exit_code == 1 and message in result.output, (arguments, result.output)
        assert "Rien n'a été enregistré" in result.output
    assert _counts(fees_ctx) == (1, 1)  # the demo's ch-morlaix value only
    result = cli(database_url, tmp_path, "settings", "set", "on_call_fee", "45")
    assert result.exit_code == 2 and "--effective" in result.output  # required options
