"""The administrators' escalation pages on the demo data (CH-3.3): the named delays with their values, a
change previewed then confirmed (future timers, or re-arming the waiting ones), the waiting timers, and the
administrator role checked on every route."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.services.escalation import list_settings
from engine.services.instances import start_instance
from engine.services.timer_queries import waiting_timers
from engine.store.models import AuditEvent, Timer
from tests import demo_app
from tests.demo_app import case_of, login
from tests.web.admin.site_admins import add_admin
from web.cli.demo_data import demo_request

app, demo_ctx = demo_app.app, demo_app.demo_ctx  # the demo-data fixtures of the clinician pages

REQUESTER = Actor("dr.martin", frozenset({"requester"}), frozenset({"ch-brest"}))
BREST_ADMIN = Actor("admin.brest", frozenset({"administrator"}), frozenset({"ch-brest"}))
LABELS = {
    "accept_tier1": "Acceptation — niveau 1 (territoire)",
    "accept_tier2": "Acceptation — niveau 2 (territoires voisins)",
    "accept_tier3": "Acceptation — niveau 3 (département, région)",
    "accept_tier4": "Acceptation — niveau 4 (société externe)",
    "report_vital": "Compte-rendu — urgence vitale",
    "report_urgent": "Compte-rendu — urgent",
    "report_scheduled": "Compte-rendu — programmé",
    "teleexpertise_answer": "Avis du télé-expert",
    "reminder": "Rappel",
}


def settings_of(ctx):
    return {s.name: s for s in list_settings(ctx)}


def timers_of(ctx):
    with ctx.read() as session:
        return {t.instance_id: t for t in session.execute(select(Timer)).scalars()}


def setting_changes(ctx):
    with ctx.read() as session:
        events = session.execute(select(AuditEvent).where(AuditEvent.action == "setting.changed")
                                 .order_by(AuditEvent.id)).scalars().all()
    return [(e.actor, json.loads(e.detail)) for e in events]


def row_of(page, name):
    match = re.search(rf'<tr id="setting-{name}".*?</tr>', page, re.S)
    assert match, name
    return match.group(0)


def new_case(ctx, birth_name):
    """Another case waiting for acceptance (its accept_tier1 timer armed now)."""
    return start_instance(ctx, REQUESTER, "telediagnosis", {}, site_id="ch-brest", first_task=demo_request(
        patient={"birth_name": birth_name, "first_names": "Anne", "birth_date": "1950-01-01", "sex": "F",
                 "identity_status": "validated"}))


def no_inline_code(page):
    return not re.search(r"<script(?![^>]*\bsrc=)", page) and " style=" not in page and "<style" not in page


def test_admin_sees_every_delay_in_iso_and_in_words(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    home = client.get("/cases").get_data(as_text=True)
    assert 'href="/admin/escalation"' in home  # the menu entry
    response = client.get("/admin/escalation")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for name, label in LABELS.items():
        assert label in row_of(page, name)
    tier1 = row_of(page, "accept_tier1")
    assert "PT15M" in tier1 and "(15 min)" in tier1 and "jamais (valeur par défaut)" in tier1
    assert 'href="/admin/escalation/timers?setting=accept_tier1">1</a>' in tier1  # the demo case waits on it
    assert "(4 h)" in row_of(page, "report_urgent") and "(2 j)" in row_of(page, "report_scheduled")
    assert "(3 j)" in row_of(page, "teleexpertise_answer")
    assert 'value="future" id="mode-accept_tier1-future" checked' in tier1
    assert "Pour les délais armés à partir de maintenant" in tier1 and "Réarmer aussi les délais en attente" in tier1
    assert "PT15M (15 min), PT4H (4 h), P2D (2 j)" in tier1 and "Prévisualiser" in tier1
    assert no_inline_code(page)


@pytest.mark.charter("CH-3.3")
@pytest.mark.parametrize(("value", "message"), [
    ("PT0S", "la durée doit être strictement positive"),
    ("abc", "n&#39;est pas une durée ISO 8601"),
    ("P400D", "la durée dépasse un an"),
    ("PT30S", "au moins une minute"),
    ("", "Saisissez une durée ISO 8601"),
])
def test_malformed_value_is_shown_next_to_its_row_and_changes_nothing(app, demo_ctx, clock, value, message):
    client = login(app, demo_ctx, clock, "admin")
    timers_before = {case: t.due_at for case, t in timers_of(demo_ctx).items()}
    response = client.post("/admin/escalation/preview",
                           data={"name": "accept_tier1", "duration": value, "mode": "rearm"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    row = row_of(page, "accept_tier1")
    assert "Durée refusée" in row and message in row and 'class="table-danger"' in row
    assert f'name="duration"\n               value="{value}"' in row  # what was typed is kept
    assert 'value="rearm" id="mode-accept_tier1-rearm" checked' in row  # and the mode chosen
    assert "Durée refusée" not in row_of(page, "accept_tier2")
    assert "Confirmer" not in page
    # Sending the same value straight to the apply route is refused too
    client.post("/admin/escalation/apply", data={"name": "accept_tier1", "duration": value, "mode": "rearm"})
    assert settings_of(demo_ctx)["accept_tier1"].duration == "PT15M"
    assert setting_changes(demo_ctx) == []
    assert {case: t.due_at for case, t in timers_of(demo_ctx).items()} == timers_before


def test_unknown_setting_or_mode_is_refused(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    page = client.post("/admin/escalation/preview", data={"name": "coffee_break", "duration": "PT5M"}).get_data(
        as_text=True)
    assert "« coffee_break » n’est pas un délai connu." in page
    page = client.post("/admin/escalation/preview",
                       data={"name": "reminder", "duration": "PT5M", "mode": "now"}).get_data(as_text=True)
    assert "Choisissez le mode" in row_of(page, "reminder")
    assert setting_changes(demo_ctx) == []


@pytest.mark.charter("CH-3.3")
def test_rearm_preview_lists_the_timers_cases_and_those_overdue_at_once(app, demo_ctx, clock):
    first = case_of(demo_ctx, patient_name="KERMARREC YANN")  # armed at 08:00 UTC
    clock.advance(minutes=10)
    second = new_case(demo_ctx, "Prigent")  # armed at 08:10
    clock.advance(minutes=2)  # 08:12: with 5 minutes, the first is overdue, the second is not
    add_admin(demo_ctx, BREST_ADMIN.user_id, ("ch-brest",))  # the patients shown are those of his site
    client = login(app, demo_ctx, clock, BREST_ADMIN.user_id)
    response = client.post("/admin/escalation/preview",
                           data={"name": "accept_tier1", "duration": "pt5m", "mode": "rearm"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Acceptation — niveau 1 (territoire)" in page
    assert "<code>PT15M</code> (15 min) → <code>PT5M</code> (5 min)" in page
    assert "Réarmer aussi les délais en attente" in page
    moved = re.search(r'<section id="rearm-moved".*?</section>', page, re.S).group(0)
    assert "2 délais en attente seront réarmés" in moved and "dans 2 dossiers" in moved
    assert f'href="/cases/{first}"' in moved and f'href="/cases/{second}"' in moved
    assert "KERMARREC YANN" in moved and "PRIGENT" in moved
    overdue = re.search(r'<table class="table table-sm align-middle" id="overdue-timers">.*?</table>', page,
                        re.S).group(0)
    assert "1 délai deviendrait échu immédiatement" in page
    assert f'href="/cases/{first}"' in overdue and f'href="/cases/{second}"' not in overdue
    assert "accept_timeout" in overdue and "05/01/2026 09:05" in overdue  # 08:05 UTC in Europe/Paris (winter)
    confirm = re.search(r'<form method="post" action="/admin/escalation/apply".*?</form>', page, re.S).group(0)
    for field, value in (("name", "accept_tier1"), ("duration", "PT5M"), ("mode", "rearm"), ("old", "PT15M")):
        assert f'name="{field}" value="{value}"' in confirm
    assert "Confirmer" in confirm and 'href="/admin/escalation"' in confirm  # Annuler
    assert no_inline_code(page)
    # A preview changes nothing
    assert settings_of(demo_ctx)["accept_tier1"].duration == "PT15M" and setting_changes(demo_ctx) == []
    assert (timers_of(demo_ctx)[first].due_at - timers_of(demo_ctx)[first].armed_at).total_seconds() == 15 * 60


def test_future_preview_says_waiting_timers_keep_their_due_time(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    page = client.post("/admin/escalation/preview",
                       data={"name": "accept_tier1", "duration": "PT20M", "mode": "future"}).get_data(as_text=True)
    assert "Pour les délais armés à partir de maintenant" in page
    assert "Le délai déjà en attente garde son échéance." in page
    assert 'id="overdue-timers"' not in page and 'name="mode" value="future"' in page


@pytest.mark.charter("CH-3.3")
def test_apply_in_future_mode_changes_the_value_and_is_audited(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    due_before = timers_of(demo_ctx)[case_of(demo_ctx, patient_name="KERMARREC YANN")].due_at
    response = client.post("/admin/escalation/apply",
                           data={"name": "report_urgent", "duration": "PT3H", "mode": "future", "old": "PT4H"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/escalation")
    page = client.get("/admin/escalation").get_data(as_text=True)
    assert "Délai « Compte-rendu — urgent » modifié : PT4H (4 h) → PT3H (3 h)." in page
    assert "gardent leur échéance" in page
    row = row_of(page, "report_urgent")
    assert "PT3H" in row and "admin" in row and "modifié" in row
    setting = settings_of(demo_ctx)["report_urgent"]
    assert (setting.duration, setting.updated_by, setting.updated_at) == ("PT3H", "admin", clock.now())
    [(actor, detail)] = setting_changes(demo_ctx)
    assert actor == "admin"
    assert (detail["setting"], detail["old"], detail["new"], detail["mode"]) == ("report_urgent", "PT4H", "PT3H",
                                                                                 "future")
    assert timers_of(demo_ctx)[case_of(demo_ctx, patient_name="KERMARREC YANN")].due_at == due_before


@pytest.mark.charter("CH-3.3")
def test_apply_in_rearm_mode_moves_the_waiting_timers(app, demo_ctx, clock):
    first = case_of(demo_ctx, patient_name="KERMARREC YANN")
    clock.advance(minutes=10)
    second = new_case(demo_ctx, "Prigent")
    clock.advance(minutes=2)
    client = login(app, demo_ctx, clock, "admin")
    response = client.post("/admin/escalation/apply",
                           data={"name": "accept_tier1", "duration": "PT5M", "mode": "rearm", "old": "PT15M"})
    assert response.status_code == 302
    page = client.get("/admin/escalation").get_data(as_text=True)
    assert "2 délais en attente réarmés dans 2 dossiers." in page and "1 délai est échu" in page
    timers = timers_of(demo_ctx)
    for case in (first, second):
        assert (timers[case].due_at - timers[case].armed_at).total_seconds() == 5 * 60
    assert timers[first].due_at < clock.now() < timers[second].due_at
    [(_actor, detail)] = setting_changes(demo_ctx)
    assert (detail["new"], detail["mode"], detail["timers_moved"]) == ("PT5M", "rearm", 2)
    assert settings_of(demo_ctx)["accept_tier1"].duration == "PT5M"


def test_apply_after_someone_else_changed_the_value_asks_again(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    client.post("/admin/escalation/apply", data={"name": "reminder", "duration": "PT45M", "mode": "future",
                                                 "old": "PT30M"})
    response = client.post("/admin/escalation/apply",  # a preview made before that change
                           data={"name": "reminder", "duration": "PT20M", "mode": "future", "old": "PT30M"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "modifié entre-temps (valeur actuelle : PT45M)" in page
    assert 'name="old" value="PT45M"' in page
    assert settings_of(demo_ctx)["reminder"].duration == "PT45M" and len(setting_changes(demo_ctx)) == 1


def test_only_administrators_reach_the_escalation_pages(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.martin")
    assert 'href="/admin/escalation"' not in client.get("/cases").get_data(as_text=True)
    change = {"name": "accept_tier1", "duration": "PT1M", "mode": "rearm", "old": "PT15M"}
    for method, url in [("get", "/admin/escalation"), ("get", "/admin/escalation/timers"),
                        ("get", "/admin/escalation/timers?overdue=1&setting=accept_tier1"),
                        ("post", "/admin/escalation/preview"), ("post", "/admin/escalation/apply")]:
        response = getattr(client, method)(url, data=change if method == "post" else None)
        assert response.status_code == 403, (method, url, response.status_code)
    anonymous = app.test_client()
    for method, url in [("get", "/admin/escalation"), ("get", "/admin/escalation/timers"),
                        ("post", "/admin/escalation/preview"), ("post", "/admin/escalation/apply")]:
        response = getattr(anonymous, method)(url, data=change if method == "post" else None)
        assert response.status_code == 302 and "/login" in response.headers["Location"], (method, url)
    assert settings_of(demo_ctx)["accept_tier1"].duration == "PT15M" and setting_changes(demo_ctx) == []


def test_timers_page_lists_the_waiting_timers_with_their_setting(app, demo_ctx, clock):
    case = case_of(demo_ctx, patient_name="KERMARREC YANN")
    add_admin(demo_ctx, BREST_ADMIN.user_id, ("ch-brest",))
    client = login(app, demo_ctx, clock, BREST_ADMIN.user_id)
    # The demo's other cases wait on the due times of their current steps; the acceptance delay is the one here.
    page = client.get("/admin/escalation/timers?setting=accept_tier1").get_data(as_text=True)
    row = re.search(rf'<tr data-timer-id="[^"]+" data-case-id="{case}".*?</tr>', page, re.S).group(0)
    assert f'href="/cases/{case}"' in row and "KERMARREC YANN" in row and "accept_timeout" in row
    assert "CH de Brest (urgences)" in row
    assert "Acceptation — niveau 1 (territoire)" in row and 'data-setting="accept_tier1"' in row
    assert "05/01/2026 09:00" in row  # armed at, Europe/Paris
    assert '<span class="countdown" data-due="2026-01-05T08:15:00+00:00" title="05/01/2026 09:15">' in row
    assert "table-danger" not in row
    assert "1 délai en attente" in page and "/static/js/countdown.js" in page and no_inline_code(page)


def test_timers_page_filters(app, demo_ctx, clock):
    first = case_of(demo_ctx, patient_name="KERMARREC YANN")
    clock.advance(minutes=10)
    second = new_case(demo_ctx, "Prigent")
    client = login(app, demo_ctx, clock, "admin")

    def listed(query):
        """The cases listed, among those waiting for acceptance (the demo's other cases wait on step due times)."""
        page = client.get(f"/admin/escalation/timers{query}").get_data(as_text=True)
        cases = [int(c) for c in re.findall(r'data-case-id="(\d+)"', page)]
        return [c for c in cases if c in (first, second)], page

    assert listed("")[0] == [first, second]  # soonest due first
    assert listed("?setting=accept_tier1")[0] == [first, second]
    cases, page = listed("?setting=report_vital")
    assert cases == [] and "Aucun délai en attente." in page
    assert 'value="report_vital" selected' in page
    assert listed(f"?case={second}")[0] == [second]
    cases, page = listed("?case=abc")
    assert cases == [first, second] and "Le n° de dossier doit être un nombre entier positif." in page
    assert listed("?due_before=2026-01-05")[0] == []  # due on the 5th (Paris): none before that day
    assert listed("?due_before=2026-01-06")[0] == [first, second]
    cases, page = listed("?due_before=05/01")
    assert cases == [first, second] and "n’est pas une date valide" in page
    assert listed("?overdue=1")[0] == []  # 08:10: the first is due at 08:15
    clock.advance(minutes=6)
    cases, page = listed("?overdue=1")
    assert cases == [first]
    row = re.search(rf'<tr data-timer-id="[^"]+" data-case-id="{first}"[^>]*>', page).group(0)
    assert 'class="table-danger"' in row and 'class="countdown overdue"' in page
    assert 'id="f-overdue" name="overdue" value="1" checked' in page
    assert listed(f"?overdue=1&case={second}")[0] == []


def test_timers_page_is_paginated_and_keeps_the_filters(app, demo_ctx, clock, monkeypatch):
    import web.admin.escalation

    monkeypatch.setattr(web.admin.escalation, "PER_PAGE", 1)
    first = case_of(demo_ctx, patient_name="KERMARREC YANN")
    clock.advance(minutes=1)
    second = new_case(demo_ctx, "Prigent")
    client = login(app, demo_ctx, clock, "admin")
    page = client.get("/admin/escalation/timers?setting=accept_tier1").get_data(as_text=True)
    assert re.findall(r'data-case-id="(\d+)"', page) == [str(first)] and "page 1 sur 2" in page
    assert 'href="/admin/escalation/timers?page=2&amp;setting=accept_tier1"' in page
    page = client.get("/admin/escalation/timers?setting=accept_tier1&page=2").get_data(as_text=True)
    assert re.findall(r'data-case-id="(\d+)"', page) == [str(second)] and "page 2 sur 2" in page
    assert re.findall(r'data-case-id="(\d+)"', client.get("/admin/escalation/timers?setting=accept_tier1&page=3")
                      .get_data(as_text=True)) == []


def test_waiting_timers_query(demo_ctx, clock):
    first = case_of(demo_ctx, patient_name="KERMARREC YANN")
    clock.advance(minutes=5)
    second = new_case(demo_ctx, "Prigent")
    # and the due times of the other demo cases' current steps
    assert waiting_timers(demo_ctx, BREST_ADMIN).total == 4
    everything = waiting_timers(demo_ctx, BREST_ADMIN, setting="accept_tier1")
    assert everything.total == 2 and [t.case_id for t in everything.timers] == [first, second]
    assert [t.patient_name for t in everything.timers] == ["KERMARREC YANN", "PRIGENT ANNE"]
    assert {t.setting for t in everything.timers} == {"accept_tier1"}
    page = waiting_timers(demo_ctx, BREST_ADMIN, setting="accept_tier1", limit=1, offset=1)
    assert page.total == 2 and [t.case_id for t in page.timers] == [second]
    assert waiting_timers(demo_ctx, BREST_ADMIN, case_id=second).total == 1
    assert waiting_timers(demo_ctx, BREST_ADMIN, setting="reminder").total == 0
    first_due, second_due = everything.timers[0].due_at, everything.timers[1].due_at
    assert waiting_timers(demo_ctx, BREST_ADMIN, due_before=second_due).total == 1  # strictly before
    assert waiting_timers(demo_ctx, BREST_ADMIN, overdue_at=first_due).total == 1  # due at that moment
    assert waiting_timers(demo_ctx, BREST_ADMIN, overdue_at=clock.now()).total == 0
