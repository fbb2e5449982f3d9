"""A telediagnosis request from start to end through the real pages, in Chromium, against a real server.

Every step is done by the person of the lane (requester dr.martin, technologist merm.leroy, radiologist
dr.legall), each in their own browser context, by clicking links and buttons and filling fields; a full-page
screenshot of each step goes to test-artifacts/e2e/NN-step.png. A radiologist of another territory
(dr.morvan) gets a 404 on the case and its task and does not see it in the case list (CH-5.3).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Server

VITAL_RED = "rgb(176, 42, 55)"  # .badge-urgency-0 in web/static/css/telerad.css
def choose(page: Any, name: str, value: str) -> None:
    """Pick `value` in the radio group or drop-down list called `name`."""
    radio = page.locator(f'input[type="radio"][name="{name}"][value="{value}"]')
    if radio.count():
        radio.check()
    else:
        page.locator(f'select[name="{name}"]').select_option(value)


def fill(page: Any, name: str, value: str) -> None:
    page.locator(f'[name="{name}"]').fill(value)


def tick(page: Any, name: str) -> None:
    page.locator(f'input[type="checkbox"][name="{name}"]').check()


def prior_report(tmp_path: Path) -> Path:
    """A tiny but well-formed one-page PDF (a prior report to attach)."""
    text = b"BT /F1 12 Tf 72 720 Td (Compte-rendu anterieur : scanner cerebral normal) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    body, offsets = b"%PDF-1.4\n", []
    for number, content in enumerate(objects, 1):
        offsets.append(len(body))
        body += b"%d 0 obj\n%s\nendobj\n" % (number, content)
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    body += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    body += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path = tmp_path / "cr-scanner-2024.pdf"
    path.write_bytes(body)
    return path


def create_request(page: Any, server: Server, *, birth_name: str, first_names: str, attachment: Path | None,
                   shoot: Callable[[Any, str], Path] | None = None) -> int:
    """The requester fills /cases/new/telediagnosis through the menu and sends it; returns the new case id."""
    from playwright.sync_api import expect

    page.goto("/inbox")
    page.get_by_role("link", name="Nouvelle demande").click()
    expect(page).to_have_url(server.url("/cases/new/telediagnosis"))
    expect(page.get_by_role("heading", name="Demande de télédiagnostic")).to_be_visible()
    expect(page.locator("#site_id")).to_have_value("ch-brest")  # the requester's only site
    page.get_by_label("Nom de naissance").fill(birth_name)
    fill(page, "patient-first_names", first_names)
    fill(page, "patient-birth_date", "1951-03-14")
    choose(page, "patient-sex", "M")
    choose(page, "patient-identity_status", "validated")
    tick(page, "clinical_exam_done")
    fill(page, "clinical_exam_date", "2026-11-27")
    fill(page, "clinical_context", "Chute de sa hauteur sous anticoagulant (apixaban), céphalées depuis 2 h, "
                                   "GCS 14.")
    fill(page, "question", "Hématome intracrânien ?")
    fill(page, "history", "Fibrillation atriale ; HTA.")
    choose(page, "modality", "CT")
    fill(page, "requested_exam", "Scanner cérébral sans injection")
    choose(page, "urgency", "vital")
    fill(page, "callback_phone", "02 98 34 71 00")  # required for an urgent request: the radiologist calls back
    choose(page, "pregnancy_status", "not_applicable")
    if attachment is not None:
        page.locator("#attachments").set_input_files(str(attachment))
    if shoot:
        shoot(page, "request-form")
    send = page.get_by_role("button", name="Envoyer la demande")
    assert send.evaluate("button => button.form !== null"), (
        "« Envoyer la demande » is outside any <form> on /cases/new/telediagnosis, so clicking it sends nothing "
        "(the request fields and the attachment input are not in one form)")
    send.click()
    expect(page).to_have_url(re.compile(re.escape(server.url("/cases/")) + r"\d+$"))
    expect(page.get_by_role("alert").filter(has_text="La demande est envoyée.")).to_be_visible()
    return int(page.url.rsplit("/", 1)[1])


def inbox_row(page: Any, case_id: int, spec: str) -> Any:
    return page.locator(f'#inbox tr[data-task="{spec}"]').filter(has=page.locator(f'a[href="/cases/{case_id}"]'))


def open_task(page: Any, server: Server, case_id: int, spec: str, title: str, patient: str) -> str:
    """From the inbox, open the task `spec` of the case; returns the task id."""
    from playwright.sync_api import expect

    page.get_by_role("navigation", name="Navigation principale").get_by_role("link", name="Mes tâches").click()
    expect(page).to_have_url(server.url("/inbox"))
    row = inbox_row(page, case_id, spec)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(title)
    task_id = row.get_attribute("data-task-id")
    row.get_by_role("link", name="Ouvrir").click()
    expect(page).to_have_url(server.url(f"/tasks/{task_id}"))
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.locator("#patient-banner")).to_contain_text(patient)
    return str(task_id)


def submit_task(page: Any, server: Server, title: str) -> None:
    from playwright.sync_api import expect

    page.get_by_role("button", name="Enregistrer").click()
    expect(page).to_have_url(server.url("/inbox"))
    expect(page.get_by_role("alert").filter(has_text=f"« {title} » est enregistrée.")).to_be_visible()


@pytest.mark.charter("CH-4.1.1")
@pytest.mark.charter("CH-4.1.7")
@pytest.mark.charter("CH-4.1.6")
@pytest.mark.charter("CH-4.1.2")
@pytest.mark.charter("CH-4.1.9")
@pytest.mark.charter("CH-4.1.12")
@pytest.mark.charter("CH-4.1.15")
@pytest.mark.charter("CH-5.3")
def test_telediagnosis_from_request_to_acknowledged_report(login, server, shoot, browser_log, tmp_path,
                                                          signature_code):
    from playwright.sync_api import expect

    patient = "LE GOFF Erwan"
    start = browser_log.mark()
    requester = login("dr.martin")
    case_id = create_request(requester, server, birth_name="Le Goff", first_names="Erwan",
                             attachment=prior_report(tmp_path), shoot=shoot)
    expect(requester.locator("#patient-banner")).to_contain_text(patient)
    expect(requester.locator("#attachments")).to_contain_text("cr-scanner-2024.pdf")
    expect(requester.locator("h1")).to_contain_text("En cours")
    shoot(requester, "request-sent")

    # The radiologist of the territory is offered the case (tier 1) and accepts it.
    radiologist = login("dr.legall")
    row = inbox_row(radiologist, case_id, "accept_case")
    expect(row).to_have_count(1)
    expect(row).to_have_class(re.compile(r"\burgency-0\b"))
    badge = row.locator(".badge-urgency-0")
    expect(badge).to_have_text("Urgence vitale")
    expect(badge).to_have_css("background-color", VITAL_RED)
    expect(row).to_contain_text("LE GOFF")
    shoot(radiologist, "radiologist-inbox")
    open_task(radiologist, server, case_id, "accept_case", "Accepter le dossier", patient)
    choose(radiologist, "acceptance", "accept")
    shoot(radiologist, "accept_case")
    submit_task(radiologist, server, "Accepter le dossier")
    expect(inbox_row(radiologist, case_id, "accept_case")).to_have_count(0)

    # The requester informs the patient, who consents.
    title = "Informer le patient et recueillir son consentement"
    open_task(requester, server, case_id, "inform_patient", title, patient)
    expect(requester.get_by_text("Dr Yann Le Gall")).to_be_visible()  # the named radiologist (CH-3.2)
    tick(requester, "patient_informed")
    choose(requester, "consent", "given")
    shoot(requester, "inform_patient")
    submit_task(requester, server, title)

    # The technologist checks the patient's identity.
    technologist = login("merm.leroy")
    title = "Vérifier l'identité du patient"
    open_task(technologist, server, case_id, "check_identity", title, patient)
    tick(technologist, "identity_checked")
    choose(technologist, "identity_status", "qualified")
    choose(technologist, "identity_document", "id_card")
    shoot(technologist, "check_identity")
    submit_task(technologist, server, title)

    # The radiologist validates the indication, then chooses a protocol without contrast.
    title = "Justifier l'examen (valider l'indication)"
    open_task(radiologist, server, case_id, "justify", title, patient)
    choose(radiologist, "justification", "validate")
    shoot(radiologist, "justify")
    submit_task(radiologist, server, title)

    title = "Choisir le protocole"
    open_task(radiologist, server, case_id, "choose_protocol", title, patient)
    choose(radiologist, "protocol", "ct_head_plain")
    fill(radiologist, "instructions", "Coupes fines de la fosse postérieure.")
    shoot(radiologist, "choose_protocol")
    submit_task(radiologist, server, title)

    # The technologist performs the acquisition and sends the images.
    title = "Réaliser l'acquisition et transmettre les images"
    open_task(technologist, server, case_id, "acquire_images", title, patient)
    # What the radiologist recorded, shown above the fields with who recorded it (issue 17, item 1).
    recorded = technologist.locator("#task-context")
    expect(recorded.get_by_text("Coupes fines de la fosse postérieure.")).to_be_visible()
    expect(recorded).to_contain_text("Le Gall")
    tick(technologist, "images_sent")
    tick(technologist, "protocol_followed")
    shoot(technologist, "acquire_images")
    submit_task(technologist, server, title)

    # The radiologist interprets and writes the report.
    title = "Interpréter et rédiger le compte-rendu"
    conclusion = "Pas d'hématome intracrânien ni de fracture."
    open_task(radiologist, server, case_id, "interpret", title, patient)
    choose(radiologist, "outcome", "report")
    fill(radiologist, "technique", "Scanner cérébral sans injection, acquisition hélicoïdale.")
    fill(radiologist, "findings", "Pas de collection hémorragique intra- ou extra-axiale. Pas de fracture.")
    fill(radiologist, "conclusion", conclusion)
    choose(radiologist, "certainty", "certain")
    shoot(radiologist, "interpret")
    fill(radiologist, "signature_code", signature_code("dr.legall"))  # the report is signed (CH-5.3)
    submit_task(radiologist, server, title)

    # The requester acknowledges the report; the case is then closed.
    title = "Prendre connaissance du compte-rendu et l'intégrer au dossier"
    open_task(requester, server, case_id, "acknowledge_report", title, patient)
    # The whole report above the fields, with who wrote it (not only the conclusion: issue 17, item 1).
    report = requester.locator("#task-context")
    expect(report.get_by_text(conclusion)).to_be_visible()
    findings = "Pas de collection hémorragique intra- ou extra-axiale. Pas de fracture."
    expect(report.get_by_text(findings)).to_be_visible()
    tick(requester, "report_read")
    tick(requester, "integrated_in_record")
    shoot(requester, "acknowledge_report")
    submit_task(requester, server, title)

    requester.get_by_role("link", name="Dossiers").click()
    expect(requester).to_have_url(server.url("/cases"))
    case_row = requester.locator("tbody tr").filter(has=requester.locator(f'a[href="/cases/{case_id}"]'))
    expect(case_row).to_contain_text("Clos")
    case_row.get_by_role("link", name=str(case_id), exact=True).click()
    expect(requester).to_have_url(server.url(f"/cases/{case_id}"))
    expect(requester.get_by_role("heading", level=1)).to_contain_text(f"Télédiagnostic n° {case_id}")
    expect(requester.get_by_role("heading", level=1).locator(".badge")).to_have_text("Clos")
    report = requester.get_by_role("region", name="Compte-rendu", exact=True)
    expect(report).to_contain_text(conclusion)
    expect(report).to_contain_text("intégré au dossier médical par le demandeur")
    # Signed with the radiologist's code (issue 17, item 5); every step's record in French (item 1).
    expect(requester.get_by_role("region", name="Signature du compte-rendu")).to_contain_text(
        "Signé électroniquement par Dr Yann Le Gall")
    expect(requester.locator("#steps")).to_contain_text("Coupes fines de la fosse postérieure.")
    expect(requester.locator(".timeline")).not_to_contain_text("Étape terminée")
    expect(requester.locator(".timeline")).to_contain_text("Dossier clos")
    expect(requester.locator(".diagram-canvas svg").first).to_be_visible()
    expect(requester.locator(".diagram-canvas")).to_have_attribute("aria-busy", "false")
    expect(requester.locator(".diagram-error")).to_have_text("")
    expect(requester.locator(".diagram-canvas .djs-element.done").first).to_be_attached()
    shoot(requester, "case-closed")

    csp = browser_log.matching("Content Security Policy", start)
    assert not csp, "\n".join(csp)
    errors = browser_log.errors(start)
    assert not errors, "\n".join(errors)


@pytest.mark.charter("CH-5.3")
@pytest.mark.charter("CH-8.1")
def test_radiologist_of_another_territory_cannot_open_the_case(login, server, shoot):
    from playwright.sync_api import expect

    requester = login("dr.martin")
    case_id = create_request(requester, server, birth_name="Abgrall", first_names="Mikaël", attachment=None)
    open_steps = requester.get_by_role("region", name="Étapes en cours")
    accept_link = open_steps.get_by_role("link", name="Accepter le dossier")
    expect(accept_link).to_have_count(1)
    task_id = accept_link.get_attribute("href").rsplit("/", 1)[1]

    outsider = login("dr.morvan")  # territory morlaix: not offered tier 1 of a ch-brest case
    assert outsider.request.get(f"/cases/{case_id}/diagram.bpmn").status == 404
    for path in (f"/cases/{case_id}", f"/tasks/{task_id}"):
        response = outsider.goto(path)
        assert response is not None and response.status == 404, (path, response and response.status)
        expect(outsider.get_by_role("heading", level=1)).to_have_text("Page introuvable")
        expect(outsider.locator("body")).not_to_contain_text("ABGRALL")
        shoot(outsider, "outsider-404-" + path.strip("/").split("/")[0])
    outsider.get_by_role("link", name="Dossiers").click()
    expect(outsider).to_have_url(server.url("/cases"))
    expect(outsider.get_by_role("heading", name="Dossiers")).to_be_visible()
    expect(outsider.locator(f'a[href="/cases/{case_id}"]')).to_have_count(0)
    expect(outsider.locator("main")).not_to_contain_text("ABGRALL")
    shoot(outsider, "outsider-cases")
    outsider.get_by_role("link", name="Mes tâches").first.click()
    expect(outsider).to_have_url(server.url("/inbox"))
    expect(outsider.locator(f'main a[href="/cases/{case_id}"]')).to_have_count(0)
    shoot(outsider, "outsider-inbox")
