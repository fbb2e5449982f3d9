"""Charter violations tried as a hurried user (the pages) or a buggy client (the JSON API) would try them, on the
demo data: each is refused in the right protocol (French message on the page, 4xx JSON on the API) and nothing of
it is written (no case created, the case still at the same step, no message added)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from engine.services.accounts import issue_api_token
from engine.services.tasks import complete_task, list_tasks
from engine.store.directory_models import CaseMessage
from engine.store.models import ProcessInstance, Task
from tests import demo_app
from tests.demo_app import case_of, login, open_task
from tests.signing import signature_code
from web.cli.demo_data import _actor as demo_actor
from web.cli.demo_data import demo_request

app, demo_ctx = demo_app.app, demo_app.demo_ctx  # the demo fixtures of the clinician pages

TE_REQUEST = {
    "patient": {"birth_name": "Cozic", "first_names": "Anne", "birth_date": "1961-07-08", "sex": "F",
                "identity_status": "qualified"},
    "expert_id": "dr.legall", "question": "Lésion rénale gauche : kyste simple ou lésion tissulaire ?",
    "clinical_context": "Découverte fortuite, créatinine normale.", "study_reference": "TR260105A1B2C3D4",
    "prior_imaging": "Échographie rénale du 2025-11-02.", "interventional_decision_possible": True,
}


class Api:
    """The JSON API as one user sees it, through a bearer token."""

    def __init__(self, app: Any, ctx: Any, username: str) -> None:
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {issue_api_token(ctx, username, 'tests')}"}

    def post(self, url: str, body: dict[str, Any]) -> Any:
        return self.client.post(f"/api/v1{url}", json=body, headers=self.headers)

    def get(self, url: str) -> Any:
        return self.client.get(f"/api/v1{url}", headers=self.headers)


def case_ids(ctx) -> list[int]:
    with ctx.read() as session:
        return list(session.execute(select(ProcessInstance.id).order_by(ProcessInstance.id)).scalars())


def messages_of(ctx, case_id: int) -> int:
    with ctx.read() as session:
        return session.execute(select(func.count()).select_from(CaseMessage)
                               .where(CaseMessage.instance_id == case_id)).scalar_one()


def open_steps(ctx, case_id: int) -> list[str]:
    with ctx.read() as session:
        return sorted(session.execute(select(Task.spec_name).where(
            Task.instance_id == case_id, Task.status == "open")).scalars())


def step(ctx, case_id: int, spec: str, who: str, data: dict[str, Any]) -> None:
    actor = demo_actor(who)
    task = next(t for t in list_tasks(ctx, actor) if t.instance_id == case_id and t.spec_name == spec)
    complete_task(ctx, actor, task.id, data)


def xr_case_at_interpretation(ctx) -> int:
    """The demo's third case (wrist X-ray, accepted by dr.legall), acquired and waiting for its report."""
    case_id = case_of(ctx, patient_name="QUÉRÉ JEAN")
    step(ctx, case_id, "acquire_images", "merm.leroy",
         {"images_sent": True, "protocol_followed": True, "technical_difficulty": False})
    assert open_steps(ctx, case_id) == ["interpret"]
    return case_id


def telediagnosis_form(**fields: str) -> dict[str, str]:
    form = {"site_id": "ch-brest", "patient-birth_name": "Le Goff", "patient-first_names": "Anne",
            "patient-birth_date": "1950-01-02", "patient-sex": "F", "patient-identity_status": "validated",
            "clinical_exam_done": "y", "clinical_exam_date": "2026-01-05", "clinical_context": "Douleur thoracique",
            "question": "Dissection aortique ?", "modality": "CT", "requested_exam": "Angioscanner thoracique",
            "urgency": "vital", "pregnancy_status": "not_applicable", "callback_phone": "02 98 00 00 01"}
    form.update(fields)
    return {k: v for k, v in form.items() if v is not None}


@pytest.mark.charter("CH-1.1")
def test_CH1_1_only_the_two_families_have_a_request_page_and_unknown_processes_start_nothing(
        app, demo_ctx, clock):
    before = case_ids(demo_ctx)
    technologist = login(app, demo_ctx, clock, "merm.leroy")
    for process in ("image_identity_check", "teleconsultation"):
        assert technologist.get(f"/cases/new/{process}").status_code == 404
        assert technologist.post(f"/cases/new/{process}", data={"site_id": "ch-brest"}).status_code == 404
    response = Api(app, demo_ctx, "dr.martin").post("/cases", {"process": "teleconsultation", "site_id": "ch-brest",
                                                               "request": demo_request()})
    assert response.status_code == 404 and "teleconsultation" in response.get_json()["message"]
    assert case_ids(demo_ctx) == before


