"""The waiting-timers page shows a patient only to an administrator who may see the case, by the rule of the case
pages (a member of the case's site, or someone routing involved in it): the demo's ``admin`` belongs to no site
and reads the case number and its site only (CH-5.3 professional secrecy, CH-8.1 confidentiality)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event

from engine.domain.actors import Actor
from engine.services.cases import list_cases
from engine.services.timer_queries import waiting_timers
from tests import demo_app
from tests.demo_app import case_of, login
from tests.web.admin.site_admins import add_admin
from tests.web.admin.test_escalation import new_case
from web.cli.demo_data import USERS

app, demo_ctx = demo_app.app, demo_app.demo_ctx

PATIENT = "KERMARREC YANN"  # the demo case waiting for acceptance, at ch-brest


def timer_row(page: str, case_id: int) -> str:
    match = re.search(rf'<tr data-timer-id="[^"]+" data-case-id="{case_id}".*?</tr>', page, re.S)
    assert match, case_id
    return match.group(0)


@pytest.mark.charter("CH-5.3", "CH-8.1", negative=True)
def test_an_administrator_of_no_site_reads_the_case_number_and_site_not_the_patient(app, demo_ctx, clock):
    case = case_of(demo_ctx, patient_name=PATIENT)
    client = login(app, demo_ctx, clock, "admin")  # administrator, no site, never involved in a case
    for query in ("", "?setting=accept_tier1", f"?case={case}", "?overdue=1&due_before=2030-01-01"):
        page = client.get(f"/admin/escalation/timers{query}").get_data(as_text=True)
        assert "KERMARREC" not in page.upper() and "LE BIHAN" not in page.upper(), query
    page = client.get("/admin/escalation/timers?setting=accept_tier1").get_data(as_text=True)
    row = timer_row(page, case)
    assert f'href="/cases/{case}"' in row and f"n° {case}" in row and "CH de Brest (urgences)" in row
    assert "masqué" in row and "accept_timeout" in row  # the timer itself stays readable
    # The re-arm preview lists the same cases, with the same restraint.
    preview = client.post("/admin/escalation/preview", data={"name": "accept_tier1", "duration": "PT5M",
                                                             "mode": "rearm"}).get_data(as_text=True)
    assert f'href="/cases/{case}"' in preview and "KERMARREC" not in preview


@pytest.mark.charter("CH-5.3", "CH-8.1", negative=True)
def test_an_administrator_of_another_site_does_not_read_the_patient_either(app, demo_ctx, clock):
    case = case_of(demo_ctx, patient_name=PATIENT)
    add_admin(demo_ctx, "admin.morlaix", ("ch-morlaix",))
    page = login(app, demo_ctx, clock, "admin.morlaix").get("/admin/escalation/timers").get_data(as_text=True)
    assert "KERMARREC" not in page and "masqué" in timer_row(page, case)


@pytest.mark.charter("CH-5.3")
def test_the_administrator_of_the_case_site_reads_the_patient(app, demo_ctx, clock):
    case = case_of(demo_ctx, patient_name=PATIENT)
    add_admin(demo_ctx, "admin.brest", ("ch-brest",))
    page = login(app, demo_ctx, clock, "admin.brest").get("/admin/escalation/timers").get_data(as_text=True)
    row = timer_row(page, case)
    assert PATIENT in row and "masqué" not in row and "CH de Brest (urgences)" in row


@pytest.mark.charter("CH-5.3", "CH-8.1")
def test_timers_follow_the_case_pages_rule_for_every_demo_user(demo_ctx):
    """Site members and the people involved (offered, assigned, acted) read the patient; the rule is the one
    of the case lists, administrators or not."""
    for user in USERS:
        actor = Actor(user.username, frozenset(user.roles), frozenset(user.sites))
        visible = {c.id for c in list_cases(demo_ctx, actor, limit=1000)}
        timers = waiting_timers(demo_ctx, actor).timers
        assert timers, user.username
        for timer in timers:
            assert timer.patient_visible == (timer.case_id in visible), (user.username, timer.case_id)
            assert (timer.patient_name is not None) == timer.patient_visible
    assert any(t.patient_visible for t in waiting_timers(demo_ctx, Actor("dr.legall", frozenset({"radiologist"}))
                                                          ).timers)  # involved, of no site


def test_the_timers_query_costs_the_same_statements_whatever_the_number_of_cases(demo_ctx):
    """Whether the actor may see each case is a column of the page's query, not a query per row."""
    admin = Actor("admin", frozenset({"administrator"}))
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(demo_ctx.engine, "before_cursor_execute", count)
    try:
        few = waiting_timers(demo_ctx, admin)
        count_few = len(statements)
        for name in ("Prigent", "Tanguy", "Guillou"):
            new_case(demo_ctx, name)
        statements.clear()
        more = waiting_timers(demo_ctx, admin)
    finally:
        event.remove(demo_ctx.engine, "before_cursor_execute", count)
    assert more.total == few.total + 3 and len(statements) == count_few == 2
    assert not any(t.patient_visible or t.patient_name for t in more.timers)
