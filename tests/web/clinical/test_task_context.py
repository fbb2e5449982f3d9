"""Issue 17, item 1: each task page shows, read-only above its form, what earlier steps recorded that the decision
needs (declared by the form's ``x-context``), with who recorded it and when; the case page shows what every step
recorded in French labels, and its history says what happened. One test per finding of the walk-through."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.services.instances import start_instance
from engine.services.notification_contacts import DEFAULT_PREFERENCES, update_contact
from engine.store.models import Task
from tests import demo_app
from tests.demo_app import login, open_task
from tests.integration.dicom_support import DEMO_ACTORS, complete_step
from tests.integration.test_bad_news_visibility import CONCLUSION, FINDINGS, REPORT

try:  # the report's signature (issue 17, item 5): its code, where the report must be signed
    from tests.signing import signed
except ImportError:  # pragma: no cover - before the signature exists
    def signed(ctx, username, data):  # type: ignore[no-redef]
        return data

app, demo_ctx = demo_app.app, demo_app.demo_ctx  # the fixtures of the clinician pages (demo data)
CONTEXT = "Ce que les étapes précédentes ont enregistré"
MARTIN, LE_GALL, LEROY, KERBRAT = ("Dr Claire Martin (urgentiste, demandeuse)", "Dr Yann Le Gall (radiologue)",
                                   "Paul Leroy (manipulateur)", "Dr Loïc Kerbrat (radiologue de proximité)")
DATE = re.compile(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}")
PREMEDICATION = "Prémédication : antihistaminique la veille, hydratation."
PROPOSAL = "Annonce en consultation par le Dr Martin, avec l'infirmière d'annonce."


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return html.unescape(response.get_data(as_text=True))


def context_block(shown: str) -> str:
    """The context card of a task page (empty when the page shows none)."""
    start = shown.find('id="task-context"')
    return shown[start:shown.find("</section>", start)] if start >= 0 else ""


def open_case(ctx, spec: str) -> int:
    with ctx.read() as session:
        return session.execute(select(Task.instance_id).where(Task.spec_name == spec, Task.status == "open")
                               .order_by(Task.instance_id)).scalars().first()


def contrast_case(ctx) -> int:
    """The demo's pulmonary embolism case (accepted by dr.legall) up to the contrast checks: consent under force
    majeure, identity, indication, CT angiography protocol; the requester's answers recorded."""
    case_id = open_case(ctx, "inform_patient")
    complete_step(ctx, case_id, "inform_patient", "dr.martin", {
        "patient_informed": True, "consent": "force_majeure",
        "force_majeure_reason": "Patiente intubée, aucun proche joignable."})
    complete_step(ctx, case_id, "check_identity", "merm.leroy", {
        "identity_checked": True, "identity_status": "qualified", "identity_document": "id_card"})
    complete_step(ctx, case_id, "justify", "dr.legall", {"justification": "validate"})
    complete_step(ctx, case_id, "choose_protocol", "dr.legall", {"protocol": "ct_chest_angio"})
    complete_step(ctx, case_id, "check_contraindications_requester", "dr.martin", {
        "allergy_history": True, "renal_function_egfr": 42, "metformin": True, "requester_contraindication": False,
        "requester_comment": "Urticaire après un scanner en 2019."})
    return case_id


@pytest.mark.charter("CH-4.1.10")
def test_the_radiologist_sees_the_requesters_contrast_answers_and_the_technologist_his_precautions(
        app, demo_ctx, clock):
    case_id = contrast_case(demo_ctx)
    radiologist = login(app, demo_ctx, clock, "dr.legall")
    task_id = open_task(demo_ctx, case_id, "check_contraindications_radiologist")
    block = context_block(page(radiologist, f"/tasks/{task_id}"))
    assert CONTEXT in block and MARTIN in block and DATE.search(block)
    for shown in ("DFG estimé (mL/min/1,73 m²)", "42", "Traitement par metformine",
                  "Antécédent de réaction au produit de contraste", "Oui", "Urticaire après un scanner en 2019.",
                  "Angioscanner thoracique (embolie pulmonaire)"):
        assert shown in block, shown
    complete_step(demo_ctx, case_id, "check_contraindications_radiologist", "dr.legall",
                  {"contrast_decision": "cleared", "premedication": PREMEDICATION})
    technologist = login(app, demo_ctx, clock, "merm.leroy")
    block = context_block(page(technologist, f"/tasks/{open_task(demo_ctx, case_id, 'attest_physician_presence')}"))
    assert PREMEDICATION in block and "Injection maintenue" in block and LE_GALL in block
    complete_step(demo_ctx, case_id, "attest_physician_presence", "merm.leroy", {
        "physician_name": "Dr Urgences Kerléo", "physician_role": "emergency", "physically_present": True})
    block = context_block(page(technologist, f"/tasks/{open_task(demo_ctx, case_id, 'record_injection')}"))
    assert PREMEDICATION in block and "Dr Urgences Kerléo" in block and "Médecin urgentiste" in block


