"""Fee statements and case acts through the pages (CH-7, CH-6.4), on the demo with a few weeks of released cases and
their acts: the finance view (administrator) computes, issues, exports and corrects; a radiologist reads only his
own statements, a site's medical lead only his site's, others nothing (403); forged ids 403/404; the case's
radiologist chooses its acts; bad input answered in French, never a 500."""

from __future__ import annotations

import re

import pytest

from tests.demo_app import login, web_app
from tests.integration import fees_scenario

fees_ctx = fees_scenario.fees_ctx
DECEMBER = "2025-12"


@pytest.fixture
def app(fees_ctx, database_url, tmp_path):
    return web_app(fees_ctx, database_url, tmp_path)


def _case_of(client, scope, code="ACQK001"):
    page = client.get(f"/fees/statement?scope={scope}&month={DECEMBER}").get_data(as_text=True)
    return int(re.search(rf'data-case-id="(\d+)" data-code="{code}"', page).group(1))


@pytest.mark.charter("CH-7.1", negative=True)
@pytest.mark.charter("CH-7.2")
def test_CH7_the_finance_view_computes_issues_exports_and_freezes_a_statement(app, fees_ctx, clock):
    admin = login(app, fees_ctx, clock, "admin")
    assert "Honoraires" in admin.get("/fees").get_data(as_text=True)
    finance = admin.get(f"/fees?month={DECEMBER}").get_data(as_text=True)  # every radiologist of the month
    assert re.search(r'data-radiologist="dr.legall">.*?<td>2</td><td>74.54</td>', finance, re.S)
    assert re.search(r'data-radiologist="dr.morvan">.*?<td>3</td><td>203.63</td>', finance, re.S)
    page = admin.get(f"/fees/statement?scope=radiologist:dr.legall&month={DECEMBER}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="fee-due">74.54' in html and "table CCAM d’EXEMPLE" in html
    assert "Relevé provisoire" in html and "<script>" not in html
    # the remuneration settings the statement used, shown with where each comes from (no setting: the defaults)
    site = admin.get(f"/fees/statement?scope=site:ch-brest&month={DECEMBER}").get_data(as_text=True)
    applied = re.search(r'id="fee-settings-applied">.*?</table>', site, re.S).group(0)
    assert re.search(r'data-setting="transmission_costs">.*?90.00.*?valeur par défaut', applied, re.S)
    assert 'id="fees-ccam-link"' in finance and 'id="fees-settings-link"' in finance
    csv_text = admin.get(f"/fees/statement.csv?scope=radiologist:dr.legall&month={DECEMBER}").get_data(as_text=True)
    assert "ACQK001" in csv_text and csv_text.strip().splitlines()[-1].endswith("74.54,96.00")
    issued = admin.post("/fees/issue", data={"scope": "radiologist:dr.legall", "month": DECEMBER})
    assert issued.status_code == 302
    location = issued.headers["Location"]
    html = admin.get(location).get_data(as_text=True)
    assert "ne change plus" in html and 'id="fee-due">74.54' in html
    assert admin.get(location + ".csv").status_code == 200
    again = admin.post("/fees/issue", data={"scope": "radiologist:dr.legall", "month": DECEMBER},
                       follow_redirects=True)
    assert "déjà émis" in again.get_data(as_text=True)
    for bad in ({"scope": "radiologist:dr.legall", "month": "2025-13"}, {"scope": "nobody", "month": DECEMBER},
                {"scope": "site:ch-brest", "month": "2026-01"}):
        response = admin.post("/fees/issue", data=bad)
        assert response.status_code == 400 and "fees-error" in response.get_data(as_text=True), bad
    assert admin.get("/fees/999999").status_code == 404


@pytest.mark.charter("CH-6.4", negative=True)
@pytest.mark.charter("CH-7.5", negative=True)
@pytest.mark.charter("CH-7.6", negative=True)
def test_CH6_4_a_flat_rate_or_productivity_line_is_refused_by_the_page(app, fees_ctx, clock):
    admin = login(app, fees_ctx, clock, "admin")
    case_id = _case_of(admin, "radiologist:dr.legall")
    for data in ({"case_id": "", "amount": "500", "reason": "Forfait mensuel"},
                 {"case_id": str(case_id), "amount": "50", "reason": "Prime de productivité"},
                 {"case_id": str(case_id), "amount": "50", "reason": "Rattrapage", "kind": "forfait"}):
        response = admin.post("/fees/adjustments", data=data)
        assert response.status_code == 400 and "aucun forfait" in response.get_data(as_text=True), data
    for reason, rule in (("Abonnement de télétransmission", "CH-7.6"), ("Reprise du forfait de garde", "CH-7.5")):
        response = admin.post("/fees/adjustments", data={"case_id": str(case_id), "amount": "-30", "reason": reason})
        assert response.status_code == 400 and rule in response.get_data(as_text=True), reason
    response = admin.post("/fees/adjustments", data={"case_id": str(case_id), "amount": "abc", "reason": "Oubli"})
    assert response.status_code == 400 and "Montant illisible" in response.get_data(as_text=True)
    ok = admin.post("/fees/adjustments", data={"case_id": str(case_id), "amount": "-5.00", "reason": "Acte corrigé",
                                               "kind": "correction"})
    assert ok.status_code == 302
    html = admin.get("/fees/statement?scope=radiologist:dr.legall&month=2026-01").get_data(as_text=True)
    assert "Acte corrigé" in html and 'id="fee-due">-5.00' in html


@pytest.mark.charter("CH-7.1", negative=True)
def test_CH7_1_each_reads_only_his_statements(app, fees_ctx, clock):
    legall = login(app, fees_ctx, clock, "dr.legall")
    assert legall.get(f"/fees/statement?scope=radiologist:dr.legall&month={DECEMBER}").status_code == 200
    assert legall.get(f"/fees/statement?scope=radiologist:dr.morvan&month={DECEMBER}").status_code == 403
    assert legall.get(f"/fees/statement.csv?scope=site:ch-brest&month={DECEMBER}").status_code == 403
    assert legall.post("/fees/issue", data={"scope": "radiologist:dr.legall", "month": DECEMBER}).status_code == 403
    assert legall.post("/fees/adjustments", data={"case_id": "1", "amount": "5", "reason": "x"}).status_code == 403
    own = legall.get("/fees").get_data(as_text=True)  # his own statements only are offered
    assert 'value="radiologist:dr.legall"' in own and "dr.morvan" not in own and 'value="site:' not in own
    lead = login(app, fees_ctx, clock, "dr.guillou")
    offered = lead.get("/fees").get_data(as_text=True)
    assert 'value="site:ch-brest"' in offered and 'value="site:ch-morlaix"' not in offered
    assert lead.get(f"/fees/statement?scope=site:ch-brest&month={DECEMBER}").status_code == 200
    assert lead.get(f"/fees/statement?scope=site:ch-morlaix&month={DECEMBER}").status_code == 403
    assert lead.get(f"/fees/statement?scope=radiologist:dr.legall&month={DECEMBER}").status_code == 403
    other = login(app, fees_ctx, clock, "dr.riou")
    assert other.get(f"/fees/statement?scope=site:ch-brest&month={DECEMBER}").status_code == 403
    for username in ("dr.martin", "auditor"):
        client = login(app, fees_ctx, clock, username)
        assert client.get("/fees").status_code == 403, username
    admin = login(app, fees_ctx, clock, "admin")
    statement = admin.post("/fees/issue", data={"scope": "radiologist:dr.morvan", "month": DECEMBER}).headers[
        "Location"]
    assert legall.get(statement).status_code == 403 and legall.get(statement + ".csv").status_code == 403
    assert "Aucun relevé émis" in legall.get("/fees").get_data(as_text=True)


@pytest.mark.charter("CH-7.1", negative=True)
def test_CH7_1_the_cases_radiologist_chooses_its_acts_on_the_panel(app, fees_ctx, clock):
    admin = login(app, fees_ctx, clock, "admin")
    case_id = _case_of(admin, "radiologist:dr.morvan")
    morvan = login(app, fees_ctx, clock, "dr.morvan")
    assert f'href="/cases/{case_id}/acts"' in morvan.get(f"/cases/{case_id}").get_data(as_text=True)
    page = morvan.get(f"/cases/{case_id}/acts?q=crâne").get_data(as_text=True)
    assert "ACQH003" in page and "ZBQK002" not in page and "EXEMPLE" in page
    assert morvan.post(f"/cases/{case_id}/acts", data={"code": "ACQH003", "urgency": "1"}).status_code == 302
    assert "ACQH003" in morvan.get(f"/cases/{case_id}/acts").get_data(as_text=True)
    refused = morvan.post(f"/cases/{case_id}/acts", data={"code": "FORFAIT"})
    assert refused.status_code == 400 and "aucun forfait" in refused.get_data(as_text=True)
    legall = login(app, fees_ctx, clock, "dr.legall")
    assert legall.get(f"/cases/{case_id}/acts").status_code == 403
    assert legall.post(f"/cases/{case_id}/acts", data={"code": "ACQK001"}).status_code == 403
    assert morvan.get("/cases/999999/acts").status_code == 404
    assert login(app, fees_ctx, clock, "dr.martin").get(f"/cases/{case_id}/acts").status_code == 403
