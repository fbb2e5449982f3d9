"""Downtime incidents (CH-5.5) through the use cases, on the demo directory: declared and closed by an administrator
or a site's medical lead (dr.guillou leads ch-brest, dr.riou ch-morlaix), and the back-entry of a step handled by
phone or on paper, refused outside an incident and refused by the same charter gates as a live entry. The clock
starts on Monday 5 January 2026, 08:00 UTC."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.errors import Forbidden
from engine.services.incident_backentry import complete_back_entered, degraded_procedure
from engine.services.incidents import (
    IncidentError,
    close_incident,
    declare_incident,
    incident_figures,
    list_incidents,
    open_incidents,
)
from engine.store.audit import AuditEvent
from engine.store.incident_models import IncidentRow
from engine.store.models import Task
from forms import FormValidationError
from tests import demo_app
from tests.demo_app import case_of, open_task
from web.cli.demo_data import _actor as demo_actor

demo_ctx = demo_app.demo_ctx
ADMIN = Actor("admin", frozenset({"administrator"}))
GUILLOU = Actor("dr.guillou", frozenset({"site_lead"}), frozenset({"ch-brest"}))
RIOU = Actor("dr.riou", frozenset({"site_lead"}), frozenset({"ch-morlaix"}))
REQUESTER = Actor("dr.martin", frozenset({"requester"}), frozenset({"ch-brest"}))
ACQUIRED = {"images_sent": True, "protocol_followed": True, "technical_difficulty": False}


def _rows(ctx):
    with ctx.read() as session:
        return list(session.execute(select(IncidentRow).order_by(IncidentRow.id)).scalars())


def _events(ctx, action):
    """(event, its detail read) of every audit event of `action`."""
    with ctx.read() as session:
        events = session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars()
        return [(e, e.detail if isinstance(e.detail, dict) else json.loads(e.detail)) for e in events]


def _task_status(ctx, task_id):
    with ctx.read() as session:
        return session.execute(select(Task.status).where(Task.id == task_id)).scalar_one()


@pytest.mark.charter("CH-5.5")
def test_CH5_5_a_site_lead_declares_and_closes_an_incident_with_its_duration(demo_ctx, clock):
    start = clock.now() - timedelta(hours=2)
    number = declare_incident(demo_ctx, GUILLOU, "ch-brest", "network", "site", start, "Lien fibre coupé")
    assert [i.id for i in open_incidents(demo_ctx, REQUESTER)] == [number]  # the site's users see it
    assert open_incidents(demo_ctx, RIOU) == []  # another site's people do not
    assert [i.id for i in open_incidents(demo_ctx, ADMIN)] == [number]
    assert [i.id for i in open_incidents(demo_ctx, Actor("dr.legall", frozenset({"radiologist"})))] == [number]
    clock.advance(minutes=30)
    assert close_incident(demo_ctx, GUILLOU, number, note="Lien rétabli") == 150
    (row,) = _rows(demo_ctx)
    assert (row.ended_at, row.closed_by, row.closing_note) == (clock.now(), "dr.guillou", "Lien rétabli")
    assert open_incidents(demo_ctx, REQUESTER) == []
    assert [d["minutes"] for _e, d in _events(demo_ctx, "incident.closed")] == [150]
    assert len(_events(demo_ctx, "incident.declared")) == 1
    with demo_ctx.read() as session:
        figures = incident_figures(session, clock.now() - timedelta(days=1), clock.now(), "ch-brest")
    assert figures == {"downtime_incidents": 1, "downtime_minutes": 150}


@pytest.mark.charter("CH-5.5", negative=True)
def test_CH5_5_only_an_administrator_or_the_sites_own_lead_declares_or_closes(demo_ctx, clock):
    start = clock.now() - timedelta(minutes=10)
    with pytest.raises(Forbidden):
        declare_incident(demo_ctx, RIOU, "ch-brest", "it", "site", start)
    with pytest.raises(Forbidden):
        declare_incident(demo_ctx, REQUESTER, "ch-brest", "it", "site", start)
    number = declare_incident(demo_ctx, ADMIN, "ch-brest", "it", "telerad", start)
    with pytest.raises(Forbidden):
        close_incident(demo_ctx, RIOU, number)
    assert _rows(demo_ctx)[0].ended_at is None and [i.id for i in list_incidents(demo_ctx, RIOU)] == []


@pytest.mark.charter("CH-5.5", negative=True)
@pytest.mark.parametrize(("change", "field"), [
    ({"kind": "fire"}, "kind"), ({"side": "moon"}, "side"), ({"site_id": "nowhere"}, "site_id"),
    ({"started_at": "hier"}, "started_at"), ({"started_at": "future"}, "started_at"),
    ({"started_at": "old"}, "started_at"), ({"description": "x" * 2001}, "description"),
])
def test_CH5_5_bad_declarations_are_refused_in_french(demo_ctx, clock, change, field):
    args = {"site_id": "ch-brest", "kind": "it", "side": "site", "started_at": clock.now(), "description": ""}
    args.update(change)
    if args["started_at"] == "future":
        args["started_at"] = clock.now() + timedelta(hours=1)
    elif args["started_at"] == "old":
        args["started_at"] = clock.now() - timedelta(days=40)
    with pytest.raises(IncidentError) as refused:
        declare_incident(demo_ctx, ADMIN, **args)
    assert refused.value.field == field and _rows(demo_ctx) == []


def test_the_same_failure_is_not_declared_twice_and_an_incident_closes_once(demo_ctx, clock):
    number = declare_incident(demo_ctx, ADMIN, "ch-brest", "it", "site", clock.now())
    with pytest.raises(IncidentError, match="déjà déclaré"):
        declare_incident(demo_ctx, GUILLOU, "ch-brest", "it", "site", clock.now())
    with pytest.raises(IncidentError, match="précède"):
        close_incident(demo_ctx, ADMIN, number, clock.now() - timedelta(hours=1))
    close_incident(demo_ctx, ADMIN, number)
    with pytest.raises(IncidentError, match="déjà clos"):
        close_incident(demo_ctx, ADMIN, number)


@pytest.mark.charter("CH-5.5")
def test_CH5_5_a_step_handled_on_paper_is_back_entered_with_its_real_time_and_people(demo_ctx, clock):
    case_id = case_of(demo_ctx, patient_name="QUÉRÉ JEAN")
    task_id = open_task(demo_ctx, case_id, "acquire_images")
    start = clock.now() - timedelta(hours=3)
    number = declare_incident(demo_ctx, GUILLOU, "ch-brest", "network", "site", start)
    clock.advance(hours=1)
    close_incident(demo_ctx, GUILLOU, number)
    moment = start + timedelta(hours=1)
    complete_back_entered(demo_ctx, demo_actor("merm.leroy"), task_id, dict(ACQUIRED), moment,
                          "Paul Leroy, fiche papier n° 12")
    assert _task_status(demo_ctx, task_id) == "completed"
    ((event, detail),) = [(e, d) for e, d in _events(demo_ctx, "task.completed") if d.get("task_id") == task_id]
    assert detail["back_entry"] == {"occurred_at": moment.isoformat(), "people": "Paul Leroy, fiche papier n° 12",
                                          "incident": number}
    assert event.at == clock.now() and event.actor == "merm.leroy"  # the event's time is the true time of entry


@pytest.mark.charter("CH-5.5", negative=True)
def test_CH5_5_back_entry_outside_an_incident_of_the_site_is_refused(demo_ctx, clock):
    case_id = case_of(demo_ctx, patient_name="QUÉRÉ JEAN")
    task_id = open_task(demo_ctx, case_id, "acquire_images")
    leroy = demo_actor("merm.leroy")
    with pytest.raises(IncidentError, match="Aucun incident"):  # no incident at all
        complete_back_entered(demo_ctx, leroy, task_id, dict(ACQUIRED), clock.now() - timedelta(hours=1), "P. Leroy")
    start = clock.now() - timedelta(hours=2)
    declare_incident(demo_ctx, ADMIN, "ch-morlaix", "it", "site", start)  # another site's incident
    with pytest.raises(IncidentError, match="Aucun incident"):
        complete_back_entered(demo_ctx, leroy, task_id, dict(ACQUIRED), start + timedelta(minutes=5), "P. Leroy")
    number = declare_incident(demo_ctx, ADMIN, "ch-brest", "it", "site", start)
    close_incident(demo_ctx, ADMIN, number, start + timedelta(minutes=30))
    with pytest.raises(IncidentError, match="Aucun incident"):  # after the incident's end
        complete_back_entered(demo_ctx, leroy, task_id, dict(ACQUIRED), start + timedelta(minutes=45), "P. Leroy")
    with pytest.raises(IncidentError, match="Aucun incident"):  # before its start
        complete_back_entered(demo_ctx, leroy, task_id, dict(ACQUIRED), start - timedelta(minutes=1), "P. Leroy")
    with pytest.raises(IncidentError, match="Personnes impliquées"):
        complete_back_entered(demo_ctx, leroy, task_id, dict(ACQUIRED), start + timedelta(minutes=5), " ")
    assert _task_status(demo_ctx, task_id) == "open"


@pytest.mark.charter("CH-5.5", negative=True)
def test_CH5_5_a_back_entered_step_that_breaks_a_charter_gate_is_refused_like_a_live_one(demo_ctx, clock):
    case_id = case_of(demo_ctx, patient_name="QUÉRÉ JEAN")
    task_id = open_task(demo_ctx, case_id, "acquire_images")
    start = clock.now() - timedelta(hours=1)
    declare_incident(demo_ctx, ADMIN, "ch-brest", "network", "site", start)
    with pytest.raises(FormValidationError) as refused:  # CH-4.1.11: no acquisition without the images sent
        complete_back_entered(demo_ctx, demo_actor("merm.leroy"), task_id, {**ACQUIRED, "images_sent": False},
                              start + timedelta(minutes=10), "P. Leroy")
    assert "images_sent" in refused.value.errors
    with pytest.raises(Exception) as foreign:  # someone of another site may not complete the step, back-entered
        complete_back_entered(demo_ctx, demo_actor("dr.riou"), task_id, dict(ACQUIRED),
                              start + timedelta(minutes=10), "Dr Riou")
    assert type(foreign.value).__name__ in {"NotFound", "Forbidden", "Conflict"}
    assert _task_status(demo_ctx, task_id) == "open"
    assert not [d for _e, d in _events(demo_ctx, "task.completed") if d.get("task_id") == task_id]


def test_the_procedure_names_whom_to_call_from_the_sites_convention(demo_ctx):
    procedure = degraded_procedure(demo_ctx, "ch-brest", "Support Telerad 02 98 00 00 00")
    assert [p.username for p in procedure.medical_leads] == ["dr.guillou"]
    assert procedure.support_contact == "Support Telerad 02 98 00 00 00"
    assert procedure.h24 == (procedure.on_call is not None)


@pytest.mark.charter("CH-5.5")
def test_CH5_5_closed_incidents_are_counted_in_the_indicators_of_their_site_and_period(demo_ctx, clock):
    from datetime import date

    from engine.services.indicators import IndicatorFilters, compute_indicators

    start = clock.now() - timedelta(hours=3)  # Monday 5 January 2026, 05:00 UTC
    number = declare_incident(demo_ctx, ADMIN, "ch-brest", "network", "site", start)
    close_incident(demo_ctx, ADMIN, number, start + timedelta(minutes=95))
    declare_incident(demo_ctx, ADMIN, "ch-morlaix", "it", "telerad", start)
    brest = compute_indicators(demo_ctx, IndicatorFilters(date(2026, 1, 5), date(2026, 1, 11), site_id="ch-brest"))
    assert {k: brest["technical_incidents"][k] for k in ("downtime_incidents", "downtime_minutes")} == {
        "downtime_incidents": 1, "downtime_minutes": 95}
    before = compute_indicators(demo_ctx, IndicatorFilters(date(2025, 12, 1), date(2025, 12, 31)))
    assert before["technical_incidents"]["downtime_incidents"] == 0
    every = compute_indicators(demo_ctx, IndicatorFilters(date(2026, 1, 5), date(2026, 1, 11)))
    assert every["technical_incidents"]["downtime_incidents"] == 2
    assert every["technical_incidents"]["downtime_minutes"] == 95 + 180  # the open one up to now
