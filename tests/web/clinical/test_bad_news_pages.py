"""CH-4.1.13 through the pages and the JSON API: before the requester confirms the announcement plan of a
poor-prognosis report, the case page, the case API and the case search show the report to the reporting
radiologist and the requester only; other members of the site read "Compte-rendu en attente de la procédure
d'annonce"."""

from __future__ import annotations

import html

import pytest

from engine.services.accounts import issue_api_token
from tests import demo_app
from tests.demo_app import login
from tests.integration.test_bad_news_visibility import (
    CONCLUSION,
    FINDINGS,
    PLAN,
    RADIOLOGIST,
    REQUESTER,
    complete,
    reported_case,
)

app, demo_ctx = demo_app.app, demo_app.demo_ctx  # the fixtures of the clinician pages (demo data)
NOTICE = "Compte-rendu en attente de la procédure d'annonce"


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return html.unescape(response.get_data(as_text=True))


def api(client, token: str, url: str):
    response = client.get(url, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, url
    return response.get_json()


@pytest.mark.charter("CH-4.1.13", negative=True)
def test_case_page_withholds_the_report_from_other_members_until_the_plan_is_confirmed(app, demo_ctx, clock):
    case_id = reported_case(demo_ctx)
    technologist = login(app, demo_ctx, clock, "merm.leroy")
    site_lead = login(app, demo_ctx, clock, "dr.guillou")
    for other in (technologist, site_lead):
        shown = page(other, f"/cases/{case_id}")
        assert NOTICE in shown and CONCLUSION not in shown and FINDINGS not in shown
        assert "Biopsie sous scanner" not in shown
    for party in ("dr.martin", "dr.legall"):
        shown = page(login(app, demo_ctx, clock, party), f"/cases/{case_id}")
        assert CONCLUSION in shown and FINDINGS in shown and NOTICE not in shown
    complete(demo_ctx, case_id, "propose_announcement", RADIOLOGIST, {"announcement_proposal": "En consultation."})
    complete(demo_ctx, case_id, "confirm_announcement_plan", REQUESTER, PLAN)
    shown = page(technologist, f"/cases/{case_id}")
    assert CONCLUSION in shown and FINDINGS in shown and NOTICE not in shown


@pytest.mark.charter("CH-4.1.13", negative=True)
def test_case_api_withholds_the_report_from_other_members_until_the_plan_is_confirmed(app, demo_ctx):
    case_id = reported_case(demo_ctx)
    client = app.test_client()
    technologist = issue_api_token(demo_ctx, "merm.leroy", "tests")
    requester = issue_api_token(demo_ctx, "dr.martin", "tests")
    radiologist = issue_api_token(demo_ctx, "dr.legall", "tests")
    data = api(client, technologist, f"/api/v1/cases/{case_id}")["data"]
    assert data["report_withheld"] == NOTICE
    assert "conclusion" not in data and "findings" not in data and "technique" not in data
    assert CONCLUSION not in repr(data)
    for token in (requester, radiologist):
        data = api(client, token, f"/api/v1/cases/{case_id}")["data"]
        assert data["conclusion"] == CONCLUSION and "report_withheld" not in data
    complete(demo_ctx, case_id, "propose_announcement", RADIOLOGIST, {"announcement_proposal": "En consultation."})
    complete(demo_ctx, case_id, "confirm_announcement_plan", REQUESTER, PLAN)
    data = api(client, technologist, f"/api/v1/cases/{case_id}")["data"]
    assert data["conclusion"] == CONCLUSION and "report_withheld" not in data


@pytest.mark.charter("CH-4.1.13", negative=True)
def test_case_search_page_and_api_neither_match_nor_show_the_report(app, demo_ctx, clock):
    case_id = reported_case(demo_ctx)
    technologist = login(app, demo_ctx, clock, "merm.leroy")
    listing = page(technologist, "/cases?q=carcinome")
    assert f"/cases/{case_id}" not in listing and CONCLUSION not in listing
    listing = page(technologist, "/cases?q=QUÉRÉ")
    assert f"/cases/{case_id}" in listing and CONCLUSION not in listing
    token = issue_api_token(demo_ctx, "merm.leroy", "tests")
    client = app.test_client()
    assert api(client, token, "/api/v1/cases?q=carcinome")["cases"] == []
    found = api(client, token, "/api/v1/cases?q=QUÉRÉ")["cases"]
    assert [c["id"] for c in found] == [case_id] and CONCLUSION not in repr(found)
