"""The clinician pages on the demo data: inbox, task forms, new request, case record, and the rule that no
route shows a case to someone outside its site who was never involved (CH-5.3)."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from engine.store.models import AuditEvent, ProcessInstance
from tests import demo_app
from tests.demo_app import case_of, login, open_task

app, demo_ctx = demo_app.app, demo_app.demo_ctx  # the web app on the demo data (fixtures)


@pytest.mark.charter("CH-5.3")
def test_inbox_is_the_home_page_sorted_by_urgency(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    page = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "Mes tâches" in page and "Accepter le dossier" in page
    rows = re.findall(r'<tr class="urgency-(\d)"', page)
    assert rows == sorted(rows) and rows  # vital emergency first


def test_radiologist_accepts_a_case_through_its_form(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    case_id = case_of(demo_ctx, patient_name="KERMARREC YANN")
    task_id = open_task(demo_ctx, case_id, "accept_case")
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "KERMARREC" in page and "J&#39;accepte ce dossier" in page or "J'accepte ce dossier" in page
    response = client.post(f"/tasks/{task_id}", data={"acceptance": "accept"})
    assert response.status_code == 302
    assert open_task(demo_ctx, case_id, "inform_patient")


def test_invalid_submission_keeps_typed_text_and_shows_french_errors(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    case_id = case_of(demo_ctx, patient_name="KERMARREC YANN")
    task_id = open_task(demo_ctx, case_id, "accept_case")
    page = client.post(f"/tasks/{task_id}", data={"acceptance": "decline", "decline_reason": ""}).get_data(
        as_text=True)
    assert "Ce champ est obligatoire." in page
    assert open_task(demo_ctx, case_id, "accept_case") == task_id


def test_requester_creates_a_request_with_a_prior_report(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.martin")
    assert "Demande de télédiagnostic" in client.get("/cases/new/telediagnosis").get_data(as_text=True)
    form = {
        "site_id": "ch-brest", "patient-birth_name": "Le Goff", "patient-first_names": "Anne",
        "patient-birth_date": "1990-01-02", "patient-sex": "F", "patient-identity_status": "validated",
        "clinical_exam_done": "y", "clinical_exam_date": "2026-01-05", "clinical_context": "Douleur thoracique",
        "question": "Dissection aortique ?", "modality": "CT", "requested_exam": "Angioscanner thoracique",
        "urgency": "vital", "pregnancy_status": "not_pregnant", "callback_phone": "02 98 00 00 01",
        "attachments": (io.BytesIO(b"%PDF-1.4 ancien compte-rendu"), "cr-2025.pdf", "application/pdf"),
    }
    response = client.post("/cases/new/telediagnosis", data=form, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)
    case_id = int(response.headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "LE GOFF" in page and "cr-2025.pdf" in page and "Dossier créé" in page
    attachment = re.search(rf'/cases/{case_id}/attachments/(\d+)', page).group(0)
    download = client.get(attachment)
    assert download.status_code == 200 and download.data.startswith(b"%PDF")


def test_refused_request_creates_no_case(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.martin")
    before = case_of(demo_ctx, status="running")
    with demo_ctx.read() as session:
        count = len(session.execute(select(ProcessInstance.id)).all())
    page = client.post("/cases/new/telediagnosis", data={"site_id": "ch-brest", "question": "?"}).get_data(
        as_text=True)
    assert "Ce champ est obligatoire." in page
    with demo_ctx.read() as session:
        assert len(session.execute(select(ProcessInstance.id)).all()) == count
    assert before is not None


@pytest.mark.charter("CH-4.1.5")
@pytest.mark.charter("CH-5.3")
def test_case_record_shows_dialogue_and_every_read_is_audited(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.martin")
    case_id = case_of(demo_ctx, patient_name="KERMARREC YANN")
    client.post(f"/cases/{case_id}/messages", data={"body": "Patient sous apixaban."})
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Patient sous apixaban." in page and 'data-diagram-url="/cases/' in page
    assert client.get(f"/cases/{case_id}/diagram.bpmn").data.startswith(b"<?xml")
    with demo_ctx.read() as session:
        reads = session.execute(select(AuditEvent).where(AuditEvent.instance_id == case_id,
                                                         AuditEvent.action == "case.viewed")).all()
    assert len(reads) == 1


@pytest.mark.charter("CH-5.3", negative=True)
@pytest.mark.charter("CH-8.1", negative=True)
def test_another_sites_case_is_404_on_every_route(app, demo_ctx, clock):
    case_id = case_of(demo_ctx, patient_name="KERMARREC YANN")  # ch-brest, offered to dr.legall
    task_id = open_task(demo_ctx, case_id, "accept_case")
    outsider = login(app, demo_ctx, clock, "dr.kerbrat")  # ch-morlaix, never involved
    for method, url in [
        ("get", f"/cases/{case_id}"), ("get", f"/cases/{case_id}/diagram.bpmn"),
        ("post", f"/cases/{case_id}/messages"), ("post", f"/cases/{case_id}/attachments"),
        ("get", f"/cases/{case_id}/attachments/1"), ("get", f"/tasks/{task_id}"),
        ("post", f"/tasks/{task_id}"), ("post", f"/tasks/{task_id}/claim"), ("post", f"/tasks/{task_id}/unclaim"),
    ]:
        response = getattr(outsider, method)(url, data={"body": "x"} if method == "post" else None)
        assert response.status_code == 404, (method, url, response.status_code)
    listing = outsider.get("/cases").get_data(as_text=True)
    assert "KERMARREC" not in listing
    assert open_task(demo_ctx, case_id, "accept_case") == task_id  # nothing of it went through
    with demo_ctx.read() as session:
        assert session.execute(select(AuditEvent).where(AuditEvent.instance_id == case_id,
                                                        AuditEvent.actor == "dr.kerbrat")).first() is None
    other_radiologist = login(app, demo_ctx, clock, "dr.morvan")  # not offered tier 1 of this case
    assert other_radiologist.get(f"/cases/{case_id}").status_code == 404
