"""The radiologist's protocol choice (CH-4.1.9, CH-4.1.10): the page offers the active catalogue protocols of the
case's final modality; whatever the entry point (page, JSON API, service call), a protocol that is unknown,
inactive or of another modality is refused in French and nothing is written; contrast follows from the protocol."""

from __future__ import annotations

import html
import re

import pytest

from engine.domain.actors import Actor
from engine.services.accounts import issue_api_token
from engine.services.instances import start_instance
from engine.services.protocols import set_active
from engine.services.tasks import complete_task, list_tasks
from forms import FormValidationError
from tests import demo_app
from tests.integration.test_protocol_catalogue import reset_catalogue
from web.cli.demo_data import _actor, demo_request
from web.clinical.taskforms import TaskForm

app, demo_ctx = demo_app.app, demo_app.demo_ctx
login, open_task = demo_app.login, demo_app.open_task
ADMIN = Actor("admin", frozenset({"administrator"}))
WRONG_MODALITY = "relève de la modalité « scanner » alors que l'examen retenu relève de la modalité « radiographie »"


@pytest.fixture
def catalogue(demo_ctx):
    reset_catalogue(demo_ctx)
    yield demo_ctx
    reset_catalogue(demo_ctx)


def complete(ctx, case_id: int, spec: str, who: str, data: dict) -> None:
    actor = _actor(who)
    task = next(t for t in list_tasks(ctx, actor) if t.instance_id == case_id and t.spec_name == spec)
    complete_task(ctx, actor, task.id, data)


def case_at_protocol(ctx, modality: str = "XR", **justification: str) -> int:
    """A new case of the demo site, accepted, consented, identity checked and justified."""
    case_id = start_instance(ctx, _actor("dr.martin"), "telediagnosis", {}, site_id="ch-brest", first_task=demo_request(
        patient={"birth_name": "Quéré", "first_names": "Jean", "birth_date": "1960-09-21", "sex": "M",
                 "identity_status": "qualified"},
        question="Fracture du poignet ?", modality=modality, requested_exam="Examen demandé", urgency="scheduled",
        clinical_context="Chute sur la main."))
    complete(ctx, case_id, "accept_case", "dr.legall", {"acceptance": "accept"})
    complete(ctx, case_id, "inform_patient", "dr.martin", {"patient_informed": True, "consent": "given"})
    complete(ctx, case_id, "check_identity", "merm.leroy", {
        "identity_checked": True, "identity_status": "qualified", "identity_document": "id_card"})
    complete(ctx, case_id, "justify", "dr.legall", justification or {"justification": "validate"})
    return case_id


def options(page: str) -> list[str]:
    select = page[page.index('name="protocol"'):]
    return [html.unescape(label) for label in
            re.findall(r'<option[^>]*value="[^"]+"[^>]*>([^<]*)</option>', select[:select.index("</select>")])]


@pytest.mark.charter("CH-4.1.9")
def test_the_page_offers_the_protocols_of_the_final_modality(app, catalogue, clock):
    client = login(app, catalogue, clock, "dr.legall")
    task_id = open_task(catalogue, case_at_protocol(catalogue), "choose_protocol")
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert options(page) == ["Radiographie de membre", "Radiographie thoracique"]
    assert 'name="contrast"' not in page
    modified = case_at_protocol(catalogue, "XR", justification="modify", modified_exam="Scanner du poignet",
                                modified_modality="CT")
    page = client.get(f"/tasks/{open_task(catalogue, modified, 'choose_protocol')}").get_data(as_text=True)
    assert "Angioscanner thoracique (embolie pulmonaire) — injection : produit de contraste iodé" in options(page)
    assert all(label.startswith(("Scanner", "Angioscanner")) for label in options(page))
    set_active(catalogue, ADMIN, "xr_chest", False)
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert options(page) == ["Radiographie de membre"]