@pytest.mark.charter("CH-1.1", negative=True)
def test_the_api_does_not_start_a_support_process_as_a_case(app, demo_ctx):
    before = case_ids(demo_ctx)
    response = Api(app, demo_ctx, "merm.leroy").post("/cases", {
        "process": "image_identity_check", "site_id": "ch-brest",
        "request": {"decision": "attach", "comment": "Vérifié avec la modalité."}})
    assert response.status_code in (403, 404, 422)
    assert case_ids(demo_ctx) == before


@pytest.mark.charter("CH-2.1", negative=True)
def test_CH2_1_local_radiologist_on_duty_without_a_reason_refused_on_the_page_and_the_api(app, demo_ctx, clock):
    before = case_ids(demo_ctx)
    page = login(app, demo_ctx, clock, "dr.martin").post(
        "/cases/new/telediagnosis", data=telediagnosis_form(local_radiologist_on_duty="y"))
    assert page.status_code == 200 and "Ce champ est obligatoire." in page.get_data(as_text=True)
    response = Api(app, demo_ctx, "dr.martin").post("/cases", {
        "process": "telediagnosis", "site_id": "ch-brest", "request": demo_request(local_radiologist_on_duty=True)})
    assert response.status_code == 422 and "teleradiology_reason" in response.get_json()["fields"]
    assert case_ids(demo_ctx) == before


@pytest.mark.charter("CH-4.1.8", negative=True)
def test_CH4_1_8_a_request_without_its_written_question_is_refused_on_the_page_and_the_api(app, demo_ctx, clock):
    before = case_ids(demo_ctx)
    page = login(app, demo_ctx, clock, "dr.martin").post("/cases/new/telediagnosis",
                                                         data=telediagnosis_form(question=None))
    assert page.status_code == 200 and "Ce champ est obligatoire." in page.get_data(as_text=True)
    api = Api(app, demo_ctx, "dr.martin")
    for field in ("question", "clinical_context"):
        request = demo_request()
        del request[field]
        response = api.post("/cases", {"process": "telediagnosis", "site_id": "ch-brest", "request": request})
        assert response.status_code == 422 and field in response.get_json()["fields"]
    assert case_ids(demo_ctx) == before


@pytest.mark.charter("CH-3.3", negative=True)
def test_CH3_3_a_tier_2_radiologist_cannot_open_or_accept_a_case_tier_1_still_holds(app, demo_ctx, clock):
    case_id = case_of(demo_ctx, patient_name="KERMARREC YANN")  # ch-brest, offered to dr.legall (tier 1)
    task_id = open_task(demo_ctx, case_id, "accept_case")
    api = Api(app, demo_ctx, "dr.morvan")  # Morlaix: tier 2 for a Brest site
    assert task_id not in [t["id"] for t in api.get("/tasks").get_json()["tasks"]]
    assert api.get(f"/tasks/{task_id}").status_code == 404
    assert api.post(f"/tasks/{task_id}/claim", {}).status_code == 404
    assert api.post(f"/tasks/{task_id}/complete", {"acceptance": "accept"}).status_code == 404
    page = login(app, demo_ctx, clock, "dr.morvan")
    assert page.post(f"/tasks/{task_id}", data={"acceptance": "accept"}).status_code == 404
    with demo_ctx.read() as session:
        task = session.get(Task, task_id)
        assert (task.status, task.assignee) == ("open", None)


@pytest.mark.charter("CH-4.1.5", negative=True)
def test_CH4_1_5_someone_outside_the_case_cannot_post_in_its_dialogue(app, demo_ctx, clock):
    case_id = case_of(demo_ctx, patient_name="KERMARREC YANN")
    before = messages_of(demo_ctx, case_id)
    response = Api(app, demo_ctx, "dr.kerbrat").post(f"/cases/{case_id}/messages", {"body": "Mon avis : rien."})
    assert response.status_code == 404
    page = login(app, demo_ctx, clock, "dr.morvan").post(f"/cases/{case_id}/messages",
                                                        data={"body": "Mon avis : rien."})
    assert page.status_code == 404
    assert messages_of(demo_ctx, case_id) == before
    assert Api(app, demo_ctx, "dr.martin").post(f"/cases/{case_id}/messages",
                                                {"body": "Patient sous apixaban."}).status_code == 201


