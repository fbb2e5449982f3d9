"""The CCAM tables page (/fees/ccam, CH-7.1), administrators only: the tables listed with their format and technical
fees, the CNAM's CCAM workbook uploaded with the CT and MRI fees and listed with what was kept and skipped; a bad
file, a missing fee, a bad date: a French 400 page and nothing loaded, never a 500; a radiologist or a site's
medical lead: 403 on both routes. SQLite and PostgreSQL."""

from __future__ import annotations

import html as markup
import io
import re
from datetime import date

import openpyxl
import pytest

from engine.domain.actors import Actor
from engine.services.ccam_tables import list_tables, load_table
from engine.services.fee_statements import Scope, issue_statement, parse_month
from tests.ccam_ameli_files import ROWS, workbook
from tests.demo_app import app, demo_ctx, login, web_app  # noqa: F401 - the fixtures
from tests.integration import fees_scenario
from web.admin import fees_ccam

FEES = {"ct_technical_fee": "60,00", "mri_technical_fee": "150"}


def _form(content=None, name="CCAM_V80.xlsx", **fields):
    data = {"effective": "2026-01-01", **FEES, **fields}
    if content is not False:
        data["file"] = (io.BytesIO(workbook() if content is None else content), name)
    return data


@pytest.mark.charter("CH-7.1")
@pytest.mark.charter("CH-7.2", negative=True)
def test_CH7_1_an_administrator_loads_the_cnam_workbook_and_sees_it_listed(app, demo_ctx, clock, monkeypatch):  # noqa: F811
    load_table(demo_ctx, Actor.system(), None, date(2000, 1, 1))
    admin = login(app, demo_ctx, clock, "admin")
    page = admin.get("/fees/ccam").get_data(as_text=True)
    assert "Tables CCAM" in page and "ccam_sample.csv" in page and "EXEMPLE" in page and 'name="file"' in page
    for data, message in (
            (_form(ct_technical_fee=""), "indiquez le forfait technique de scanner"),
            (_form(mri_technical_fee="cent"), "montant illisible"),
            (_form(effective="01/13/2026"), "Date d’effet invalide"),
            (_form(False), "Choisissez le fichier"),
            (_form(b"not a workbook at all", name="CCAM.xls"), "illisible"),
            (_form(workbook(header=["Code", "Désignation", "Prix"])), "ligne d'en-tête introuvable"),
            (_form(workbook([*ROWS, ["ZBQK02", "Radiographie du thorax", 1, 0, 21.28]])), "code CCAM invalide"),
            (_form(b"code,label\nACQK001,x\n", name="ccam.csv", ct_technical_fee="", mri_technical_fee=""),
             "colonnes manquantes"),
            (_form(b"code,label\nACQK001,x\n", name="ccam.csv"), "ne s'indiquent que pour le fichier CCAM")):
        response = admin.post("/fees/ccam", data=data, content_type="multipart/form-data")
        html = markup.unescape(response.get_data(as_text=True))
        assert response.status_code == 400 and 'id="ccam-error"' in html and message in html, (message, html[:300])
        assert "rien n’a été chargé" in html
    monkeypatch.setattr(fees_ccam, "MAX_TABLE_BYTES", 1024)  # the size limit, without a 20 Mo upload
    response = admin.post("/fees/ccam", data=_form(), content_type="multipart/form-data")
    assert response.status_code == 400 and "Fichier trop volumineux (0 Mo au plus)" in response.get_data(as_text=True)
    monkeypatch.undo()
    assert len(list_tables(demo_ctx)) == 1
    response = admin.post("/fees/ccam", data=_form(), content_type="multipart/form-data")
    assert response.status_code == 302 and response.headers["Location"].endswith("/fees/ccam")
    html = markup.unescape(admin.get("/fees/ccam").get_data(as_text=True))
    assert "Table CCAM chargée : 5 acte(s) en vigueur à partir du 01/01/2026 (CCAM_V80.xlsx)" in html
    assert "actes d’IRM : 1, actes de radiologie conventionnelle : 2, actes de scanner : 2" in html
    assert "3 ligne(s) sans code CCAM" in html and "2 acte(s) d’imagerie d’une autre activité" in html
    row = re.search(r'<tr data-table-id="\d+" data-format="cnam-excel">(.*?)</tr>', html, re.S).group(1)
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
    assert cells[1:7] == ["CCAM_V80.xlsx", "Fichier CCAM de la CNAM", "5", "60.00", "150.00", "admin"]
    [table] = [t for t in list_tables(demo_ctx) if not t.sample]
    assert (table.effective_from, table.act_count, table.loaded_by) == (date(2026, 1, 1), 5, "admin")


@pytest.mark.charter("CH-7.1", negative=True)
@pytest.mark.parametrize("username", ["dr.legall", "dr.guillou"])
def test_CH7_1_only_an_administrator_reaches_the_ccam_tables(app, demo_ctx, clock, username):  # noqa: F811
    client = login(app, demo_ctx, clock, username)
    assert client.get("/fees/ccam").status_code == 403
    response = client.post("/fees/ccam", data=_form(), content_type="multipart/form-data")
    assert response.status_code == 403 and list_tables(demo_ctx) == []
    assert app.test_client().get("/fees/ccam").status_code in (302, 401)


fees_ctx = fees_scenario.fees_ctx


@pytest.fixture
def fees_app(fees_ctx, database_url, tmp_path):
    return web_app(fees_ctx, database_url, tmp_path)


@pytest.mark.charter("CH-7.1", negative=True)
def test_CH7_1_the_page_refuses_a_dense_workbook_a_flat_rate_and_a_table_in_an_issued_month(fees_app, fees_ctx,
                                                                                           clock):
    issue_statement(fees_ctx, fees_scenario.ADMIN, Scope("site", "ch-brest"), parse_month("2025-12"))
    before = list_tables(fees_ctx)
    admin = login(fees_app, fees_ctx, clock, "admin")
    dense = openpyxl.Workbook()
    dense.active["A1"], dense.active["XFD1048576"] = "Code", "x"
    buffer = io.BytesIO()
    dense.save(buffer)
    flat = (b"code,label,modality,family,price_eur,technical_share_eur\n"
            b"ZZZZ999,Forfait de productivite mensuel,XR,radiologie,3000,\n")
    for data, message in (
            (_form(buffer.getvalue()), "le classeur est trop grand ou illisible"),
            (_form(effective="2025-12-15"), "Date d'effet refusée : le relevé de 2025-12 est déjà émis"),
            (_form(flat, name="ccam.csv", ct_technical_fee="", mri_technical_fee=""), "libellé refusé"),
            (_form(mri_technical_fee="0.004"), "deux décimales au plus"),
            (_form(workbook([["ZBQK002", "Radiographie du thorax", 1, 0, "1e9999"]])), "tarif illisible")):
        response = admin.post("/fees/ccam", data=data, content_type="multipart/form-data")
        html = markup.unescape(response.get_data(as_text=True))
        assert response.status_code == 400 and message in html and "rien n’a été chargé" in html, (message, html[:300])
    assert list_tables(fees_ctx) == before
    response = admin.post("/fees/ccam", data=_form(effective="2026-01-01"), content_type="multipart/form-data")
    assert response.status_code == 302 and len(list_tables(fees_ctx)) == len(before) + 1
