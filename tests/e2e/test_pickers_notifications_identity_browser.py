"""People pickers, "Mes notifications" and the identity reconciliation of held images, on the real pages in
Chromium against a real server (issue 17, items 3, 6, 7 and 9).

1. The expert picker of a new teleexpertise request (te_request, ``x-picker`` purpose expert): typing part of a
   name offers only the tele-experts eligible for the requesting site, by name; the one chosen is named on the
   case page. The requesting physician, to whom the menu offers the page, sends it too (CH-4.2.1).
2. The physician-present picker of the attestation of presence before an injection (cs_presence, purpose
   physician_present): only the active physicians of the case's site are proposed; the one chosen is named in the
   case's recorded steps.
3. "Mes notifications": email, phone and preferences saved, kept after a reload; a bad address gets the French
   error on the page (400), never a 500.
4. Identity reconciliation: an instance sent over DICOM (DCMTK's storescu, the demo's calling AE CT_BREST) whose
   patient differs from the case's, after the case's identity check, is held; the reconciliation case shows the
   blocked case's patient and urgency, sorts with it in the technologist's inbox, and both cases link to each
   other.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.e2e.conftest import Server
from tests.e2e.test_telediagnosis_browser import choose, create_request, fill, inbox_row, open_task, submit_task, tick

BIRTH_NAME, FIRST_NAMES = "Rapprochement", "Gwendal"
PATIENT = "RAPPROCHEMENT Gwendal"  # create_request: born 14/03/1951, male, vital emergency, CT, CH de Brest
SCP_LINE = re.compile(r"DICOM SCP (\S+) listening on 127\.0\.0\.1:(\d+)")


def picker_search(page: Any, field: str, query: str) -> list[dict[str, str]]:
    """Type `query` in the picker `field`; returns the server's answer once the page's list shows it."""
    from playwright.sync_api import expect

    wanted = urlencode({"q": query})
    with page.expect_response(lambda r: "/directory/people?" in r.url and r.url.endswith(wanted)) as answer:
        page.locator(f"#{field}").fill(query)
    assert answer.value.status == 200, (query, answer.value.status)
    people = answer.value.json()
    expect(page.locator(f"#{field}-people option")).to_have_count(len(people))
    return list(people)


def no_page_errors(browser_log: Any, start: int, expected: re.Pattern[str] | None = None) -> None:
    """No CSP report, console error, page error or failed response since `start`, but the expected ones."""
    csp = browser_log.matching("Content Security Policy", start)
    assert not csp, "\n".join(csp)
    errors = [e for e in browser_log.errors(start) if expected is None or not expected.search(e)]
    assert not errors, "\n".join(errors)


# 1. The expert picker of a new teleexpertise request

def _teleexpertise_request(page: Any, server: Server, shoot: Any, patient: tuple[str, str], *,
                           ineligible: tuple[str, ...] = ()) -> int:
    """Through the menu, fill /cases/new/teleexpertise choosing the expert with the picker, send it; returns the
    case id. The `ineligible` names searched for are never offered."""
    from playwright.sync_api import expect

    page.get_by_role("navigation", name="Navigation principale").get_by_role("link", name="Téléexpertise").click()
    expect(page).to_have_url(server.url("/cases/new/teleexpertise"))
    expect(page.get_by_role("heading", name="Demande de téléexpertise")).to_be_visible()
    expect(page.locator("#expert_id")).to_have_attribute("data-picker", "expert")
    # The first list, rendered in the page: the tele-experts under convention with the site, by name.
    options = page.locator("#expert_id-people option")
    expect(options).to_have_count(2)
    for name in ("Dr Anne Morvan", "Dr Yann Le Gall"):
        expect(options.filter(has_text=name)).to_have_count(1)

    people = picker_search(page, "expert_id", "gall")  # any case, any accent
    assert [p["username"] for p in people] == ["dr.legall"], people
    expect(options.first).to_have_text(re.compile(r"^Dr Yann Le Gall .*— radiologue, Pays de Brest$"))
    expect(options.first).not_to_contain_text("dr.legall")  # what the person reads is the name, not the login
    shoot(page, "teleexpertise-expert-picker-suggestions")
    for name in ineligible:
        assert picker_search(page, "expert_id", name) == [], name
        expect(options).to_have_count(0)

    picker_search(page, "expert_id", "Le Gall")
    page.locator("#expert_id").fill(options.first.get_attribute("value"))  # what choosing the suggestion puts in
    expect(page.locator("#expert_id-person")).to_have_text(re.compile(r"^Dr Yann Le Gall .*— radiologue"))
    # the person reads the name in the field; the login travels in the hidden input the server reads
    expect(page.locator("#expert_id")).to_have_value(re.compile(r"^Dr Yann Le Gall .*— radiologue"))
    expect(page.locator('input[type="hidden"][name="expert_id"]')).to_have_value("dr.legall")
    page.get_by_label("Nom de naissance").fill(patient[0])
    fill(page, "patient-first_names", patient[1])
    fill(page, "patient-birth_date", "1962-07-08")
    choose(page, "patient-sex", "F")
    choose(page, "patient-identity_status", "validated")
    fill(page, "question", "Nodule pulmonaire de 8 mm : surveillance ou biopsie ?")
    fill(page, "clinical_context", "Tabagisme actif, découverte fortuite.")
    fill(page, "study_reference", "TR-E2E-TE-0001")
    fill(page, "prior_imaging", "aucune")
    shoot(page, "teleexpertise-request-filled")
    with page.expect_navigation():
        page.get_by_role("button", name="Envoyer la demande").click()
    sent = re.fullmatch(re.escape(server.url("/cases/")) + r"(\d+)", page.url)
    assert sent, f"the request was not sent: {page.url} « {page.locator('main h1').inner_text()} »"
    expect(page.get_by_role("alert").filter(has_text="La demande est envoyée.")).to_be_visible()
    return int(sent.group(1))


@pytest.mark.charter("CH-4.2.1")
def test_expert_picker_on_a_new_teleexpertise_request(login, server, shoot, browser_log):
    from playwright.sync_api import expect

    start = browser_log.mark()
    local = login("dr.kerbrat")  # local radiologist of the CH de Morlaix
    # Never offered: the asker himself, a requesting physician and medical leads (no radiologists).
    case_id = _teleexpertise_request(local, server, shoot, ("Expertise", "Maëlle"),
                                     ineligible=("Kerbrat", "Martin", "Guillou", "Riou"))
    expect(local.get_by_role("heading", level=1)).to_contain_text(f"Téléexpertise n° {case_id}")
    steps = local.locator("#steps")
    expert = steps.locator("dt", has_text="Télé-expert sollicité").locator("xpath=following-sibling::dd[1]")
    expect(expert).to_have_text(re.compile(r"^\s*Dr Yann Le Gall"))
    expect(steps).not_to_contain_text("dr.legall")
    shoot(local, "teleexpertise-case-names-the-expert")
    # The server answers the same to anyone who asks without the page: no ineligible person, whatever the query.
    asked = local.request.get("/directory/people?" + urlencode({"purpose": "expert", "site": "ch-morlaix"}))
    assert asked.status == 200 and {p["username"] for p in asked.json()} == {"dr.legall", "dr.morvan"}, asked.text()
    assert local.request.get("/directory/people?purpose=expert&site=ch-brest").status == 403  # not his site
    no_page_errors(browser_log, start)


@pytest.mark.charter("CH-4.2.1", negative=True)
def test_the_requesting_physician_is_not_offered_a_teleexpertise_the_diagram_does_not_let_him_start(
        login, server, shoot, browser_log):
    """The deployed teleexpertise starts in the local radiologist's lane: the requesting physician is not offered
    a page that could only end on a refusal, and the address typed by hand says so in French."""
    from playwright.sync_api import expect

    start = browser_log.mark()
    requester = login("dr.martin")  # requesting physician of the CH de Brest
    requester.goto("/inbox")
    navigation = requester.get_by_role("navigation", name="Navigation principale")
    expect(navigation.get_by_role("link", name="Nouvelle demande")).to_have_count(1)
    expect(navigation.get_by_role("link", name="Téléexpertise")).to_have_count(0)
    response = requester.goto("/cases/new/teleexpertise")
    assert response is not None and response.status == 403
    expect(requester.locator("main")).to_contain_text("Accès refusé")
    shoot(requester, "teleexpertise-not-offered-to-the-requesting-physician")
    assert requester.request.get("/directory/people?purpose=expert&site=ch-brest").status == 403
    no_page_errors(browser_log, start, re.compile(r"/cases/new/teleexpertise|/directory/people"))


# 3. "Mes notifications"

@dataclass(frozen=True)
class _Settings:
    email: str
    phone: str
    preferences: frozenset[str]


def _read_settings(page: Any) -> _Settings:
    checked = page.locator('#notification-preferences input[name="pref"]:checked').evaluate_all(
        "boxes => boxes.map(b => b.value)")
    return _Settings(page.locator("#email").input_value(), page.locator("#phone").input_value(), frozenset(checked))


def _write_settings(page: Any, settings: _Settings) -> None:
    from playwright.sync_api import expect

    page.locator("#email").fill(settings.email)
    page.locator("#phone").fill(settings.phone)
    for box in page.locator('#notification-preferences input[name="pref"]').all():
        box.set_checked(box.get_attribute("value") in settings.preferences)
    page.get_by_role("button", name="Enregistrer").click()
    expect(page).to_have_url(re.compile(re.escape("/account/notifications") + "$"))
    expect(page.get_by_role("alert").filter(has_text="Vos préférences de notification sont enregistrées.")
           ).to_be_visible()


@pytest.mark.charter("CH-5.5")
def test_my_notifications_saved_kept_and_a_bad_address_refused_in_french(login, server, shoot, browser_log):
    from playwright.sync_api import expect

    start = browser_log.mark()
    page = login("dr.kerbrat")
    page.get_by_role("link", name="Mes notifications").click()
    expect(page).to_have_url(server.url("/account/notifications"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Mes notifications")
    original = _read_settings(page)
    assert original.email == "dr.kerbrat@telerad.localhost", original
    shoot(page, "notifications-as-set-by-the-demo")

    urgent_sms = "urgent_offer:webhook"
    released_mail = "report_released:email"
    assert page.locator(f'input[value="{urgent_sms}"]').count() == 1, "no SMS choice for the urgent offer"
    wanted = _Settings("loic.kerbrat@ch-morlaix.example.fr", "+33 6 12 34 56 78",
                       (original.preferences ^ {urgent_sms, released_mail}))
    try:
        _write_settings(page, wanted)
        shoot(page, "notifications-saved")
        page.reload()
        kept = _read_settings(page)
        assert kept == _Settings(wanted.email, "+33612345678", wanted.preferences), kept
        shoot(page, "notifications-kept-after-reload")

        # A bad address: the French error next to the field, the page kept, nothing saved.
        page.locator("#email").fill("loic.kerbrat-at-ch-morlaix")
        with page.expect_response(lambda r: r.request.method == "POST"
                                  and r.url == server.url("/account/notifications")) as answer:
            page.get_by_role("button", name="Enregistrer").click()
        assert answer.value.status == 400, answer.value.status
        expect(page.locator("#email")).to_have_class(re.compile(r"\bis-invalid\b"))
        expect(page.locator("#email-error")).to_have_text(
            "Adresse électronique invalide (exemple : prenom.nom@hopital.fr).")
        expect(page.locator("#email")).to_have_attribute("aria-describedby", re.compile(r"\bemail-error\b"))
        expect(page.locator("#phone")).to_have_value("+33612345678")
        shoot(page, "notifications-bad-address-refused")
        page.goto("/account/notifications")
        assert _read_settings(page).email == wanted.email
    finally:  # the demo's settings again, for the other tests of the session
        page.goto("/account/notifications")
        _write_settings(page, original)
    assert _read_settings(page) == original
    # The refused address's 400 (its response and Chromium's console line about it), and nothing else.
    no_page_errors(browser_log, start, expected=re.compile(
        r"\b400\b.*" + re.escape(server.url("/account/notifications")) + r"(\)|$)"))


# 2 and 4: a vital-emergency CT whose patient's identity is checked

@dataclass(frozen=True)
class CheckedCase:
    case_id: int
    accession_number: str


@pytest.fixture(scope="module")
def checked_case(login, server, browser_log) -> Iterator[CheckedCase]:
    """Requested by dr.martin, accepted by dr.legall, patient informed, identity checked by merm.leroy."""
    from playwright.sync_api import expect

    start = browser_log.mark()
    requester, radiologist, technologist = login("dr.martin"), login("dr.legall"), login("merm.leroy")
    case_id = create_request(requester, server, birth_name=BIRTH_NAME, first_names=FIRST_NAMES, attachment=None)
    accession = requester.locator("#patient-banner span", has_text="n° d’accession")
    expect(accession).to_have_count(1)
    number = accession.inner_text().split()[-1]
    open_task(radiologist, server, case_id, "accept_case", "Accepter le dossier", PATIENT)
    choose(radiologist, "acceptance", "accept")
    submit_task(radiologist, server, "Accepter le dossier")
    title = "Informer le patient et recueillir son consentement"
    open_task(requester, server, case_id, "inform_patient", title, PATIENT)
    tick(requester, "patient_informed")
    choose(requester, "consent", "given")
    submit_task(requester, server, title)
    title = "Vérifier l'identité du patient"
    open_task(technologist, server, case_id, "check_identity", title, PATIENT)
    tick(technologist, "identity_checked")
    choose(technologist, "identity_status", "qualified")
    choose(technologist, "identity_document", "id_card")
    submit_task(technologist, server, title)
    no_page_errors(browser_log, start)
    yield CheckedCase(case_id, number)


@pytest.mark.charter("CH-4.1.10")
def test_physician_present_picker_at_the_injection(login, server, shoot, browser_log, checked_case):
    from playwright.sync_api import expect

    start = browser_log.mark()
    case_id = checked_case.case_id
    requester, radiologist, technologist = login("dr.martin"), login("dr.legall"), login("merm.leroy")
    title = "Justifier l'examen (valider l'indication)"
    open_task(radiologist, server, case_id, "justify", title, PATIENT)
    choose(radiologist, "justification", "validate")
    submit_task(radiologist, server, title)
    title = "Choisir le protocole"
    open_task(radiologist, server, case_id, "choose_protocol", title, PATIENT)
    choose(radiologist, "protocol", "ct_head_contrast")
    submit_task(radiologist, server, title)
    title = "Contre-indications : avis du demandeur"
    open_task(requester, server, case_id, "check_contraindications_requester", title, PATIENT)
    fill(requester, "renal_function_egfr", "82")
    submit_task(requester, server, title)
    title = "Contre-indications : décision du radiologue"
    open_task(radiologist, server, case_id, "check_contraindications_radiologist", title, PATIENT)
    choose(radiologist, "contrast_decision", "cleared")
    submit_task(radiologist, server, title)

    title = "Attester la présence d'un médecin auprès du manipulateur"
    open_task(technologist, server, case_id, "attest_physician_presence", title, PATIENT)
    field = technologist.locator("#physician_name")
    expect(field).to_have_attribute("data-picker", "physician_present")
    options = technologist.locator("#physician_name-people option")
    # The physicians of the CH de Brest only: its requesting physician and its medical lead.
    expect(options).to_have_count(2)
    assert sorted(options.evaluate_all("os => os.map(o => o.value)")) == [
        "Dr Claire Martin (urgentiste, demandeuse)", "Dr Marie Guillou (médecin responsable du site)"]
    people = picker_search(technologist, "physician_name", "guil")
    assert [p["display_name"] for p in people] == ["Dr Marie Guillou (médecin responsable du site)"], people
    expect(options.first).to_have_attribute("value", "Dr Marie Guillou (médecin responsable du site)")
    expect(options.first).to_have_text("médecin responsable du site, CH de Brest (urgences)")
    shoot(technologist, "presence-picker-suggestions")
    # Radiologists of the territory (no site), a local radiologist and a medical lead of other sites, the
    # technologist: never proposed.
    for ineligible in ("Le Gall", "Morvan", "Kerbrat", "Riou", "Leroy"):
        assert picker_search(technologist, "physician_name", ineligible) == [], ineligible
    picker_search(technologist, "physician_name", "Guillou")
    field.fill(options.first.get_attribute("value"))  # what choosing the suggestion puts in the field
    expect(technologist.locator("#physician_name-person")).to_have_text(
        "Dr Marie Guillou (médecin responsable du site) — médecin responsable du site, CH de Brest (urgences)")
    choose(technologist, "physician_role", "other")
    tick(technologist, "physically_present")
    shoot(technologist, "presence-physician-chosen")
    submit_task(technologist, server, title)
    expect(inbox_row(technologist, case_id, "record_injection")).to_have_count(1)  # the step is done

    technologist.goto(f"/cases/{case_id}")
    presence = technologist.locator("#steps").locator("dt", has_text="Nom du médecin présent").locator(
        "xpath=following-sibling::dd[1]")
    expect(presence).to_have_text(re.compile(r"^\s*Dr Marie Guillou"))
    expect(technologist.locator("#steps")).to_contain_text("Autre médecin du site")
    expect(technologist.locator("#steps")).not_to_contain_text("dr.guillou")
    shoot(technologist, "presence-on-the-case-record")
    no_page_errors(browser_log, start)


# 4. Identity reconciliation of held images

def _dicom_listener(server: Server) -> tuple[str, int]:
    """(called AE title, port) of the server's DICOM SCP, as it logged them at start (TELERAD_DICOM_PORT=0)."""
    found = SCP_LINE.search(server.log_path.read_text(encoding="utf-8", errors="replace"))
    assert found, f"the server logged no DICOM SCP listening:\n{server.log_tail()}"
    return found.group(1), int(found.group(2))


