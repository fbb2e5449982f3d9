"""Cases changed from outside the forms: cancelled (order cancelled), amended (patient traits corrected)."""

from __future__ import annotations

from sqlalchemy import select

from engine.services.instances import (
    amend_case,
    cancel_instance,
    case_by_accession,
    case_data,
    cases_for_patient,
    start_instance,
)
from engine.services.tasks import complete_task, list_tasks
from engine.store import audit
from engine.store.models import ProcessInstance, Task, Timer
from tests.integration.test_engine_services import RADIOLOGIST, REQUESTER, SUBMIT, only_task


def test_cancelled_case_ends_its_tasks_timers_and_is_audited(deployed):
    case_id = start_instance(deployed, REQUESTER, "engine_flow", {}, site_id="site-a")
    complete_task(deployed, REQUESTER, only_task(deployed, REQUESTER).id, dict(SUBMIT))
    cancel_instance(deployed, REQUESTER, case_id, "order cancelled by the RIS")
    with deployed.read() as session:
        assert session.get(ProcessInstance, case_id).status == "cancelled"
        assert session.execute(select(Timer).where(Timer.instance_id == case_id)).first() is None
        assert set(session.execute(select(Task.status).where(Task.instance_id == case_id)).scalars()) == {
            "completed", "cancelled"}
        assert audit.verify(session)[1] == []
    assert list_tasks(deployed, RADIOLOGIST) == []
    cancel_instance(deployed, REQUESTER, case_id, "twice")  # idempotent


def test_amended_case_data_reaches_the_open_tasks_and_lookup_by_patient_and_accession(deployed):
    case_id = start_instance(deployed, REQUESTER, "engine_flow", {
        "patient": {"birth_name": "DUPONT", "first_names": "Jean", "site_patient_id": "IPP42"},
        "accession_number": "ACC-7"}, site_id="site-a")
    assert cases_for_patient(deployed, "site-a", "IPP42") == [case_id]
    assert cases_for_patient(deployed, "site-b", "IPP42") == []
    assert case_by_accession(deployed, "ACC-7") == case_id
    assert amend_case(deployed, REQUESTER, case_id, {"patient": {"birth_name": "DUPONT-MOREL"}}, "ADT^A08")
    data = case_data(deployed, case_id)
    assert data["patient"] == {"birth_name": "DUPONT-MOREL", "first_names": "Jean", "site_patient_id": "IPP42"}
    with deployed.read() as session:
        assert session.get(ProcessInstance, case_id).patient_name == "DUPONT-MOREL JEAN"
