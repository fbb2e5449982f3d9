"""`telerad charter`: list the versions and the organisations' choices, switch an organisation from a date, declare
a radiologist's activity, print the shares (CH-9.1, CH-3.5); bad input refused in French, nothing written."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from engine.services.keyring import KeyRing
from engine.store.charter_pack_models import ActivityDeclaration, CharterPackAssignment
from tests import demo_app
from web.cli.main import main

demo_ctx = demo_app.demo_ctx


def cli(database_url, tmp_path, *arguments):
    key_file = tmp_path / "keys.json"
    if not key_file.exists():
        KeyRing.development().save(key_file)
    env = {"TELERAD_DATABASE_URL": database_url, "TELERAD_INSTANCE_PATH": str(tmp_path / "instance"),
           "TELERAD_KEYS_FILE": str(key_file), "TELERAD_AUDIT_SYSLOG": ""}
    return CliRunner().invoke(main, ["charter", *arguments], env=env)


def count(ctx, model) -> int:
    with ctx.read() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.mark.charter("CH-9.1")
@pytest.mark.charter("CH-3.5")
def test_assign_list_declare_and_shares(demo_ctx, database_url, tmp_path):
    result = cli(database_url, tmp_path, "assign", "territory:brest", "2025", "--from", "2099-01-01",
                 "--over-cap", "warn", "--cap", "25")
    assert result.exit_code == 0 and "charte 2025" in result.output, result.output
    listed = json.loads(cli(database_url, tmp_path, "list", "--json").output)
    assert {p["id"] for p in listed["packs"]} == {"2020", "2025"}
    assert [(a["organisation"], a["pack"], a["from"], a["over_cap_mode"], a["share_cap_percent"], a["by"])
            for a in listed["assignments"]] == [("territory:brest", "2025", "2099-01-01", "warn", 25, "cli")]
    assert "territory:morlaix" in {o["key"] for o in listed["organisations"]}
    today = date.today()
    result = cli(database_url, tmp_path, "declare", "dr.morvan", "--from", (today - timedelta(days=30)).isoformat(),
                 "--to", today.isoformat(), "--acts", "1200")
    assert result.exit_code == 0, result.output
    found = {s["username"]: s for s in json.loads(cli(database_url, tmp_path, "shares", "--json").output)["shares"]}
    assert (found["dr.morvan"]["declared_acts"], found["dr.morvan"]["exclusive"]) == (1200, False)
    assert found["dr.legall"]["exclusive"] is True  # nothing declared for him in this demo


@pytest.mark.charter("CH-9.1", negative=True)
def test_bad_input_is_refused_in_french_and_nothing_is_written(demo_ctx, database_url, tmp_path):
    for arguments, message in ((("assign", "territory:brest", "2025", "--from", "2020-01-01"), "passée"),
                               (("assign", "territory:nowhere", "2025", "--from", "2099-01-01"), "Territoire inconnu"),
                               (("assign", "territory:brest", "2025", "--from", "demain"), "AAAA-MM-JJ"),
                               (("assign", "territory:brest", "2025", "--from", "2099-01-01", "--cap", "0"),
                                "pourcentage"),
                               (("declare", "dr.martin", "--from", "2025-01-01", "--to", "2025-12-31", "--acts", "3"),
                                "n'est pas un radiologue"),
                               (("declare", "dr.morvan", "--from", "2025-12-31", "--to", "2025-01-01", "--acts", "3"),
                                "fin de la période")):
        result = cli(database_url, tmp_path, *arguments)
        assert result.exit_code != 0 and message in result.output, (arguments, result.output)
    assert count(demo_ctx, CharterPackAssignment) == 0 and count(demo_ctx, ActivityDeclaration) == 0
