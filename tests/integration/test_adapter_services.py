"""The services the HL7 and DICOM adapters call instead of the store: case lookups, the images_received wait, site
checks and global audit events in the adapter's own transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.services.audit import record_global_event, verify_audit
from engine.services.case_lookup import (
    CaseAccession,
    CaseRef,
    case_accession,
    case_site,
    latest_case_by_accession,
    latest_site_case_by_accession,
    sites_of_cases,
    with_case_status,
)
from engine.services.definitions import deploy_library
from engine.services.instances import start_instance
from engine.services.messages import waiting_for_message
from engine.services.site_lookup import site_exists, with_site_name
from engine.services.tasks import complete_task, list_tasks
from engine.store.directory_models import SiteRow, TerritoryRow
from engine.store.models import AuditEvent, ProcessInstance, Task
from tests.conftest import DATA

SITE_A = Actor("dr.a", frozenset({"requester", "radiologist"}), frozenset({"site-a"}))
SITE_B = Actor("dr.b", frozenset({"requester", "radiologist"}), frozenset({"site-b"}))


@pytest.fixture
def deployed(ctx):
    deploy_library(ctx, Actor("designer"), DATA / "bpmn")
    return ctx


def _submitted(ctx, actor: Actor, site_id: str, accession: str) -> int:
    case_id = start_instance(ctx, actor, "engine_flow", {}, site_id=site_id)
    task = next(t for t in list_tasks(ctx, actor) if t.instance_id == case_id)
    complete_task(ctx, actor, task.id, {"accepted": True, "urgency": "urgent", "accession_number": accession})
    return case_id


def _review(ctx, actor: Actor, case_id: int) -> None:
    task = next(t for t in list_tasks(ctx, actor) if t.instance_id == case_id and t.spec_name == "review")
    complete_task(ctx, actor, task.id, {})


def test_cases_are_found_by_accession_number_and_site(deployed):
    ctx = deployed
    first = _submitted(ctx, SITE_A, "site-a", "ACC-7")
    second = _submitted(ctx, SITE_B, "site-b", "ACC-7")  # the same number at another site, later
    assert latest_case_by_accession(ctx, "ACC-7") == CaseRef(second, "site-b", "running")
    assert latest_case_by_accession(ctx, "ACC-8") is None
    assert latest_site_case_by_accession(ctx, "ACC-7", "site-a") == first
    assert latest_site_case_by_accession(ctx, "ACC-7", "site-c") is None
    assert sites_of_cases(ctx, [first, second, 999]) == {first: "site-a", second: "site-b"}
    assert case_site(ctx, second) == "site-b"
    with ctx.read() as session:
        assert case_accession(session, first) == CaseAccession("running", "ACC-7")
        statuses = session.execute(with_case_status(select(Task.spec_name), Task.instance_id)
                                   .where(Task.instance_id == first).order_by(Task.spec_name)).all()
    assert [tuple(row) for row in statuses] == [("review", "running"), ("submit", "running")]


def test_a_case_waits_for_images_only_at_its_acquisition_step(deployed):
    ctx = deployed
    case_id = _submitted(ctx, SITE_A, "site-a", "ACC-1")
    with ctx.read() as session:
        assert not waiting_for_message(session, case_id, "images_received", {"accession_number": "ACC-1"})
    _review(ctx, SITE_A, case_id)
    with ctx.read() as session:
        assert waiting_for_message(session, case_id, "images_received", {"accession_number": "ACC-1"})
        assert not waiting_for_message(session, case_id, "images_received", {"accession_number": "ACC-2"})
        assert not waiting_for_message(session, case_id, "other_message", {"accession_number": "ACC-1"})


def test_sites_are_checked_and_named_inside_the_callers_transaction(deployed):
    ctx = deployed
    with ctx.write() as session:
        session.add(TerritoryRow(id="t1", name="Finistère", department="29", region="Bretagne"))
        session.flush()
        session.add(SiteRow(id="site-a", name="CH de Brest", territory_id="t1"))
        session.flush()
        assert site_exists(session, "site-a") and not site_exists(session, "site-z")
        session.commit()
    case_id = start_instance(ctx, SITE_A, "engine_flow", {}, site_id="site-a")
    start_instance(ctx, SITE_B, "engine_flow", {}, site_id="site-b")  # no such site: left out by the join
    with ctx.read() as session:
        rows = session.execute(with_site_name(select(ProcessInstance.id), ProcessInstance.site_id)).all()
    assert [tuple(row) for row in rows] == [(case_id, "CH de Brest")]


def test_a_global_event_is_written_with_the_callers_change_and_chained(deployed):
    ctx = deployed
    case_id = _submitted(ctx, SITE_A, "site-a", "ACC-3")
    with ctx.write() as session:
        record_global_event(session, "admin", "hl7.message_read", {"message": 4}, ctx.clock.now(), case_id=case_id)
        session.rollback()  # not committed: nothing written
    with ctx.write() as session:
        record_global_event(session, "admin", "hl7.message_read", {"message": 5}, ctx.clock.now(), case_id=case_id)
        record_global_event(session, "admin", "hl7.outbox_retry", {"row": None, "rows": 0}, ctx.clock.now())
        session.commit()
    with ctx.read() as session:
        events = session.execute(select(AuditEvent.chain, AuditEvent.actor, AuditEvent.action, AuditEvent.instance_id)
                                 .where(AuditEvent.actor == "admin").order_by(AuditEvent.id)).all()
    assert [tuple(e) for e in events] == [(0, "admin", "hl7.message_read", case_id),
                                          (0, "admin", "hl7.outbox_retry", None)]
    checked, problems = verify_audit(ctx)
    assert problems == [] and checked >= 2
