"""A research export in Chromium (issue 20, item 2; CH-8.2): the demo researcher files a request from the
"Recherche" page, the administrator approves it, the export is produced in the background (the request page
refreshes itself until it is ready), the researcher downloads the zip once — every DICOM file in it read back by
pydicom without the demo patients' identity — and a second download is refused in French."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pydicom
import pytest

DEMO_NAMES = ("QUERE", "Quéré", "LE BIHAN", "IPP-BREST")


@pytest.mark.charter("CH-8.2")
def test_CH8_2_a_request_is_approved_and_its_export_downloaded_once(login, browser_log, shoot):
    from playwright.sync_api import expect

    start = browser_log.mark()
    page = login("c.leroux")
    page.get_by_role("link", name="Recherche", exact=True).click()
    expect(page.get_by_role("heading", name="Exports de recherche")).to_be_visible()
    page.get_by_label("Protocole de l’étude").fill("ETUDE-E2E-2026")
    page.get_by_label("Référence de l’autorisation (CPP, CNIL…)").fill("CPP Ouest IV 2026-E2E")
    page.get_by_label("Début de la période").fill("2000-01-01")
    page.get_by_label("Fin de la période").fill("2100-12-31")
    page.get_by_label("CH de Brest (urgences)").check()
    page.get_by_label("Type de demande").check()
    page.get_by_label("Sexe").check()
    page.get_by_label("Images désidentifiées (profil de confidentialité de base DICOM)").check()
    page.get_by_role("button", name="Déposer la demande").click()
    expect(page.locator("#research-status")).to_have_text("En attente d'approbation")
    expect(page.locator("dl")).to_contain_text("Dr Claire Le Roux")
    request_path = re.search(r"/research/\d+$", page.url).group(0)
    shoot(page, "research-request")

    admin = login("admin")
    admin.goto(request_path)
    admin.get_by_role("button", name="Approuver").click()
    expect(admin.locator(".alert-success")).to_contain_text("Demande approuvée")

    page.goto(request_path)
    expect(page.locator("#research-status")).to_have_text("Export prêt", timeout=90_000)  # the page refreshes
    shoot(page, "research-ready")
    with page.expect_download() as download_info:
        page.locator("#research-download").click()
    content = Path(download_info.value.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        names = archive.namelist()
        assert "cases.json" in names and "manifest.json" in names
        text = archive.read("cases.json").decode()
        for name in DEMO_NAMES:
            assert name.lower() not in text.lower()
        for image in (n for n in names if n.endswith(".dcm")):
            dataset = pydicom.dcmread(io.BytesIO(archive.read(image)))
            assert dataset.PatientIdentityRemoved == "YES"
            assert not any(element.tag.is_private for element in dataset.iterall())
            values = " ".join(str(e.value) for e in dataset.iterall() if e.VR not in ("OB", "OW", "OF", "UN"))
            assert not any(name.lower() in values.lower() for name in DEMO_NAMES), image
    second = page.request.get(request_path + "/download")
    assert second.status == 409 and "déjà été téléchargé" in second.text().replace("&#39;", "'")
    page.goto(request_path)
    expect(page.locator("#research-status")).to_have_text("Export téléchargé")
    csp = browser_log.matching("Content Security Policy", start)
    assert not csp, "\n".join(csp)