@pytest.mark.charter("CH-4.1.9", negative=True)
def test_the_page_refuses_a_protocol_of_another_modality_an_inactive_or_unknown_one(app, catalogue, clock):
    client = login(app, catalogue, clock, "dr.legall")
    case_id = case_at_protocol(catalogue)
    task_id = open_task(catalogue, case_id, "choose_protocol")
    set_active(catalogue, ADMIN, "xr_chest", False)
    for protocol, message in (("ct_head_plain", WRONG_MODALITY), ("xr_chest", "n'est plus proposé"),
                              ("my_own_protocol", "Protocole inconnu du catalogue")):
        response = client.post(f"/tasks/{task_id}", data={"protocol": protocol, "instructions": ""})
        assert response.status_code == 200
        assert message in html.unescape(response.get_data(as_text=True))
        assert open_task(catalogue, case_id, "choose_protocol") == task_id
    assert client.post(f"/tasks/{task_id}", data={"protocol": "xr_limb"}).status_code == 302


@pytest.mark.charter("CH-4.1.9", negative=True)
def test_the_api_refuses_a_protocol_of_another_modality_an_inactive_or_unknown_one(app, catalogue, clock):
    token = issue_api_token(catalogue, "dr.legall", "tests")
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    case_id = case_at_protocol(catalogue)
    task_id = open_task(catalogue, case_id, "choose_protocol")
    shown = client.get(f"/api/v1/tasks/{task_id}", headers=headers).get_json()
    assert "contrast" not in shown["schema"]["properties"]
    set_active(catalogue, ADMIN, "xr_chest", False)
    for protocol, message in (("ct_head_plain", WRONG_MODALITY), ("xr_chest", "n'est plus proposé"),
                              ("my_own_protocol", "Protocole inconnu du catalogue")):
        response = client.post(f"/api/v1/tasks/{task_id}/complete", json={"protocol": protocol}, headers=headers)
        assert response.status_code == 422
        assert message in response.get_json()["fields"]["protocol"]
    assert open_task(catalogue, case_id, "choose_protocol") == task_id


@pytest.mark.charter("CH-4.1.9", negative=True)
def test_a_direct_service_call_is_refused_the_same_way(catalogue):
    case_id = case_at_protocol(catalogue, "CT", justification="substitute", substitute_modality="MR")
    task_id = open_task(catalogue, case_id, "choose_protocol")
    with pytest.raises(FormValidationError) as refused:
        complete_task(catalogue, _actor("dr.legall"), task_id, {"protocol": "ct_head_plain"})
    assert "« IRM »" in refused.value.errors["protocol"]
    assert open_task(catalogue, case_id, "choose_protocol") == task_id
    complete_task(catalogue, _actor("dr.legall"), task_id, {"protocol": "mr_brain"})


@pytest.mark.charter("CH-4.1.10", negative=True)
def test_contrast_is_no_separate_tick_it_follows_from_the_protocol(app, catalogue, clock):
    token = issue_api_token(catalogue, "dr.legall", "tests")
    client = app.test_client()
    case_id = case_at_protocol(catalogue, "CT")
    task_id = open_task(catalogue, case_id, "choose_protocol")
    response = client.post(f"/api/v1/tasks/{task_id}/complete", json={"protocol": "ct_head_contrast",
                                                                      "contrast": False},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422 and open_task(catalogue, case_id, "choose_protocol") == task_id
    # The injected protocol alone sends the case to the joint contraindication check, not to acquisition
    complete_task(catalogue, _actor("dr.legall"), task_id, {"protocol": "ct_head_contrast"})
    assert open_task(catalogue, case_id, "check_contraindications_radiologist")


@pytest.mark.charter("CH-4.1.9")
def test_a_form_bound_to_a_submission_draws_its_choices_from_the_case(app, catalogue):
    case = {"modality": "CT", "justification": "substitute", "substitute_modality": "US"}
    with app.test_request_context("/tasks/x", method="POST", data={"protocol": "us_pelvis"}):
        form = TaskForm(catalogue.forms, "td_protocol.schema.json", None, case=case, ctx=catalogue)
        page = str(form.form.protocol())
        assert form.data_for_engine() == {"protocol": "us_pelvis"}
    assert options(page) == ["Échographie abdominale", "Échographie pelvienne"]
    assert "selected" in page.split("us_pelvis")[0].rsplit("<option", 1)[1]
    set_active(catalogue, ADMIN, "us_abdomen", False)
    set_active(catalogue, ADMIN, "us_pelvis", False)
    with app.test_request_context("/tasks/x"):
        form = TaskForm(catalogue.forms, "td_protocol.schema.json", case, ctx=catalogue)
    assert "Aucun protocole actif pour la modalité retenue" in str(form.form.protocol.description)
