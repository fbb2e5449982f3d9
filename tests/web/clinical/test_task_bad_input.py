"""Task and request pages refuse a NUL byte in a text with a French field error and write nothing (issue 16): the
check lives in forms (FormRegistry.validate), so the API and HL7 entry points refuse it too."""

from __future__ import annotations

from sqlalchemy import func, select

from engine.store.directory_models import CaseMessage
from engine.store.models import AuditEvent, ProcessInstance, Task
from tests import demo_app
from tests.demo_app import case_of, login, open_task

app, demo_ctx = demo_app.app, demo_app.demo_ctx  # the web app on the demo data (fixtures)


def row_counts(ctx) -> dict[str, int]:
    """Rows of the main tables; audit events other than reads (the page shows the task again, a traced read)."""
    with ctx.read() as session:
        counts = {model.__tablename__: session.execute(select(func.count()).select_from(model)).scalar_one()
                  for model in (ProcessInstance, Task, CaseMessage)}
        counts["audit_event"] = session.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action.not_in(("task.viewed", "case.viewed")))).scalar_one()
        return counts


def test_task_page_refuses_a_nul_byte_with_a_field_error(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    case_id = case_of(demo_ctx, patient_name="KERMARREC YANN")
    task_id = open_task(demo_ctx, case_id, "accept_case")
    before = row_counts(demo_ctx)
    response = client.post(f"/tasks/{task_id}", data={"acceptance": "decline",
                                                      "decline_reason": "Examen\x00 non indiqué"})
    assert response.status_code == 200
    assert "Caractère non autorisé." in response.get_data(as_text=True)
    assert open_task(demo_ctx, case_id, "accept_case") == task_id
    assert row_counts(demo_ctx) == before


def test_request_page_refuses_a_nul_byte_and_creates_no_case(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.martin")
    before = row_counts(demo_ctx)
    form = {
        "site_id": "ch-brest", "patient-birth_name": "Le\x00Goff", "patient-first_names": "Anne",
        "patient-birth_date": "1990-01-02", "patient-sex": "F", "patient-identity_status": "validated",
        "clinical_exam_done": "y", "clinical_exam_date": "2026-01-05", "clinical_context": "Douleur\x00",
        "question": "Dissection aortique ?", "modality": "CT", "requested_exam": "Angioscanner thoracique",
        "urgency": "vital", "pregnancy_status": "not_pregnant", "callback_phone": "02 98 00 00 01",
    }
    response = client.post("/cases/new/telediagnosis", data=form)
    assert response.status_code == 200
    assert "Caractère non autorisé." in response.get_data(as_text=True)
    assert row_counts(demo_ctx) == before