def _send_other_patient(server: Server, folder: Path, accession: str) -> None:
    from tests.integration.dicom_support import rewrite, storescu

    instance = rewrite(folder, "CT_small.dcm", AccessionNumber=accession, PatientName="AUTRE^PATIENTE",
                       PatientBirthDate="19800101", PatientSex="F", PatientID="IPP-AUTRE-1")
    called, port = _dicom_listener(server)
    sent = storescu(port, instance, calling="CT_BREST", called=called)  # the demo's CT of the CH de Brest
    assert sent.returncode == 0, f"storescu failed:\n{sent.stdout}\n{sent.stderr}\n{server.log_tail()}"


def _row_urgencies(page: Any) -> list[tuple[str, int]]:
    """(case link, urgency) of the inbox rows, in the order shown."""
    return [(href, int(urgency)) for href, urgency in page.locator("#inbox tbody tr[data-task-id]").evaluate_all(
        "rows => rows.map(r => [r.querySelector('a[href^=\"/cases/\"]').getAttribute('href'),"
        " r.getAttribute('data-urgency')])")]


@pytest.mark.charter("CH-4.1.6")
def test_identity_reconciliation_of_held_images_links_both_ways(login, server, shoot, browser_log, checked_case,
                                                                tmp_path):
    from playwright.sync_api import expect

    start = browser_log.mark()
    case_id = checked_case.case_id
    _send_other_patient(server, tmp_path, checked_case.accession_number)

    technologist = login("merm.leroy")
    technologist.goto(f"/cases/{case_id}")
    held = technologist.locator("#images [role=status]", has_text="sont retenues")
    expect(held).to_be_visible()
    link = held.get_by_role("link", name=re.compile(r"Vérification d’identité des images : dossier n° \d+"))
    expect(link).to_have_count(1)
    check_id = int(link.get_attribute("href").rsplit("/", 1)[1])
    assert check_id != case_id
    shoot(technologist, "identity-blocked-case-links-to-reconciliation")

    # The reconciliation task in the technologist's inbox: the blocked case's patient and urgency, sorted with it
    # (vital emergencies first, before the demo's scheduled acquisition).
    technologist.get_by_role("navigation", name="Navigation principale").get_by_role("link", name="Mes tâches"
                                                                                     ).click()
    row = inbox_row(technologist, check_id, "reconcile_images")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Rapprocher les images du bon patient")
    expect(row).to_contain_text("RAPPROCHEMENT")
    expect(row.locator(".badge-urgency-0")).to_have_text("Urgence vitale")
    expect(row).to_have_attribute("data-urgency", "0")
    rows = _row_urgencies(technologist)
    urgencies = [urgency for _, urgency in rows]
    assert urgencies == sorted(urgencies), rows
    position = [href for href, _ in rows].index(f"/cases/{check_id}")
    assert any(urgency > 0 for _, urgency in rows[position + 1:]), rows  # less urgent work sorts below it
    blocked_rows = [urgency for href, urgency in rows if href == f"/cases/{case_id}"]
    assert all(urgency == 0 for urgency in blocked_rows), rows  # the blocked case's own steps, if any, alike
    shoot(technologist, "identity-reconciliation-in-the-inbox")

    # The reconciliation case: the blocked case's patient (never "?"), its urgency, both identities, the link back.
    row.locator(f'a[href="/cases/{check_id}"]').click()
    expect(technologist).to_have_url(server.url(f"/cases/{check_id}"))
    expect(technologist.get_by_role("heading", level=1)).to_contain_text(f"Rapprochement d’images n° {check_id}")
    banner = technologist.locator("#patient-banner")
    expect(banner.locator("strong")).to_have_text(PATIENT)
    expect(banner).to_contain_text("14/03/1951")
    expect(banner).not_to_contain_text("?")
    known = technologist.get_by_role("region", name="Ce que le dossier contient")
    expect(known.locator("dt", has_text="Urgence").locator("xpath=following-sibling::dd[1]")).to_have_text(
        "Urgence vitale")
    identities = technologist.locator("#identity-check")
    expect(identities).to_contain_text("AUTRE PATIENTE")
    expect(identities).to_contain_text("01/01/1980")
    expect(identities).to_contain_text(BIRTH_NAME)
    shoot(technologist, "identity-reconciliation-case")
    identities.get_by_role("link", name=f"Dossier n° {case_id}").click()
    expect(technologist).to_have_url(server.url(f"/cases/{case_id}"))
    expect(technologist.locator("#patient-banner strong")).to_have_text(PATIENT)
    expect(technologist.get_by_role("region", name="Ce que le dossier contient").locator(
        "dt", has_text="Urgence").locator("xpath=following-sibling::dd[1]")).to_have_text("Urgence vitale")
    no_page_errors(browser_log, start)