@pytest.mark.charter("CH-4.1.11", negative=True)
def test_CH4_1_11_the_acquisition_cannot_be_recorded_without_the_images_sent(app, demo_ctx):
    case_id = case_of(demo_ctx, patient_name="QUÉRÉ JEAN")
    task_id = open_task(demo_ctx, case_id, "acquire_images")
    response = Api(app, demo_ctx, "merm.leroy").post(f"/tasks/{task_id}/complete", {
        "images_sent": False, "protocol_followed": True, "technical_difficulty": False})
    assert response.status_code == 422 and "images_sent" in response.get_json()["fields"]
    assert open_steps(demo_ctx, case_id) == ["acquire_images"]


@pytest.mark.charter("CH-4.1.12", negative=True)
def test_CH4_1_12_an_urgent_finding_is_not_released_before_the_phone_call_is_recorded(app, demo_ctx):
    case_id = xr_case_at_interpretation(demo_ctx)
    api = Api(app, demo_ctx, "dr.legall")
    response = api.post(f"/tasks/{open_task(demo_ctx, case_id, 'interpret')}/complete", {
        "outcome": "report", "findings": "Fracture déplacée du radius distal.", "conclusion": "Fracture.",
        "certainty": "certain", "urgent_finding": True, "poor_prognosis": False,
        "signature_code": signature_code(demo_ctx, "dr.legall")})
    assert response.status_code == 200 and open_steps(demo_ctx, case_id) == ["record_phone_call"]
    response = api.post(f"/tasks/{open_task(demo_ctx, case_id, 'record_phone_call')}/complete",
                        {"caller": "Dr Le Gall", "callee": "Dr Martin"})
    assert response.status_code == 422 and {"called_at", "summary"} <= set(response.get_json()["fields"])
    assert open_steps(demo_ctx, case_id) == ["record_phone_call"]
    requester = Api(app, demo_ctx, "dr.martin")
    assert [t for t in requester.get("/tasks").get_json()["tasks"] if t["case_id"] == case_id] == []
    assert "release" not in requester.get(f"/cases/{case_id}").get_json()["data"]


@pytest.mark.charter("CH-4.1.14", negative=True)
def test_CH4_1_14_a_refusal_without_its_reason_is_refused_through_the_api(app, demo_ctx):
    case_id = xr_case_at_interpretation(demo_ctx)
    api = Api(app, demo_ctx, "dr.legall")
    assert api.post(f"/tasks/{open_task(demo_ctx, case_id, 'interpret')}/complete",
                    {"outcome": "refuse", "signature_code": signature_code(demo_ctx, "dr.legall")}).status_code == 200
    task_id = open_task(demo_ctx, case_id, "state_refusal")
    response = api.post(f"/tasks/{task_id}/complete", {"refusal_follow_up": "convention_fallback"})
    assert response.status_code == 422 and {"refusal_reason", "refusal_detail"} <= set(
        response.get_json()["fields"])
    assert open_steps(demo_ctx, case_id) == ["state_refusal"]
    with demo_ctx.read() as session:
        assert session.get(ProcessInstance, case_id).status == "running"


@pytest.mark.charter("CH-4.1.15", negative=True)
def test_CH4_1_15_the_acknowledgement_without_integration_in_the_record_is_refused(app, demo_ctx, clock):
    case_id = xr_case_at_interpretation(demo_ctx)
    step(demo_ctx, case_id, "interpret", "dr.legall", {
        "outcome": "report", "findings": "Pas de fracture.", "conclusion": "Radiographie normale.",
        "certainty": "certain", "urgent_finding": False, "poor_prognosis": False,
        "signature_code": signature_code(demo_ctx, "dr.legall")})
    task_id = open_task(demo_ctx, case_id, "acknowledge_report")
    response = Api(app, demo_ctx, "dr.martin").post(f"/tasks/{task_id}/complete",
                                                    {"report_read": True, "integrated_in_record": False})
    assert response.status_code == 422 and "integrated_in_record" in response.get_json()["fields"]
    page = login(app, demo_ctx, clock, "dr.martin").post(f"/tasks/{task_id}", data={"report_read": "y"})
    assert page.status_code == 200 and "pas acceptée ici" in page.get_data(as_text=True)  # the box left unticked
    assert open_steps(demo_ctx, case_id) == ["acknowledge_report"]
    with demo_ctx.read() as session:
        assert session.get(ProcessInstance, case_id).status == "running"


@pytest.mark.charter("CH-3.6", negative=True)
@pytest.mark.charter("CH-4.2.2", negative=True)
def test_CH3_6_and_CH4_2_2_an_incomplete_teleexpertise_request_creates_no_case(app, demo_ctx):
    before = case_ids(demo_ctx)
    api = Api(app, demo_ctx, "dr.kerbrat")  # local radiologist of ch-morlaix
    for field in ("interventional_decision_possible", "study_reference", "prior_imaging", "clinical_context"):
        request = {k: v for k, v in TE_REQUEST.items() if k != field}
        response = api.post("/cases", {"process": "teleexpertise", "site_id": "ch-morlaix", "request": request})
        assert response.status_code == 422 and field in response.get_json()["fields"], field
    assert case_ids(demo_ctx) == before


