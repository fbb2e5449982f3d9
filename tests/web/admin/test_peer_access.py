"""Administrators bind HL7 senders and DICOM calling AE titles to source addresses and a client certificate
name (issue 16, item 5), validated on the server with French messages; nobody else may (CH-5.3)."""

from __future__ import annotations

import html

import pytest

from integrations.dicom.callers import list_calling_aes
from integrations.hl7.senders import list_senders
from tests.demo_app import login, web_app
from tests.integration import dicom_support
from tests.integration.hl7_support import demo_hl7_ctx

dicom_ctx, dicom_app = dicom_support.dicom_ctx, dicom_support.dicom_app  # fixtures


@pytest.fixture
def hl7_ctx(request, make_ctx, database_url):
    return demo_hl7_ctx(request, make_ctx, database_url)


@pytest.fixture
def hl7_app(hl7_ctx, database_url, tmp_path):
    return web_app(hl7_ctx, database_url, tmp_path)


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def sender(ctx, application: str):
    return next(s for s in list_senders(ctx) if s.sending_application == application)


def caller(ctx, title: str):
    return next(c for c in list_calling_aes(ctx) if c.ae_title == title)


@pytest.mark.charter("CH-5.3")
def test_administrators_restrict_hl7_senders(hl7_app, hl7_ctx, clock):
    admin = login(hl7_app, hl7_ctx, clock, "admin")
    form = {"sender-site_id": "ch-morlaix", "sender-application": "RIS_NEW", "sender-facility": "CH_NEW",
            "sender-submit": "1"}
    refused = text(admin.post("/admin/hl7/", data={**form, "sender-allowed_sources": "10.0.0.0/8, 10.1.2.300"}))
    assert "Adresse ou réseau invalide : 10.1.2.300" in refused
    assert not [s for s in list_senders(hl7_ctx) if s.sending_application == "RIS_NEW"]
    page = text(admin.post("/admin/hl7/", data={**form, "sender-allowed_sources": "10.29.4.0/24 192.0.2.7",
                                                "sender-client_cert_name": "ris.morlaix.test"},
                           follow_redirects=True))
    assert "10.29.4.0/24, 192.0.2.7/32" in page and "ris.morlaix.test" in page
    brest = sender(hl7_ctx, "RIS_BREST")
    bad = text(admin.post(f"/admin/hl7/senders/{brest.id}/access", data={"allowed_sources": "not-an-address"},
                          follow_redirects=True))
    assert "Adresse ou réseau invalide : not-an-address" in bad and sender(hl7_ctx, "RIS_BREST").allowed_sources is None
    bad_name = text(admin.post(f"/admin/hl7/senders/{brest.id}/access", data={"client_cert_name": "a|b"},
                               follow_redirects=True))
    assert "Nom de certificat invalide" in bad_name
    admin.post(f"/admin/hl7/senders/{brest.id}/access", data={"allowed_sources": "10.29.1.0/24",
                                                               "client_cert_name": "ris.brest.test"})
    restricted = sender(hl7_ctx, "RIS_BREST")
    assert (restricted.allowed_sources, restricted.client_cert_name) == ("10.29.1.0/24", "ris.brest.test")
    admin.post(f"/admin/hl7/senders/{brest.id}/access", data={"allowed_sources": "", "client_cert_name": ""})
    cleared = sender(hl7_ctx, "RIS_BREST")
    assert (cleared.allowed_sources, cleared.client_cert_name) == (None, None)
    other = login(hl7_app, hl7_ctx, clock, "dr.martin")
    assert other.post(f"/admin/hl7/senders/{brest.id}/access", data={"allowed_sources": "0.0.0.0/0"}).status_code \
        == 403


@pytest.mark.charter("CH-5.3")
def test_administrators_restrict_calling_ae_titles(dicom_app, dicom_ctx, clock):
    admin = login(dicom_app, dicom_ctx, clock, "admin")
    refused = admin.post("/admin/dicom", data={"site_id": "ch-morlaix", "ae_title": "IRM_MORLAIX",
                                               "allowed_sources": "192.0.2.0/33"})
    assert refused.status_code == 400 and "Adresse ou réseau invalide : 192.0.2.0/33" in text(refused)
    assert 'value="192.0.2.0/33"' in refused.get_data(as_text=True)  # what was typed stays
    added = text(admin.post("/admin/dicom", data={"site_id": "ch-morlaix", "ae_title": "IRM_MORLAIX",
                                                  "allowed_sources": "192.0.2.0/24",
                                                  "client_cert_name": "irm.morlaix.test"}, follow_redirects=True))
    assert "192.0.2.0/24" in added and "irm.morlaix.test" in added
    brest = caller(dicom_ctx, "CT_BREST")
    bad = text(admin.post(f"/admin/dicom/callers/{brest.id}/access", data={"allowed_sources": "ct-brest"},
                          follow_redirects=True))
    assert "Adresse ou réseau invalide : ct-brest" in bad and caller(dicom_ctx, "CT_BREST").allowed_sources is None
    admin.post(f"/admin/dicom/callers/{brest.id}/access", data={"allowed_sources": "10.29.8.0/24",
                                                                 "client_cert_name": "ct-brest.test"})
    restricted = caller(dicom_ctx, "CT_BREST")
    assert (restricted.allowed_sources, restricted.client_cert_name) == ("10.29.8.0/24", "ct-brest.test")
    assert admin.post("/admin/dicom/callers/999999/access", data={}).status_code == 404
    other = login(dicom_app, dicom_ctx, clock, "merm.leroy")
    assert other.post(f"/admin/dicom/callers/{brest.id}/access", data={}).status_code == 403