@pytest.mark.charter("CH-4.1.7")
@pytest.mark.charter("CH-4.1.10")
def test_the_case_page_shows_force_majeure_injection_lot_and_presence_and_a_history_that_says_what_happened(
        app, demo_ctx, clock):
    case_id = contrast_case(demo_ctx)
    complete_step(demo_ctx, case_id, "check_contraindications_radiologist", "dr.legall",
                  {"contrast_decision": "cleared", "premedication": PREMEDICATION})
    complete_step(demo_ctx, case_id, "attest_physician_presence", "merm.leroy", {
        "physician_name": "Dr Urgences Kerléo", "physician_role": "emergency", "physically_present": True})
    complete_step(demo_ctx, case_id, "record_injection", "merm.leroy", {
        "product": "Iohexol 350", "volume_ml": 80.5, "lot_number": "LOT-4471B", "injected_at": "2026-01-05T09:12",
        "adverse_event": False})
    shown = page(login(app, demo_ctx, clock, "dr.martin"), f"/cases/{case_id}")
    steps = shown[shown.find('id="steps"'):shown.find("</section>", shown.find('id="steps"'))]
    for expected in ("Non recueilli : cas de force majeure", "Patiente intubée, aucun proche joignable.",
                     "Produit injecté", "Iohexol 350", "Volume (mL)", "80,5", "Numéro de lot", "LOT-4471B",
                     "05/01/2026 09:12", "Effet indésirable", "Non", "Nom du médecin présent", "Dr Urgences Kerléo",
                     "Médecin urgentiste", PREMEDICATION, LEROY):
        assert expected in steps, expected
    history = shown[shown.find('id="h-timeline"'):]
    assert "Étape terminée" not in shown
    assert f"Demande envoyée par {MARTIN} : Angioscanner thoracique" in history
    assert f"Protocole choisi : Angioscanner thoracique (embolie pulmonaire) ({LE_GALL})" in history
    assert f"Patient informé par {MARTIN} : Non recueilli : cas de force majeure" in history
    assert f"Injection de Iohexol 350, 80,5 mL, le 05/01/2026 09:12 ({LEROY})" in history
    assert f"Présence de Dr Urgences Kerléo (Médecin urgentiste) pendant l'injection, attestée par {LEROY}" in history


def reported_with_urgent_finding(ctx) -> int:
    """The demo's wrist X-ray case, acquired and reported by dr.legall with a finding that needs a call."""
    case_id = open_case(ctx, "acquire_images")
    complete_step(ctx, case_id, "acquire_images", "merm.leroy", {"images_sent": True, "protocol_followed": True,
                                                                 "technical_difficulty": False})
    complete_step(ctx, case_id, "interpret", "dr.legall", signed(ctx, "dr.legall", {
        **REPORT, "poor_prognosis": False, "urgent_finding": True, "certainty": "certain"}))
    return case_id


@pytest.mark.charter("CH-4.1.12")
def test_the_call_task_shows_the_requesters_phone_and_the_acknowledgement_the_whole_report(app, demo_ctx, clock):
    update_contact(demo_ctx, Actor.system(), "dr.martin", "dr.martin@example.test", "+33298000001",
                   DEFAULT_PREFERENCES)
    radiologist = login(app, demo_ctx, clock, "dr.legall")  # before signing: one TOTP code per 30 s step
    case_id = reported_with_urgent_finding(demo_ctx)
    block = context_block(page(radiologist, f"/tasks/{open_task(demo_ctx, case_id, 'record_phone_call')}"))
    assert f"Téléphone de {MARTIN} (annuaire)" in block and "+33298000001" in block
    assert CONCLUSION in block
    complete_step(demo_ctx, case_id, "record_phone_call", "dr.legall", {
        "caller": "Dr Le Gall", "callee": "Dr Martin", "called_at": "2026-01-05T03:12",
        "summary": "Fracture déplacée, avis orthopédique en urgence."})
    requester = login(app, demo_ctx, clock, "dr.martin")
    block = context_block(page(requester, f"/tasks/{open_task(demo_ctx, case_id, 'acknowledge_report')}"))
    for expected in (REPORT["technique"], FINDINGS, CONCLUSION, "Biopsie sous scanner.", "Établi", LE_GALL,
                     "Ce qui a été dit", "Fracture déplacée, avis orthopédique en urgence."):
        assert expected in block, expected
    shown = page(requester, f"/cases/{case_id}")
    assert ("Appel téléphonique de Dr Le Gall à Dr Martin le 05/01/2026 03:12 : Fracture déplacée, avis "
            "orthopédique en urgence.") in shown
    assert "Consentement recueilli" in shown and "Étape terminée" not in shown


