"""Periodic quality audits (CH-6.3), through the use cases on SQLite and PostgreSQL: the quarter's notable cases found
where each fact is recorded, the report issued frozen and audited, issued again as a new version, never changed,
its follow-up actions, who may do what, and bad input refused in French."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import delete, select, text, update

from engine.domain.actors import Actor
from engine.domain.quality_audit import AuditScope, QualityAuditError, parse_quarter
from engine.errors import Conflict, Forbidden, NotFound
from engine.services.quality_audit_actions import add_action, mark_action_done
from engine.services.quality_audit_cases import notable_cases, visible_cases
from engine.services.quality_audits import get_report, issue_report, list_reports, preview_report
from engine.store.models import AuditEvent
from engine.store.quality_audit_models import ImmutableReport, QualityAuditAction, QualityAuditReport
from tests import demo_app
from tests.integration import quality_audit_scenario as scenario

demo_ctx = demo_app.demo_ctx
ADMIN = Actor("admin", frozenset({"administrator"}))
AUDITOR = Actor("auditor", frozenset({"auditor"}))
BREST_LEAD = Actor("dr.guillou", frozenset({"site_lead"}), frozenset({"ch-brest"}))
BREST = AuditScope("site", "ch-brest")
MORLAIX = AuditScope("site", "ch-morlaix")
Q1 = parse_quarter("2026-Q1")


def _kinds(cases):
    return [(c["kind"], c["case_id"]) for c in cases]


@pytest.mark.charter("CH-6.3")
def test_CH6_3_the_quarters_notable_cases_are_found_where_each_fact_is_recorded(demo_ctx, clock):
    built = scenario.build(demo_ctx, clock)
    cases = notable_cases(demo_ctx, BREST, Q1.start, Q1.end)
    assert _kinds(cases) == [("overdue", built.vital), ("refusal", built.refused), ("tier4", built.wrist),
                             ("identity_hold", built.wrist)]  # the tier-2 timer and the routine wait are not notable
    hold = cases[-1]
    assert hold["reason"] == "identité différente : nom" and hold["at"] == "2026-01-05T10:30:00+00:00"  # the first
    assert {c["site_id"] for c in cases} == {"ch-brest"} and cases[0]["urgency"] == "vital"
    assert "patient" not in json.dumps(cases) and "Kermarrec" not in json.dumps(cases)  # never the patient
    # The organisation (territory) of Brest holds the same; Morlaix's case belongs to its own site and territory.
    assert _kinds(notable_cases(demo_ctx, AuditScope("territory", "brest"), Q1.start, Q1.end)) == _kinds(cases)
    assert _kinds(notable_cases(demo_ctx, MORLAIX, Q1.start, Q1.end)) == [("overdue", built.morlaix)]
    assert _kinds(notable_cases(demo_ctx, AuditScope("territory", "morlaix"), Q1.start, Q1.end)) == [
        ("overdue", built.morlaix)]
    # Another quarter holds none of them.
    previous = parse_quarter("2025-Q4")
    assert notable_cases(demo_ctx, BREST, previous.start, previous.end) == []


@pytest.mark.charter("CH-6.3")
def test_CH6_3_the_patient_of_a_notable_case_is_shown_only_to_who_may_see_it(demo_ctx, clock):
    built = scenario.build(demo_ctx, clock)
    ids = [built.vital, built.morlaix]
    assert visible_cases(demo_ctx, ADMIN, ids) == {}  # an administrator of no site: case numbers only
    seen = visible_cases(demo_ctx, BREST_LEAD, ids)
    assert list(seen) == [built.vital] and seen[built.vital]["patient_name"].startswith("KERMARREC")


@pytest.mark.charter("CH-6.3")
def test_CH6_3_issuing_freezes_the_report_and_issuing_again_adds_a_version(demo_ctx, clock):
    built = scenario.build(demo_ctx, clock)
    first = issue_report(demo_ctx, ADMIN, BREST, Q1)
    issued = get_report(demo_ctx, AUDITOR, first)
    assert (issued.version, issued.issued_by, issued.quarter) == (1, "admin", "2026-Q1")
    assert issued.snapshot["notable_counts"] == {"overdue": 1, "refusal": 1, "tier4": 1, "identity_hold": 1}
    assert issued.snapshot["indicators"]["requests"]["total"] == 3
    assert issued.snapshot["indicators"]["refusals"]["cases"] == 1
    assert issued.snapshot["complete"] is False  # the quarter is still running on 2026-01-05
    # A new fact, then the same quarter again: a second version; the first stays as it was issued.
    clock.advance(hours=1)
    scenario.overdue_notice(demo_ctx, built.wrist, "ch-brest")
    second = issue_report(demo_ctx, BREST_LEAD, BREST, Q1)
    again = get_report(demo_ctx, ADMIN, second)
    assert (again.version, again.issued_by) == (2, "dr.guillou")
    assert again.snapshot["notable_counts"]["overdue"] == 2
    assert get_report(demo_ctx, ADMIN, first).snapshot == issued.snapshot
    assert again.versions == [(first, 1), (second, 2)]
    with demo_ctx.read() as session:
        events = session.execute(select(AuditEvent).where(AuditEvent.action == "quality_audit.issued")
                                 .order_by(AuditEvent.id)).scalars().all()
        stored = session.execute(select(QualityAuditReport.sha256).order_by(QualityAuditReport.id)).scalars().all()
    details = [json.loads(e.detail) for e in events]
    assert [(d["report"], d["version"], d["scope_id"], d["quarter"]) for d in details] == [
        (first, 1, "ch-brest", "2026-Q1"), (second, 2, "ch-brest", "2026-Q1")]
    assert [d["sha256"] for d in details] == stored and [e.actor for e in events] == ["admin", "dr.guillou"]
    assert [(r.quarter, r.version) for r in list_reports(demo_ctx, AUDITOR)] == [("2026-Q1", 2), ("2026-Q1", 1)]


@pytest.mark.charter("CH-6.3", negative=True)
def test_CH6_3_an_issued_report_is_never_changed_nor_deleted(demo_ctx, clock):
    report_id = issue_report(demo_ctx, ADMIN, BREST, Q1)
    with demo_ctx.read() as session:
        before = session.get(QualityAuditReport, report_id).snapshot
    with demo_ctx.write() as session:  # the ORM refuses
        row = session.get(QualityAuditReport, report_id)
        row.snapshot = "{}"
        with pytest.raises(ImmutableReport):
            session.flush()
    with demo_ctx.write() as session:
        session.delete(session.get(QualityAuditReport, report_id))
        with pytest.raises(ImmutableReport):
            session.flush()
    for statement in (update(QualityAuditReport).values(snapshot="{}"), delete(QualityAuditReport),
                      text("UPDATE quality_audit_report SET version = 9")):  # and so does the database
        with demo_ctx.write() as session, pytest.raises(Exception, match="immutable|never changed|append-only"):
            session.execute(statement)
            session.commit()
    with demo_ctx.read() as session:
        assert session.get(QualityAuditReport, report_id).snapshot == before


@pytest.mark.charter("CH-6.3")
def test_CH6_3_follow_up_actions_are_added_and_marked_done_by_an_administrator(demo_ctx, clock):
    report_id = issue_report(demo_ctx, ADMIN, BREST, Q1)
    action = add_action(demo_ctx, ADMIN, report_id, "  Revoir le délai d'acceptation de nuit  ", "Dr Guillou",
                        date(2026, 3, 1))
    clock.advance(days=2)
    mark_action_done(demo_ctx, ADMIN, action, report_id)
    issued = get_report(demo_ctx, ADMIN, report_id)
    [done] = issued.actions
    assert (done.text, done.owner, done.due_date, done.done_by) == (
        "Revoir le délai d'acceptation de nuit", "Dr Guillou", date(2026, 3, 1), "admin")
    assert done.done_at == clock.now()
    with pytest.raises(Conflict, match="déjà close"):
        mark_action_done(demo_ctx, ADMIN, action, report_id)
    with demo_ctx.read() as session:
        actions = [(e.action, json.loads(e.detail)["action"]) for e in session.execute(
            select(AuditEvent).where(AuditEvent.action.like("quality_audit.action%")).order_by(AuditEvent.id))
            .scalars()]
    assert actions == [("quality_audit.action_added", action), ("quality_audit.action_done", action)]


@pytest.mark.charter("CH-6.3", negative=True)
def test_CH6_3_actions_are_refused_to_others_and_without_their_content(demo_ctx, clock):
    report_id = issue_report(demo_ctx, ADMIN, BREST, Q1)
    for actor in (AUDITOR, BREST_LEAD):
        with pytest.raises(Forbidden):
            add_action(demo_ctx, actor, report_id, "Action", "Dr X", date(2026, 3, 1))
    for text_, owner, due, message in (("", "Dr X", date(2026, 3, 1), "Décrivez"),
                                       ("Action", " ", date(2026, 3, 1), "qui porte"),
                                       ("Action", "Dr X", None, "échéance"),
                                       ("x" * 2001, "Dr X", date(2026, 3, 1), "2000 caractères")):
        with pytest.raises(QualityAuditError, match=message):
            add_action(demo_ctx, ADMIN, report_id, text_, owner, due)
    with pytest.raises(NotFound):
        add_action(demo_ctx, ADMIN, report_id + 99, "Action", "Dr X", date(2026, 3, 1))
    action = add_action(demo_ctx, ADMIN, report_id, "Action", "Dr X", date(2026, 3, 1))
    with pytest.raises(Forbidden):
        mark_action_done(demo_ctx, AUDITOR, action, report_id)
    with pytest.raises(NotFound):
        mark_action_done(demo_ctx, ADMIN, action, report_id + 1)  # an action of another report
    with demo_ctx.read() as session:
        assert session.execute(select(QualityAuditAction.done_at)).scalars().all() == [None]


@pytest.mark.charter("CH-6.3", negative=True)
def test_CH6_3_only_administrators_and_the_sites_lead_issue_and_each_reads_what_he_may(demo_ctx, clock):
    with pytest.raises(Forbidden):
        issue_report(demo_ctx, AUDITOR, BREST, Q1)  # auditors read only
    for scope in (MORLAIX, AuditScope("territory", "brest")):
        with pytest.raises(Forbidden):
            issue_report(demo_ctx, BREST_LEAD, scope, Q1)  # his site only
        with pytest.raises(Forbidden):
            preview_report(demo_ctx, BREST_LEAD, scope, Q1)
    with pytest.raises(Forbidden):
        preview_report(demo_ctx, Actor("dr.martin", frozenset({"requester"}), frozenset({"ch-brest"})), BREST, Q1)
    brest = issue_report(demo_ctx, BREST_LEAD, BREST, Q1)
    morlaix = issue_report(demo_ctx, ADMIN, MORLAIX, Q1)
    organisation = issue_report(demo_ctx, ADMIN, AuditScope("territory", "morlaix"), Q1)
    assert [r.id for r in list_reports(demo_ctx, BREST_LEAD)] == [brest]
    assert {r.id for r in list_reports(demo_ctx, AUDITOR)} == {brest, morlaix, organisation}
    for forged in (morlaix, organisation, organisation + 1):
        with pytest.raises(NotFound):
            get_report(demo_ctx, BREST_LEAD, forged)
    with demo_ctx.read() as session:
        assert session.execute(select(QualityAuditReport.scope_id).order_by(QualityAuditReport.id)).scalars().all() \
            == ["ch-brest", "ch-morlaix", "morlaix"]


@pytest.mark.charter("CH-6.3", negative=True)
def test_CH6_3_bad_quarters_and_unknown_sites_are_refused_in_french(demo_ctx, clock):
    for bad in ("2026-Q5", "2026-Q0", "Q4", "", "2026-13", "1999-Q1"):
        with pytest.raises(QualityAuditError, match="Trimestre invalide"):
            parse_quarter(bad)
    assert parse_quarter("2026q4").label == parse_quarter(" 2026-T4 ").label == "2026-Q4"
    with pytest.raises(QualityAuditError, match="n'a pas commencé"):
        issue_report(demo_ctx, ADMIN, BREST, parse_quarter("2026-Q2"))
    with pytest.raises(QualityAuditError, match="Site inconnu"):
        issue_report(demo_ctx, ADMIN, AuditScope("site", "nowhere"), Q1)
    with pytest.raises(QualityAuditError, match="Organisation"):
        preview_report(demo_ctx, ADMIN, AuditScope("territory", "nowhere"), Q1)
    with pytest.raises(QualityAuditError, match="Périmètre"):
        AuditScope("region", "bretagne")
    with demo_ctx.read() as session:
        assert session.execute(select(QualityAuditReport)).first() is None
