"""The incident pages (CH-5.5): declared and closed by an administrator or the site's medical lead, the banner on
every page of the site's users (not of another site's), the degraded-mode procedure with its paper form, the
back-entry page of a step handled on paper (refused outside an incident and by the same gates as a live entry),
and `telerad incident declare|close|list`."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.services.incidents import declare_incident
from engine.services.keyring import KeyRing
from engine.store.incident_models import IncidentRow
from engine.store.models import Task
from tests import demo_app
from tests.demo_app import case_of, login, open_task
from web.cli.main import main
from web.shared.formatting import PARIS

app, demo_ctx = demo_app.app, demo_app.demo_ctx
ADMIN = Actor("admin", frozenset({"administrator"}))
BANNER = 'id="incident-banner"'


def _local(moment) -> str:
    return moment.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


def _rows(ctx):
    with ctx.read() as session:
        return list(session.execute(select(IncidentRow).order_by(IncidentRow.id)).scalars())


def _status(ctx, task_id):
    with ctx.read() as session:
        return session.execute(select(Task.status).where(Task.id == task_id)).scalar_one()


@pytest.mark.charter("CH-5.5")
def test_CH5_5_a_site_lead_declares_an_incident_and_the_sites_users_see_its_banner(app, demo_ctx, clock):
    lead = login(app, demo_ctx, clock, "dr.guillou")
    assert BANNER not in lead.get("/incidents").get_data(as_text=True)
    response = lead.post("/incidents", data={"site_id": "ch-brest", "kind": "network", "side": "site",
                                             "started_at": _local(clock.now() - timedelta(hours=1)),
                                             "description": "Lien fibre coupé"})
    assert response.status_code == 302
    (row,) = _rows(demo_ctx)
    assert (row.site_id, row.kind, row.side, row.declared_by) == ("ch-brest", "network", "site", "dr.guillou")
    requester = login(app, demo_ctx, clock, "dr.martin")  # a requester of ch-brest
    page = requester.get("/inbox").get_data(as_text=True)
    assert BANNER in page and "Panne du réseau" in page and f"/incidents/{row.id}" in page
    procedure = requester.get(f"/incidents/{row.id}").get_data(as_text=True)
    assert "Fiche papier" in procedure and "Dr Marie Guillou" in procedure and "data-print-procedure" in procedure
    radiologist = login(app, demo_ctx, clock, "dr.legall")  # radiologists serve sites from afar: they see it
    assert BANNER in radiologist.get("/inbox").get_data(as_text=True)
    assert radiologist.get(f"/incidents/{row.id}").status_code == 200
    other = login(app, demo_ctx, clock, "dr.riou")  # ch-morlaix's lead: not his site
    assert BANNER not in other.get("/inbox").get_data(as_text=True)
    assert other.get(f"/incidents/{row.id}").status_code == 404
    response = lead.post(f"/incidents/{row.id}/close", data={"note": "Rétabli"}, follow_redirects=True)
    assert "Incident clos après 1 h 00 min" in response.get_data(as_text=True)
    assert _rows(demo_ctx)[0].ended_at == clock.now()
    assert BANNER not in requester.get("/inbox").get_data(as_text=True)


@pytest.mark.charter("CH-5.5", negative=True)
def test_CH5_5_another_sites_lead_and_other_roles_are_refused(app, demo_ctx, clock):
    number = declare_incident(demo_ctx, ADMIN, "ch-brest", "it", "site", clock.now())
    riou = login(app, demo_ctx, clock, "dr.riou")
    response = riou.post("/incidents", data={"site_id": "ch-brest", "kind": "it", "side": "telerad",
                                             "started_at": _local(clock.now())})
    assert response.status_code == 403
    assert riou.post(f"/incidents/{number}/close", data={}).status_code == 403
    requester = login(app, demo_ctx, clock, "dr.martin")
    assert requester.get("/incidents").status_code == 403
    assert requester.post(f"/incidents/{number}/close", data={}).status_code == 403
    assert len(_rows(demo_ctx)) == 1 and _rows(demo_ctx)[0].ended_at is None


@pytest.mark.charter("CH-5.5", negative=True)
def test_CH5_5_a_bad_declaration_on_the_page_is_refused_in_french(app, demo_ctx, clock):
    admin = login(app, demo_ctx, clock, "admin")
    for data, message in (({"started_at": ""}, "indiquez une date et une heure"),
                          ({"started_at": _local(clock.now() + timedelta(days=1))}, "dans le futur"),
                          ({"kind": "fire"}, "informatique ou réseau"),
                          ({"site_id": "nowhere"}, "Site inconnu")):
        form = {"site_id": "ch-brest", "kind": "it", "side": "site", "started_at": _local(clock.now()), **data}
        response = admin.post("/incidents", data=form)
        assert response.status_code == 400 and message in response.get_data(as_text=True)
    response = admin.post("/incidents/999/close", data={})
    assert response.status_code == 404
    assert admin.post(f"/incidents/{10 ** 30}/close", data={}).status_code == 404
    assert admin.get(f"/incidents/{10 ** 30}").status_code == 404
    assert _rows(demo_ctx) == []
    number = declare_incident(demo_ctx, ADMIN, "ch-brest", "it", "site", clock.now() - timedelta(hours=1))
    response = admin.post(f"/incidents/{number}/close", data={"ended_at": "hier"}, follow_redirects=True)
    assert "indiquez une date et une heure." in response.get_data(as_text=True)
    response = admin.post(f"/incidents/{number}/close", data={"ended_at": _local(clock.now() - timedelta(hours=2))},
                          follow_redirects=True)
    assert "elle précède son début" in response.get_data(as_text=True)
    assert _rows(demo_ctx)[0].ended_at is None


@pytest.mark.charter("CH-5.5")
def test_CH5_5_a_step_handled_on_paper_is_back_entered_from_its_page_and_shown_on_the_timeline(app, demo_ctx, clock):
    case_id = case_of(demo_ctx, patient_name="QUÉRÉ JEAN")
    task_id = open_task(demo_ctx, case_id, "acquire_images")
    start = clock.now() - timedelta(hours=2)
    declare_incident(demo_ctx, ADMIN, "ch-brest", "network", "site", start)
    client = login(app, demo_ctx, clock, "merm.leroy")
    assert f"/incidents/tasks/{task_id}/back-entry" in client.get(f"/tasks/{task_id}").get_data(as_text=True)
    page = client.get(f"/incidents/tasks/{task_id}/back-entry")
    assert page.status_code == 200 and 'name="occurred_at"' in page.get_data(as_text=True)
    response = client.post(f"/incidents/tasks/{task_id}/back-entry", data={
        "occurred_at": _local(start + timedelta(minutes=30)), "people": "Paul Leroy, fiche n° 3",
        "images_sent": "y", "protocol_followed": "y"})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert _status(demo_ctx, task_id) == "completed"
    timeline = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "saisi après coup" in timeline and "Paul Leroy, fiche n° 3" in timeline
    assert _local(start + timedelta(minutes=30)).replace("T", " ")[11:] in timeline


@pytest.mark.charter("CH-5.5", negative=True)
def test_CH5_5_back_entry_page_refuses_outside_an_incident_and_a_step_breaking_a_gate(app, demo_ctx, clock):
    case_id = case_of(demo_ctx, patient_name="QUÉRÉ JEAN")
    task_id = open_task(demo_ctx, case_id, "acquire_images")
    client = login(app, demo_ctx, clock, "merm.leroy")
    assert "back-entry-link" not in client.get(f"/tasks/{task_id}").get_data(as_text=True)  # no incident: no link
    form = {"occurred_at": _local(clock.now() - timedelta(minutes=30)), "people": "Paul Leroy",
            "images_sent": "y", "protocol_followed": "y"}
    response = client.post(f"/incidents/tasks/{task_id}/back-entry", data=form)
    assert response.status_code == 400 and "Aucun incident déclaré pour ce site" in response.get_data(as_text=True)
    declare_incident(demo_ctx, ADMIN, "ch-brest", "it", "site", clock.now() - timedelta(hours=1))
    response = client.post(f"/incidents/tasks/{task_id}/back-entry", data={**form, "images_sent": ""})
    assert response.status_code == 400  # CH-4.1.11 still applies to a back-entered acquisition
    response = client.post(f"/incidents/tasks/{task_id}/back-entry", data={**form, "occurred_at": "demain"})
    assert response.status_code == 400 and "Moment réel de l" in response.get_data(as_text=True)
    assert _status(demo_ctx, task_id) == "open"
    riou = login(app, demo_ctx, clock, "dr.riou")  # not of the case's site
    assert riou.post(f"/incidents/tasks/{task_id}/back-entry", data=form).status_code in (302, 403, 404)
    assert _status(demo_ctx, task_id) == "open"


def cli(database_url, tmp_path, *arguments):
    key_file = tmp_path / "keys.json"
    if not key_file.exists():
        KeyRing.development().save(key_file)
    env = {"TELERAD_DATABASE_URL": database_url, "TELERAD_INSTANCE_PATH": str(tmp_path / "instance"),
           "TELERAD_KEYS_FILE": str(key_file), "TELERAD_AUDIT_SYSLOG": ""}
    return CliRunner().invoke(main, ["incident", *arguments], env=env)


@pytest.mark.charter("CH-5.5")
def test_CH5_5_incidents_are_declared_listed_and_closed_from_the_command_line(demo_ctx, database_url, tmp_path):
    result = cli(database_url, tmp_path, "declare", "--site", "ch-brest", "--kind", "network", "--side", "telerad",
                 "--description", "VPN Telerad hors service")
    assert result.exit_code == 0 and "Incident n° 1 déclaré." in result.output, result.output
    listed = json.loads(cli(database_url, tmp_path, "list", "--open", "--json").output)
    assert [(i["id"], i["site"], i["side"], i["ended_at"]) for i in listed] == [(1, "ch-brest", "telerad", None)]
    result = cli(database_url, tmp_path, "close", "1", "--note", "VPN rétabli")
    assert result.exit_code == 0 and "Incident n° 1 clos après" in result.output, result.output
    assert json.loads(cli(database_url, tmp_path, "list", "--open", "--json").output) == []
    assert "clos le" in cli(database_url, tmp_path, "list").output


@pytest.mark.charter("CH-5.5", negative=True)
def test_CH5_5_bad_incident_commands_are_refused_in_french(demo_ctx, database_url, tmp_path):
    for arguments, message in ((("declare", "--site", "nowhere", "--kind", "it", "--side", "site"), "Site inconnu"),
                               (("declare", "--site", "ch-brest", "--kind", "it", "--side", "site", "--start",
                                 "hier"), "date et heure ISO attendues"),
                               (("declare", "--site", "ch-brest", "--kind", "it", "--side", "site", "--start",
                                 "2099-01-01T00:00"), "dans le futur"),
                               (("close", "42"), "Incident n° 42 inconnu")):
        result = cli(database_url, tmp_path, *arguments)
        assert result.exit_code != 0 and message in result.output, (arguments, result.output)
    assert _rows(demo_ctx) == []