@pytest.mark.charter("CH-4.1.13")
def test_the_requester_reads_the_announcement_plan_he_confirms(app, demo_ctx, clock):
    case_id = open_case(demo_ctx, "acquire_images")
    complete_step(demo_ctx, case_id, "acquire_images", "merm.leroy", {
        "images_sent": True, "protocol_followed": True, "technical_difficulty": False})
    complete_step(demo_ctx, case_id, "interpret", "dr.legall", signed(demo_ctx, "dr.legall", REPORT))
    complete_step(demo_ctx, case_id, "propose_announcement", "dr.legall", {"announcement_proposal": PROPOSAL})
    requester = login(app, demo_ctx, clock, "dr.martin")
    block = context_block(page(requester, f"/tasks/{open_task(demo_ctx, case_id, 'confirm_announcement_plan')}"))
    assert PROPOSAL in block and LE_GALL in block and CONCLUSION in block


@pytest.mark.charter("CH-4.1.13", negative=True)
def test_the_case_record_and_history_withhold_the_report_and_the_plan_until_the_announcement(app, demo_ctx, clock):
    case_id = open_case(demo_ctx, "acquire_images")
    complete_step(demo_ctx, case_id, "acquire_images", "merm.leroy", {
        "images_sent": True, "protocol_followed": True, "technical_difficulty": False})
    complete_step(demo_ctx, case_id, "interpret", "dr.legall", signed(demo_ctx, "dr.legall", REPORT))
    complete_step(demo_ctx, case_id, "propose_announcement", "dr.legall", {"announcement_proposal": PROPOSAL})
    for other in ("merm.leroy", "dr.guillou"):
        shown = page(login(app, demo_ctx, clock, other), f"/cases/{case_id}")
        for secret in (CONCLUSION, FINDINGS, PROPOSAL, REPORT["technique"], "Biopsie sous scanner."):
            assert secret not in shown, (other, secret)
        assert "Compte-rendu de Dr Yann Le Gall (radiologue) : Exploitables : compte-rendu" in shown
    shown = page(login(app, demo_ctx, clock, "dr.martin"), f"/cases/{case_id}")
    assert CONCLUSION in shown and PROPOSAL in shown


def expertise_case(ctx) -> int:
    kerbrat = DEMO_ACTORS["dr.kerbrat"]
    case_id = start_instance(ctx, kerbrat, "teleexpertise", {}, site_id="ch-morlaix", first_task={
        "patient": {"birth_name": "KERMARREC", "first_names": "Yann", "birth_date": "1950-03-02", "sex": "M",
                    "identity_status": "qualified"},
        "expert_id": "dr.legall", "question": "Lésion rénale gauche : kyste simple ou lésion tissulaire ?",
        "clinical_context": "Découverte fortuite, créatinine normale.", "study_reference": "TR260105A1B2C3D4",
        "prior_imaging": "Aucune", "interventional_decision_possible": True})
    complete_step(ctx, case_id, "te_consent", "dr.kerbrat", {"patient_informed": True, "consent": "given"})
    return case_id


@pytest.mark.charter("CH-4.2.3")
def test_teleexpertise_what_is_missing_reaches_the_local_radiologist_and_the_complements_the_expert(
        app, demo_ctx, clock):
    case_id = expertise_case(demo_ctx)
    expert = login(app, demo_ctx, clock, "dr.legall")
    block = context_block(page(expert, f"/tasks/{open_task(demo_ctx, case_id, 'te_check')}"))
    assert "Lésion rénale gauche" in block and KERBRAT in block
    complete_step(demo_ctx, case_id, "te_check", "dr.legall", {
        "file_complete": False, "missing_items": "Séquences T1 injectées",
        "missing_reason": "Rehaussement de la paroi du kyste à évaluer."})
    local = login(app, demo_ctx, clock, "dr.kerbrat")
    block = context_block(page(local, f"/tasks/{open_task(demo_ctx, case_id, 'te_complete_file')}"))
    assert "Ce qui manque" in block and "Séquences T1 injectées" in block
    assert "Rehaussement de la paroi du kyste à évaluer." in block and LE_GALL in block and DATE.search(block)
    complete_step(demo_ctx, case_id, "te_complete_file", "dr.kerbrat",
                  {"additional_information": "IRM rénale du 04/01/2026 jointe."})
    block = context_block(page(expert, f"/tasks/{open_task(demo_ctx, case_id, 'te_check')}"))
    assert "Compléments apportés" in block and "IRM rénale du 04/01/2026 jointe." in block and KERBRAT in block
    shown = page(local, f"/cases/{case_id}")
    assert f"Dossier complété pour le télé-expert par {KERBRAT}" in shown and "Étape terminée" not in shown
    assert "Télé-expert sollicité" in shown and LE_GALL in shown
