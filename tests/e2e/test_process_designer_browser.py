"""The process designer changes the telediagnosis procedure in Chromium and deploys it (CH-9.1): a task label
and the escalation delay of the report timer are changed in the bpmn-js modeler; new cases run on the new
version while an older case finishes on its own; a script task is refused and highlighted on the canvas.

The changes keep the vital-emergency path of the other browser tests identical (the report delay becomes
`report_vital`, which a vital case used already; the relabelled task is not on that path), so the tests of
this folder can share one server in any order.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.test_telediagnosis_browser import choose, create_request, fill, open_task, submit_task, tick

NEW_LABEL = "Préciser la grossesse éventuelle"
OLD_CASE_PATIENT = "QUÉRÉ Jean"  # demo case at the acquisition step, on version 1


def _open_modeler(page: Any, server: Any) -> None:
    from playwright.sync_api import expect

    page.goto("/designer/")
    page.get_by_role("link", name="Télédiagnostic").click()
    expect(page).to_have_url(server.url("/designer/processes/telediagnosis"))
    page.get_by_role("link", name=re.compile("Modifier la procédure|Ouvrir dans le modeleur")).click()
    expect(page).to_have_url(server.url("/designer/processes/telediagnosis/edit"))
    expect(page.locator("#designer")).to_have_attribute("data-ready", "true")


def _element(page: Any, element_id: str) -> Any:
    return page.locator(f'#designer-canvas .djs-element.djs-shape[data-element-id="{element_id}"]')


def _select(page: Any, element_id: str) -> None:
    from playwright.sync_api import expect

    page.locator("#designer-goto").fill(element_id)
    page.get_by_role("button", name="Aller", exact=True).click()  # scrolls the canvas to it and selects it
    expect(page.locator("#designer-telerad-body code")).to_have_text(element_id)
    expect(_element(page, element_id)).to_have_class(re.compile(r"\bselected\b"))


def _save(page: Any) -> None:
    from playwright.sync_api import expect

    page.get_by_role("button", name="Enregistrer et valider").click()
    expect(page.locator("#designer-status")).to_contain_text("enregistrée")


def _case_version(page: Any, case_id: int) -> str:
    page.goto(f"/cases/{case_id}")
    return page.locator("#h-diagram").inner_text()


@pytest.mark.charter("CH-4.1.6", negative=True)
def test_CH9_1_designer_changes_and_deploys_a_procedure_running_cases_keep_theirs(login, server, shoot, browser_log,
                                                                                 signature_code):
    from playwright.sync_api import expect

    start = browser_log.mark()
    requester = login("dr.martin")
    requester.get_by_role("link", name="Dossiers").click()
    old_case = int(requester.locator("tbody tr").filter(has_text="QUÉRÉ").first.locator("a").first
                   .get_attribute("href").rsplit("/", 1)[1])
    assert "version 1" in _case_version(requester, old_case)

    designer = login("designer")
    _open_modeler(designer, server)
    # The modeler's own texts in French (community translation bpmn-js-i18n).
    hand_tool = designer.locator('.djs-palette [data-action="hand-tool"]')
    expect(hand_tool).to_have_attribute("aria-label", re.compile("^Activer"))
    shoot(designer, "designer-modeler")

    # A task label, through bpmn-js's own properties panel.
    _select(designer, "state_pregnancy")
    name = designer.locator("#bio-properties-panel-name")
    if not name.is_visible():  # the panel's "Général" group starts collapsed
        designer.locator(".bio-properties-panel-group-header").filter(has_text="Général").click()
    # The panel speaks French too, its header included (issue 17, item 8).
    expect(designer.locator(".bio-properties-panel-header-type")).to_have_text(re.compile("Tâche", re.I))
    expect(designer.locator(".bio-properties-panel-group-header").filter(has_text="Documentation")).to_be_visible()
    expect(designer.locator("label[for='bio-properties-panel-name']")).to_have_text("Nom")
    expect(name).to_be_visible()
    name.fill(NEW_LABEL)
    name.press("Tab")
    expect(_element(designer, "state_pregnancy")).to_contain_text("grossesse éventuelle")

    # The report timer's escalation setting, through Telerad's own properties.
    _select(designer, "report_due")
    designer.locator('[data-telerad="timer-setting"]').select_option("report_vital")
    expect(designer.locator('[data-telerad="timer-expression"]')).to_have_value('escalation["report_vital"]')

    # The charter role of a step, through Telerad's own properties: without it, the save shows the charter finding
    # and the version cannot be deployed (CH-4.1.6: nothing proves the identity is checked before acquisition).
    _select(designer, "check_identity")
    expect(designer.locator('[data-telerad="charterRole"]')).to_have_value("identity_check")
    designer.locator('[data-telerad="charterRole"]').select_option("")
    _save(designer)
    expect(designer.locator("#designer-findings")).to_contain_text("CH-4.1.6")
    expect(designer.get_by_role("button", name="Déployer")).to_be_disabled()
    shoot(designer, "designer-charter-refused")
    _select(designer, "check_identity")
    designer.locator('[data-telerad="charterRole"]').select_option("identity_check")
    _save(designer)
    expect(designer.locator("#designer-status")).to_contain_text("0 erreur(s)")
    expect(designer.locator("#designer-findings")).to_contain_text("Aucun problème")
    shoot(designer, "designer-saved")
    deploy = designer.get_by_role("button", name="Déployer")
    expect(deploy).to_be_enabled()
    deploy.click()
    expect(designer).to_have_url(server.url("/designer/processes/telediagnosis"))
    expect(designer.get_by_role("alert").filter(has_text="Version 2 déployée")).to_be_visible()
    expect(designer.locator('#versions tr[data-version="1"] .running')).not_to_have_text("0")
    shoot(designer, "designer-deployed")


    # The history: version 2 against version 1, the changed elements coloured.
    designer.get_by_role("link", name="Différences avec la version 1").click()
    expect(designer.locator(".diff-canvas[data-ready=true]")).to_have_count(2)
    for changed in ("state_pregnancy", "report_due"):
        marked = designer.locator(f'.diff-canvas .djs-element.diff-changed[data-element-id="{changed}"]')
        expect(marked).to_have_count(2)
    shoot(designer, "designer-diff")

    # A new case runs on version 2 ...
    new_case = create_request(requester, server, birth_name="Cloarec", first_names="Annaïg", attachment=None)
    assert "version 2" in _case_version(requester, new_case)

    # ... while the older case finishes on version 1.
    technologist, radiologist = login("merm.leroy"), login("dr.legall")
    title = "Réaliser l'acquisition et transmettre les images"
    open_task(technologist, server, old_case, "acquire_images", title, OLD_CASE_PATIENT)
    tick(technologist, "images_sent")
    tick(technologist, "protocol_followed")
    submit_task(technologist, server, title)
    title = "Interpréter et rédiger le compte-rendu"
    open_task(radiologist, server, old_case, "interpret", title, OLD_CASE_PATIENT)
    choose(radiologist, "outcome", "report")
    fill(radiologist, "technique", "Radiographie du poignet droit, face et profil.")
    fill(radiologist, "findings", "Pas de trait de fracture.")
    fill(radiologist, "conclusion", "Pas de fracture du poignet.")
    choose(radiologist, "certainty", "certain")
    fill(radiologist, "signature_code", signature_code("dr.legall"))  # the report is signed (CH-5.3)
    submit_task(radiologist, server, title)
    title = "Prendre connaissance du compte-rendu et l'intégrer au dossier"
    open_task(requester, server, old_case, "acknowledge_report", title, OLD_CASE_PATIENT)
    tick(requester, "report_read")
    tick(requester, "integrated_in_record")
    submit_task(requester, server, title)
    assert "version 1" in _case_version(requester, old_case)
    expect(requester.get_by_role("heading", level=1).locator(".badge")).to_have_text("Clos")

    # A script task is refused, its element highlighted on the canvas; nothing can be deployed.
    _open_modeler(designer, server)
    _select(designer, "state_pregnancy")
    designer.locator('.djs-context-pad .entry[data-action="replace"]').click()
    designer.locator('.djs-popup [data-id="replace-with-script-task"]').click()
    _save(designer)
    expect(designer.locator("#designer-status")).not_to_contain_text(" 0 erreur(s)")
    finding = designer.locator('#designer-findings .finding[data-rule="no-script"]')
    expect(finding.first).to_contain_text("state_pregnancy")
    expect(_element(designer, "state_pregnancy")).to_have_class(re.compile(r"\bfinding-error\b"))
    expect(designer.get_by_role("button", name="Déployer")).to_be_disabled()
    shoot(designer, "designer-script-refused")
    designer.goto("/designer/processes/telediagnosis")
    designer.get_by_role("button", name="Abandonner le brouillon").click()
    expect(designer.get_by_role("alert").filter(has_text="Brouillon abandonné")).to_be_visible()

    # No CSP report and no error at all: the modeler page allows exactly the panel's two style attributes by
    # their hashes (web/designer/views.py MODELER_CSP).
    csp = browser_log.matching("Content Security Policy", start)
    assert not csp, "\n".join(csp)
    errors = browser_log.errors(start)
    assert not errors, "\n".join(errors)
