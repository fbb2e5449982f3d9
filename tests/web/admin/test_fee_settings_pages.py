"""Paramètres de rémunération (/fees/settings, CH-6.4): an administrator sees the values in force and their history
and sets one (audited), bad values answered by a French 400 page with nothing written, a date of effect in an issued
month refused; a site's medical lead reads his site's values without the form; a radiologist or a requester 403."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from engine.services.fee_statements import Scope, issue_statement, parse_month, preview_statement
from engine.store.fee_setting_models import FeeSetting
from engine.store.models import AuditEvent
from tests.demo_app import login, web_app
from tests.integration import fees_scenario

fees_ctx = fees_scenario.fees_ctx
ADMIN = fees_scenario.ADMIN


@pytest.fixture
def app(fees_ctx, database_url, tmp_path):
    return web_app(fees_ctx, database_url, tmp_path)


def _counts(ctx):
    with ctx.read() as session:
        return (session.execute(select(func.count()).select_from(FeeSetting)).scalar_one(),
                session.execute(select(func.count()).select_from(AuditEvent).where(
                    AuditEvent.action == "fees.setting_changed")).scalar_one())


def _row(html, table, setting):
    match = re.search(rf'id="{table}".*?<tr data-setting="{setting}">(.*?)</tr>', html, re.S)
    assert match, (table, setting)
    return match.group(1)


@pytest.mark.charter("CH-6.4")
@pytest.mark.charter("CH-7.5")
def test_CH6_4_an_administrator_sets_a_sites_on_call_fee_and_the_statement_uses_it(app, fees_ctx, clock):
    admin = login(app, fees_ctx, clock, "admin")
    page = admin.get("/fees/settings")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Paramètres de rémunération" in html and 'name="csrf_token"' in html
    row = _row(html, "fee-settings-organisation", "on_call_fee")
    assert "40.00" in row and "valeur par défaut, à fixer dans la convention de rémunération" in row
    assert "120.00" in _row(html, "fee-settings-site-ch-morlaix", "transmission_costs") and "<script>" not in html
    response = admin.post("/fees/settings", data={
        "name": "on_call_fee", "site_id": "ch-brest", "amount": "45,00", "effective_from": "2025-12-01",
        "reason": "Convention du CH de Brest"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/fees/settings")
    html = admin.get("/fees/settings").get_data(as_text=True)
    site = _row(html, "fee-settings-site-ch-brest", "on_call_fee")
    assert "45.00" in site and "propre au site" in site and "01/12/2025" in site
    assert "40.00" in _row(html, "fee-settings-organisation", "on_call_fee")
    assert re.search(r'data-setting-id="\d+">.*?01/12/2025.*?CH de Brest.*?45.00.*?Convention du CH de Brest', html,
                     re.S)
    assert _counts(fees_ctx) == (2, 2)  # with the demo's ch-morlaix value
    # dr.morvan's three December acts done on call at Brest: 9.09 + 3 x 45.00 + 2 x 37.27.
    december = preview_statement(fees_ctx, ADMIN, Scope("radiologist", "dr.morvan"), parse_month("2025-12"))
    assert december["totals"]["due_to_radiologists_eur"] == "218.63"


@pytest.mark.charter("CH-6.4", negative=True)
@pytest.mark.charter("CH-7.4", negative=True)
def test_CH6_4_bad_values_get_a_french_400_page_and_nothing_is_written(app, fees_ctx, clock):
    admin = login(app, fees_ctx, clock, "admin")
    good = {"name": "on_call_fee", "site_id": "", "amount": "45.00", "effective_from": "2026-02-01",
            "reason": "Convention"}
    issue_statement(fees_ctx, ADMIN, Scope("site", "ch-brest"), parse_month("2025-12"))
    for change, message in (({"amount": "-5"}, "négatif"), ({"amount": "12.345"}, "deux décimales"),
                            ({"amount": "douze"}, "Montant illisible"),
                            ({"name": "teleexpertise_fee", "amount": "0"}, "non nulle"),
                            ({"name": "prime_productivite"}, "Paramètre inconnu"), ({"name": ""}, "Aucun forfait"),
                            ({"site_id": "ch-nulle-part"}, "Site inconnu"),
                            ({"effective_from": "2026-02-31"}, "Date d&#39;effet invalide"),
                            ({"effective_from": ""}, "Date d&#39;effet invalide"), ({"reason": ""}, "motif"),
                            ({"effective_from": "2025-12-10", "site_id": "ch-brest"}, "déjà émis"),
                            ({"effective_from": "2025-11-30", "name": "transmission_costs"}, "déjà émis")):
        response = admin.post("/fees/settings", data=good | change)
        html = response.get_data(as_text=True)
        assert response.status_code == 400 and 'id="fee-settings-error"' in html and message in html, change
        assert 'value="' + (good | change)["reason"] + '"' in html  # the form keeps what was typed
    assert _counts(fees_ctx) == (1, 1)  # the demo's ch-morlaix value only
    assert "à partir du 2026-01-01" in admin.post("/fees/settings", data=good | {
        "effective_from": "2025-12-10"}).get_data(as_text=True)


@pytest.mark.charter("CH-6.4", negative=True)
def test_CH6_4_a_site_lead_reads_his_sites_values_and_others_are_refused(app, fees_ctx, clock):
    admin = login(app, fees_ctx, clock, "admin")
    for site, amount in (("ch-brest", "70.00"), ("ch-morlaix", "110.00")):
        assert admin.post("/fees/settings", data={"name": "transmission_costs", "site_id": site, "amount": amount,
                                                  "effective_from": "2026-01-01", "reason": "Abonnement"}
                          ).status_code == 302
    lead = login(app, fees_ctx, clock, "dr.guillou")  # ch-brest's medical lead
    page = lead.get("/fees/settings")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "70.00" in _row(html, "fee-settings-site-ch-brest", "transmission_costs")
    assert "110.00" not in html and "ch-morlaix" not in html and 'id="fee-settings-form"' not in html
    assert lead.post("/fees/settings", data={"name": "transmission_costs", "site_id": "ch-brest", "amount": "1.00",
                                             "effective_from": "2026-02-01", "reason": "x"}).status_code == 403
    for username in ("dr.legall", "dr.martin"):  # a radiologist, a requester
        client = login(app, fees_ctx, clock, username)
        assert client.get("/fees/settings").status_code == 403
        assert client.post("/fees/settings", data={"name": "on_call_fee", "amount": "1.00",
                                                    "effective_from": "2026-02-01", "reason": "x"}).status_code == 403
    assert _counts(fees_ctx) == (3, 3)
