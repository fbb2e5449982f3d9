"""Through the real pages, in Chromium: a contrast-enhanced CT (CH-4.1.10) whose injection waits for the joint
contraindication check and the attested presence of a named physician, then a poor-prognosis report (CH-4.1.13)
whose findings and conclusion another member of the site cannot read until the requester confirms the
announcement plan."""

from __future__ import annotations

import pytest

from tests.e2e.test_telediagnosis_browser import choose, create_request, fill, inbox_row, open_task, submit_task, tick


@pytest.mark.charter("CH-4.1.10", negative=True)
@pytest.mark.charter("CH-4.1.13", negative=True)
def test_contrast_injection_then_bad_news_through_the_pages(login, server, shoot, browser_log, signature_code):
    from playwright.sync_api import expect

    patient = "CARADEC Loïc"
    start = browser_log.mark()
    requester, radiologist, technologist = login("dr.martin"), login("dr.legall"), login("merm.leroy")
    case_id = create_request(requester, server, birth_name="Caradec", first_names="Loïc", attachment=None)

    open_task(radiologist, server, case_id, "accept_case", "Accepter le dossier", patient)
    choose(radiologist, "acceptance", "accept")
    submit_task(radiologist, server, "Accepter le dossier")
    title = "Informer le patient et recueillir son consentement"
    open_task(requester, server, case_id, "inform_patient", title, patient)
    tick(requester, "patient_informed")
    choose(requester, "consent", "given")
    submit_task(requester, server, title)
    title = "Vérifier l'identité du patient"
    open_task(technologist, server, case_id, "check_identity", title, patient)
    tick(technologist, "identity_checked")
    choose(technologist, "identity_status", "qualified")
    choose(technologist, "identity_document", "id_card")
    submit_task(technologist, server, title)
    title = "Justifier l'examen (valider l'indication)"
    open_task(radiologist, server, case_id, "justify", title, patient)
    choose(radiologist, "justification", "validate")
    submit_task(radiologist, server, title)

    # The protocol carries the injection: no separate tick box, and only CT protocols are offered.
    title = "Choisir le protocole"
    open_task(radiologist, server, case_id, "choose_protocol", title, patient)
    expect(radiologist.locator('[name="contrast"]')).to_have_count(0)
    expect(radiologist.locator('[name="protocol"] option[value="mr_brain"]')).to_have_count(0)
    choose(radiologist, "protocol", "ct_head_contrast")
    shoot(radiologist, "contrast-protocol")
    submit_task(radiologist, server, title)

    # No acquisition before the contraindications are checked by both and a physician's presence is attested.
    expect(inbox_row(technologist, case_id, "acquire_images")).to_have_count(0)
    title = "Contre-indications : avis du demandeur"
    open_task(requester, server, case_id, "check_contraindications_requester", title, patient)
    fill(requester, "renal_function_egfr", "82")
    submit_task(requester, server, title)
    title = "Contre-indications : décision du radiologue"
    open_task(radiologist, server, case_id, "check_contraindications_radiologist", title, patient)
    choose(radiologist, "contrast_decision", "cleared")
    submit_task(radiologist, server, title)
    technologist.goto("/inbox")
    expect(inbox_row(technologist, case_id, "acquire_images")).to_have_count(0)
    title = "Attester la présence d'un médecin auprès du manipulateur"
    open_task(technologist, server, case_id, "attest_physician_presence", title, patient)
    fill(technologist, "physician_name", "Dr Martin")
    choose(technologist, "physician_role", "requester")
    tick(technologist, "physically_present")
    shoot(technologist, "presence-attested")
    submit_task(technologist, server, title)
    title = "Enregistrer l'injection"
    open_task(technologist, server, case_id, "record_injection", title, patient)
    fill(technologist, "product", "Iohexol 350")
    fill(technologist, "volume_ml", "70")
    fill(technologist, "lot_number", "LOT-4471B")
    fill(technologist, "injected_at", "2026-11-27T03:12")
    submit_task(technologist, server, title)
    title = "Réaliser l'acquisition et transmettre les images"
    open_task(technologist, server, case_id, "acquire_images", title, patient)
    tick(technologist, "images_sent")
    tick(technologist, "protocol_followed")
    submit_task(technologist, server, title)

    # A poor-prognosis report: the announcement is planned with the requester before anyone else reads it.
    conclusion = "Processus expansif temporal gauche évocateur d'une tumeur gliale de haut grade."
    title = "Interpréter et rédiger le compte-rendu"
    open_task(radiologist, server, case_id, "interpret", title, patient)
    choose(radiologist, "outcome", "report")
    fill(radiologist, "findings", "Masse temporale gauche de 45 mm, prise de contraste annulaire, oedème.")
    fill(radiologist, "conclusion", conclusion)
    choose(radiologist, "certainty", "certain")
    tick(radiologist, "poor_prognosis")
    fill(radiologist, "signature_code", signature_code("dr.legall"))  # the report is signed (CH-5.3)
    submit_task(radiologist, server, title)
    title = "Proposer une procédure d'annonce"
    open_task(radiologist, server, case_id, "propose_announcement", title, patient)
    fill(radiologist, "announcement_proposal", "Consultation d'annonce demain avec le neurologue.")
    submit_task(radiologist, server, title)

    technologist.goto(f"/cases/{case_id}")
    expect(technologist.locator("#report-withheld")).to_be_visible()
    expect(technologist.get_by_text(conclusion)).to_have_count(0)
    shoot(technologist, "bad-news-withheld")
    requester.goto(f"/cases/{case_id}")
    expect(requester.get_by_text(conclusion).first).to_be_visible()  # the requester reads it to plan the announcement

    title = "Confirmer le plan d'annonce"
    open_task(requester, server, case_id, "confirm_announcement_plan", title, patient)
    tick(requester, "plan_confirmed")
    fill(requester, "announcer", "Dr Martin et Dr Le Gall")
    fill(requester, "planned_at", "2026-11-28T10:00")
    submit_task(requester, server, title)
    technologist.goto(f"/cases/{case_id}")
    expect(technologist.get_by_text(conclusion).first).to_be_visible()
    expect(technologist.locator("#report-withheld")).to_have_count(0)
    shoot(technologist, "bad-news-released")

    csp = browser_log.matching("Content Security Policy", start)
    assert not csp, "\n".join(csp)
    assert not browser_log.errors(start), "\n".join(browser_log.errors(start))