@pytest.mark.charter("CH-4.2.3", negative=True)
def test_CH4_2_3_the_expert_cannot_send_the_file_back_without_saying_what_is_missing_and_why(app, demo_ctx):
    local = Api(app, demo_ctx, "dr.kerbrat")
    response = local.post("/cases", {"process": "teleexpertise", "site_id": "ch-morlaix", "request": TE_REQUEST})
    assert response.status_code == 201, response.get_json()
    case_id = response.get_json()["id"]
    step(demo_ctx, case_id, "te_consent", "dr.kerbrat", {"patient_informed": True, "consent": "given"})
    task_id = open_task(demo_ctx, case_id, "te_check")
    expert = Api(app, demo_ctx, "dr.legall")
    for body in ({"file_complete": False}, {"file_complete": False, "missing_items": "Séquences T1"},
                 {"file_complete": False, "missing_items": "", "missing_reason": ""}):
        response = expert.post(f"/tasks/{task_id}/complete", body)
        assert response.status_code == 422, body
    assert open_steps(demo_ctx, case_id) == ["te_check"]
    assert "missing_items" not in local.get(f"/cases/{case_id}").get_json()["data"]


# Text made only of spaces counts as not given, whatever the entry point: the engine's form validation trims every
# text before checking "required" and "minLength" (forms.registry.FormRegistry.validate), as the pages' widgets do.
BLANK = " \u00a0\n " + " " * 10


@pytest.mark.charter("CH-2.1", negative=True)
@pytest.mark.charter("CH-4.1.8", negative=True)
def test_a_request_with_a_blank_reason_or_question_is_refused_by_the_api(app, demo_ctx):
    before = case_ids(demo_ctx)
    api = Api(app, demo_ctx, "dr.martin")
    for request in (demo_request(local_radiologist_on_duty=True, teleradiology_reason=BLANK),
                    demo_request(question=BLANK), demo_request(clinical_context=BLANK)):
        response = api.post("/cases", {"process": "telediagnosis", "site_id": "ch-brest", "request": request})
        assert response.status_code == 422
    assert case_ids(demo_ctx) == before


@pytest.mark.charter("CH-4.1.12", negative=True)
def test_an_urgent_finding_is_not_released_with_a_blank_phone_call_record(app, demo_ctx):
    case_id = xr_case_at_interpretation(demo_ctx)
    api = Api(app, demo_ctx, "dr.legall")
    api.post(f"/tasks/{open_task(demo_ctx, case_id, 'interpret')}/complete", {
        "outcome": "report", "findings": "Fracture déplacée.", "conclusion": "Fracture.", "certainty": "certain",
        "urgent_finding": True, "poor_prognosis": False, "signature_code": signature_code(demo_ctx, "dr.legall")})
    response = api.post(f"/tasks/{open_task(demo_ctx, case_id, 'record_phone_call')}/complete",
                        {"caller": BLANK, "callee": BLANK, "called_at": "2026-01-05T12:05", "summary": BLANK})
    assert response.status_code == 422
    assert open_steps(demo_ctx, case_id) == ["record_phone_call"]


@pytest.mark.charter("CH-4.2.2", negative=True)
@pytest.mark.charter("CH-4.2.3", negative=True)
def test_a_blank_teleexpertise_request_or_missing_data_answer_is_refused_by_the_api(app, demo_ctx):
    local, expert = Api(app, demo_ctx, "dr.kerbrat"), Api(app, demo_ctx, "dr.legall")
    blank = {**TE_REQUEST, "study_reference": BLANK, "clinical_context": BLANK, "prior_imaging": BLANK}
    response = local.post("/cases", {"process": "teleexpertise", "site_id": "ch-morlaix", "request": blank})
    assert response.status_code == 422
    case_id = local.post("/cases", {"process": "teleexpertise", "site_id": "ch-morlaix",
                                    "request": TE_REQUEST}).get_json()["id"]
    step(demo_ctx, case_id, "te_consent", "dr.kerbrat", {"patient_informed": True, "consent": "given"})
    response = expert.post(f"/tasks/{open_task(demo_ctx, case_id, 'te_check')}/complete",
                           {"file_complete": False, "missing_items": BLANK, "missing_reason": BLANK})
    assert response.status_code == 422
    assert open_steps(demo_ctx, case_id) == ["te_check"]
