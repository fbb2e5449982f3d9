"""The quality indicators dashboard and its CSV (CH-6.3): administrators and auditors see every site, a site lead
only his own (another site named in the address is refused, page and CSV), other roles nothing; filters in the
address, a bad one answered by a French 400 page; charts fed from a JSON block (no inline script) with tables."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from tests import demo_app
from web.shared.csp import CSP

app, demo_ctx = demo_app.app, demo_app.demo_ctx
login = demo_app.login
# The demo's three cases are created on the test clock's day (Monday 5 January 2026) at CH de Brest.
PERIOD = "from=2026-01-05&to=2026-01-11"


def chart_data(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="indicators-data">(.*?)</script>', page, re.S)
    assert match, "the charts' data block is missing"
    return json.loads(match.group(1))


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff")), delimiter=";"))


def value(rows: list[list[str]], label: str) -> str:
    return next(row[2] for row in rows if len(row) == 3 and row[1] == label)


@pytest.mark.charter("CH-6.3")
def test_CH6_3_an_administrator_sees_every_site_with_charts_and_tables(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    response = client.get(f"/admin/indicators?{PERIOD}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    assert response.headers["Content-Security-Policy"] == CSP
    assert "Indicateurs qualité" in page and 'href="/admin/indicators"' in page  # the menu link
    for canvas in ("chart-within", "chart-distribution", "chart-weekly"):
        assert f'<canvas id="{canvas}"' in page
    assert "vendor/chartjs/chart.umd.min.js" in page and "js/indicators.js" in page
    assert not re.search(r"<script(?![^>]*\b(src|type=\"application/json\"))[^>]*>", page)  # no inline script
    assert " style=" not in page
    data = chart_data(page)
    assert data["weeks"] == ["2026-01-05"] and data["weekly_requests"] == [3]
    assert data["levels"]["vital"] == "Urgence vitale" and len(data["buckets"]) == 9
    assert data["order"] == ["vital", "urgent", "scheduled"]  # the charts' order (the block's keys come sorted)
    assert "Demandes (télédiagnostic et téléexpertise)" in page and "<option value=\"\">Tous</option>" in page
    rows = csv_rows(client.get(f"/admin/indicators/export.csv?{PERIOD}"))
    assert value(rows, "Demandes (télédiagnostic et téléexpertise)") == "3"
    assert rows[0] == ["Période", "2026-01-05", "2026-01-11"]


@pytest.mark.charter("CH-6.3")
def test_CH6_3_the_filters_in_the_address_choose_the_cases(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "auditor")
    for query, requests in (("site=ch-morlaix", 0), ("site=ch-brest", 3), ("urgency=vital", 1),
                            ("modality=XR", 1), ("territory=morlaix", 0)):
        response = client.get(f"/admin/indicators?{PERIOD}&{query}")
        assert response.status_code == 200 and chart_data(response.get_data(as_text=True))["weekly_requests"] == [
            requests], query
        rows = csv_rows(client.get(f"/admin/indicators/export.csv?{PERIOD}&{query}"))
        assert value(rows, "Demandes (télédiagnostic et téléexpertise)") == str(requests), query


@pytest.mark.charter("CH-6.3", negative=True)
def test_CH6_3_a_site_lead_sees_only_his_site_and_a_forged_site_is_refused(app, demo_ctx, clock):
    brest = login(app, demo_ctx, clock, "dr.guillou")  # medical lead of CH de Brest
    page = brest.get(f"/admin/indicators?{PERIOD}").get_data(as_text=True)
    assert chart_data(page)["weekly_requests"] == [3]
    assert 'value="ch-morlaix"' not in page and "<option value=\"\">Tous</option>" not in page.split("f-territory")[0]
    morlaix = login(app, demo_ctx, clock, "dr.riou")  # medical lead of CH de Morlaix
    page = morlaix.get(f"/admin/indicators?{PERIOD}").get_data(as_text=True)
    assert chart_data(page)["weekly_requests"] == [0]  # his own site by default, not the others'
    rows = csv_rows(morlaix.get(f"/admin/indicators/export.csv?{PERIOD}"))
    assert value(rows, "Demandes (télédiagnostic et téléexpertise)") == "0"
    for path in ("/admin/indicators", "/admin/indicators/export.csv"):
        response = morlaix.get(f"{path}?{PERIOD}&site=ch-brest")
        assert response.status_code == 403 and "Accès refusé" in response.get_data(as_text=True), path
        assert "text/csv" not in response.content_type
        # Another territory's on-call coverage is not his either; his own site's territory is.
        response = morlaix.get(f"{path}?{PERIOD}&territory=brest")
        assert response.status_code == 403 and "text/csv" not in response.content_type, path
        assert morlaix.get(f"{path}?{PERIOD}&territory=morlaix").status_code == 200, path


@pytest.mark.charter("CH-6.3", negative=True)
@pytest.mark.parametrize("username", ["dr.martin", "dr.legall", "merm.leroy", "designer"])
def test_CH6_3_other_roles_get_403_on_the_page_and_the_csv(app, demo_ctx, clock, username):
    client = login(app, demo_ctx, clock, username)
    for path in ("/admin/indicators", "/admin/indicators/export.csv"):
        response = client.get(path)
        assert response.status_code == 403 and "Accès refusé" in response.get_data(as_text=True), (username, path)
    assert 'href="/admin/indicators"' not in client.get("/inbox").get_data(as_text=True)


@pytest.mark.charter("CH-6.3", negative=True)
def test_CH6_3_a_bad_filter_is_a_french_400_page_never_a_500(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    for query, message in (("from=2026-13-01", "Date invalide"), ("from=2026-01-10&to=2026-01-01", "précède"),
                           ("urgency=whenever", "« Urgence »"), ("modality=PET", "« Modalité »"),
                           ("site=nowhere", "« Site »"), ("radiologist=dr.martin", "« Radiologue »"),
                           ("territory=%27%3B--", "« Territoire »"), ("from=2020-01-01&to=2026-01-01", "deux ans"),
                           ("from=1999-12-01&to=1999-12-02", "entre 2000 et 2100"),
                           ("to=0001-01-02", "Date invalide")):
        for path in ("/admin/indicators", "/admin/indicators/export.csv"):
            response = client.get(f"{path}?{query}")
            page = response.get_data(as_text=True)
            assert response.status_code == 400 and message in page, (path, query, page[:300])
