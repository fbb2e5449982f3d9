"""A downtime incident in Chromium (issue 20, item 3; CH-5.5): the CH de Brest's medical lead declares a network
failure; its banner shows on the requester's pages with the degraded-mode procedure (whom to call, the paper form);
a request accepted by phone during the incident is back-entered by the radiologist with its real time and the
people involved, through the same form, and the case timeline says it was entered afterwards; the lead closes the
incident. No console error, no CSP report."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.test_telediagnosis_browser import choose, create_request, open_task

PARIS = ZoneInfo("Europe/Paris")


def _local(moment: datetime) -> str:
    return moment.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.charter("CH-5.5")
def test_CH5_5_an_incident_is_declared_shown_and_a_phone_handled_step_back_entered(login, server, shoot,
                                                                                   browser_log):
    from playwright.sync_api import expect

    start = browser_log.mark()
    now = datetime.now(PARIS)
    lead = login("dr.guillou")
    lead.get_by_role("link", name="Incidents", exact=True).click()
    expect(lead.get_by_role("heading", name="Incidents : pannes informatiques ou réseau")).to_be_visible()
    lead.locator("#site_id").select_option("ch-brest")
    lead.locator("#kind").select_option("network")
    lead.locator("#side").select_option("site")
    lead.locator("#started_at").fill(_local(now - timedelta(hours=1)))
    lead.locator("#description").fill("Lien fibre coupé (test de bout en bout)")
    lead.get_by_role("button", name="Déclarer").click()
    expect(lead.get_by_role("alert").filter(has_text="déclaré")).to_be_visible()
    try:
        requester = login("dr.martin")
        case_id = create_request(requester, server, birth_name="Panne", first_names="Yves", attachment=None)
        banner = requester.locator("#incident-banner")
        expect(banner).to_contain_text("Panne du réseau")
        banner.get_by_role("link", name="Procédure dégradée, numéros à appeler et fiche papier").click()
        expect(requester.get_by_role("heading", name="Qui appeler")).to_be_visible()
        expect(requester.locator("#incident-contacts")).to_contain_text("Médecin responsable du site")
        expect(requester.locator(".paper-form-table")).to_be_visible()
        shoot(requester, "incident-procedure")

        radiologist = login("dr.legall")
        task_id = open_task(radiologist, server, case_id, "accept_case", "Accepter le dossier", "PANNE Yves")
        radiologist.locator("#back-entry-link").get_by_role("link", name="La saisir après coup").click()
        expect(radiologist).to_have_url(server.url(f"/incidents/tasks/{task_id}/back-entry"))
        moment = now - timedelta(minutes=20)
        radiologist.locator("#occurred_at").fill(_local(moment))
        radiologist.locator("#people").fill("Dr Le Gall joint par téléphone par le Dr Martin")
        choose(radiologist, "acceptance", "accept")
        shoot(radiologist, "incident-back-entry")
        radiologist.get_by_role("button", name="Enregistrer la saisie après coup").click()
        expect(radiologist).to_have_url(server.url(f"/cases/{case_id}"))
        entry = radiologist.locator("[data-back-entered]")
        expect(entry).to_have_count(1)
        expect(radiologist.locator("ol.timeline")).to_contain_text("Dr Le Gall joint par téléphone par le Dr Martin")
        expect(radiologist.locator("ol.timeline")).to_contain_text(moment.strftime("%d/%m/%Y %H:%M"))
        shoot(radiologist, "incident-timeline")
    finally:
        lead.goto("/incidents")
        row = lead.locator("#incidents tr").filter(has_text="Lien fibre coupé (test de bout en bout)")
        row.get_by_role("button", name="Clore").click()
    expect(lead.get_by_role("alert").filter(has_text="Incident clos après")).to_be_visible()
    expect(lead.locator("#incident-banner")).to_have_count(0)
    csp = browser_log.matching("Content Security Policy", start)
    assert not csp, "\n".join(csp)
    errors = browser_log.errors(start)
    assert not errors, "\n".join(errors)
