"""The administrator's DICOM page: the calling AE titles allowed per site."""

from __future__ import annotations

import re

from tests.demo_app import login
from tests.integration import dicom_support

dicom_ctx, app = dicom_support.dicom_ctx, dicom_support.dicom_app  # fixtures


def test_administrators_manage_the_calling_ae_titles(app, dicom_ctx, clock):
    admin = login(app, dicom_ctx, clock, "admin")
    page = admin.get("/admin/dicom").get_data(as_text=True)
    assert "CT_BREST" in page and "CH de Brest (urgences)" in page
    refused = admin.post("/admin/dicom", data={"site_id": "ch-morlaix", "ae_title": "BAD\\TITLE"})
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "Titre AE invalide" in text and 'value="BAD\\TITLE"' in text  # what was typed stays
    duplicate = admin.post("/admin/dicom", data={"site_id": "ch-morlaix", "ae_title": "CT_BREST"})
    assert duplicate.status_code == 400 and "déjà autorisé" in duplicate.get_data(as_text=True)
    added = admin.post("/admin/dicom", data={"site_id": "ch-morlaix", "ae_title": "IRM_MORLAIX"},
                       follow_redirects=True).get_data(as_text=True)
    assert "Titre AE IRM_MORLAIX autorisé." in added and "IRM_MORLAIX" in added
    caller_id = re.search(r'/admin/dicom/callers/(\d+)/delete"[^<]*>\s*<input[^>]*>\s*<button[^>]*>[^<]*'
                          r'<span class="visually-hidden">IRM_MORLAIX', added)
    assert caller_id
    removed = admin.post(f"/admin/dicom/callers/{caller_id.group(1)}/delete", follow_redirects=True)
    assert "IRM_MORLAIX" not in removed.get_data(as_text=True).split("Titre AE retiré")[1]
    assert login(app, dicom_ctx, clock, "merm.leroy").get("/admin/dicom").status_code == 403
