"""CH-3.4 / CH-4.2 (with CH-3.1): a tele-expert is one of the radiologists bound to the requesting site by an
active convention, with valid credentials at today's date in France. Refused through the check itself, the task
service, the JSON API and the task page, in French; the eligible experts of a site are listed for the forms."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.services import task_checks
from engine.services.accounts import create_user, issue_api_token
from engine.services.directory import create_convention, mark_totp_enrolled, update_radiologist_credentials
from engine.services.eligibility import Expert, check_expert, eligible_experts
from engine.services.instances import start_instance
from engine.services.tasks import complete_task, list_tasks
from engine.store.models import ProcessInstance, Task
from forms import FormValidationError
from tests import demo_app
from tests.convention_support import complete_convention
from tests.demo_app import login
from web.cli.demo_data import DEMO_PASSWORD

app, demo_ctx = demo_app.app, demo_app.demo_ctx  # the demo directory, accounts and cases (fixtures)
ADMIN = Actor("admin", frozenset({"administrator"}))
LOCAL = Actor("dr.lelay", frozenset({"local_radiologist", "radiologist", "tele_expert"}), frozenset({"ch-morlaix"}))
VALID = {"rpps": "10003456786", "authorization_expires": date(2030, 12, 31), "insurance_expires": date(2030, 12, 31)}
EXPERT_FORMS = ("te_request.schema.json", "te_choose_expert.schema.json")
UNBOUND = "n'est lié au site demandeur par aucune convention active"


@pytest.fixture
def experts(demo_ctx):
    """The demo (dr.legall and dr.morvan bound to every demo site) plus a valid radiologist bound to none, and the
    check registered on the expert forms as the product registers it."""
    create_user(demo_ctx, ADMIN, "dr.unbound", "Dr Hors Convention", "une phrase de passe solide",
                ("radiologist", "tele_expert"), (), territory_id="brest", **VALID)
    # a local radiologist of ch-morlaix who is also one of its conventioned tele-experts
    create_user(demo_ctx, ADMIN, LOCAL.user_id, "Dr Soizic Le Lay (radiologue)", DEMO_PASSWORD,
                tuple(LOCAL.roles), tuple(LOCAL.sites), territory_id="morlaix", **VALID)
    mark_totp_enrolled(demo_ctx, ADMIN, LOCAL.user_id)
    complete_convention(demo_ctx, "ch-morlaix", (LOCAL.user_id,), "dr.riou")  # complete and active (issue 19)
    added = [key for key in EXPERT_FORMS if check_expert not in task_checks._BY_FORM.get(key, [])]
    for key in added:
        task_checks.register(key, check_expert)
    yield demo_ctx
    for key in added:
        task_checks._BY_FORM[key].remove(check_expert)


def expertise_request(**overrides: Any) -> dict[str, Any]:
    return {"patient": {"birth_name": "KERMARREC", "first_names": "Yann", "birth_date": "1950-03-02", "sex": "M",
                        "identity_status": "qualified"},
            "expert_id": "dr.legall", "question": "Lésion rénale gauche : kyste ou lésion tissulaire ?",
            "clinical_context": "Découverte fortuite.", "study_reference": "TR260105A1B2C3D4",
            "prior_imaging": "aucune", "interventional_decision_possible": True, **overrides}


def open_task(ctx, case_id: int, spec: str) -> str:
    with ctx.read() as session:
        return session.execute(select(Task.id).where(Task.instance_id == case_id, Task.spec_name == spec,
                                                     Task.status == "open")).scalar_one()


def at_choose_expert(ctx) -> int:
    """A teleexpertise of ch-morlaix whose local radiologist named himself: the diagram asks him to choose."""
    case_id = start_instance(ctx, LOCAL, "teleexpertise", {}, site_id="ch-morlaix")
    complete_task(ctx, LOCAL, open_task(ctx, case_id, "te_request"), expertise_request(expert_id=LOCAL.user_id))
    open_task(ctx, case_id, "te_choose_expert")
    return case_id


@pytest.mark.charter("CH-3.4", negative=True)
@pytest.mark.charter("CH-4.2.1", negative=True)
def test_check_refuses_an_expert_bound_by_no_active_convention(experts):
    assert check_expert(experts, "ch-morlaix", {"expert_id": "dr.legall"}, {}) == {}
    refused = check_expert(experts, "ch-morlaix", {"expert_id": "dr.unbound"}, {})
    assert refused == {"expert_id": f"Dr Hors Convention {UNBOUND} : choisissez un télé-expert parmi les "
                                    "radiologues conventionnés du site."}
    # an inactive convention (not approved by the Medical Council) binds nobody
    create_convention(experts, ADMIN, "ch-morlaix", ("dr.unbound",), cme_validated=True, approved_by_g4=True,
                      approved_by_council=False)
    assert UNBOUND in check_expert(experts, "ch-morlaix", {"expert_id": "dr.unbound"}, {})["expert_id"]
    assert check_expert(experts, None, {"expert_id": "dr.legall"}, {})  # no site, no convention


@pytest.mark.charter("CH-4.2.1", negative=True)
def test_check_refuses_unknown_accounts_non_radiologists_and_the_asking_radiologist(experts):
    for who in ("nobody", "dr.martin", "merm.leroy"):
        assert "n'est pas un radiologue ou un télé-expert actif" in check_expert(
            experts, "ch-brest", {"expert_id": who}, {})["expert_id"]
    assert check_expert(experts, "ch-brest", {"expert_id": "dr.legall"}, {"local_radiologist_id": "dr.legall"}) \
        == {"expert_id": "Vous ne pouvez pas être votre propre télé-expert : choisissez un autre radiologue."}


@pytest.mark.charter("CH-3.1", negative=True)
@pytest.mark.charter("CH-3.4", negative=True)
def test_credentials_are_checked_at_the_paris_date(experts, clock):
    update_radiologist_credentials(experts, ADMIN, "dr.morvan", rpps="10101010105",
                                   authorization_expires=date(2030, 12, 31), insurance_expires=date(2026, 12, 31),
                                   extraterritorial=False, foreign_authorization_on_file=False,
                                   foreign_insurance_on_file=False, territory_id="morlaix", external_company=None)
    clock.set(datetime(2026, 12, 31, 22, 30, tzinfo=UTC))  # 23:30 in Paris: the last day of cover
    assert check_expert(experts, "ch-brest", {"expert_id": "dr.morvan"}, {}) == {}
    assert [e.user_id for e in eligible_experts(experts, "ch-brest")] == ["dr.morvan", "dr.legall"]
    clock.set(datetime(2026, 12, 31, 23, 30, tzinfo=UTC))  # still 2026 in UTC, already 2027 in Paris
    refused = check_expert(experts, "ch-brest", {"expert_id": "dr.morvan"}, {})["expert_id"]
    assert refused.startswith("Dr Anne Morvan (radiologue) ne peut pas être sollicité : Assurance RCP expirée")
    assert eligible_experts(experts, "ch-brest") == [Expert("dr.legall", "Dr Yann Le Gall (radiologue)")]


@pytest.mark.charter("CH-3.4")
def test_eligible_experts_of_a_site_for_the_form_choices(experts):
    assert eligible_experts(experts, "ch-morlaix") == [Expert("dr.morvan", "Dr Anne Morvan (radiologue)"),
                                                       Expert("dr.lelay", "Dr Soizic Le Lay (radiologue)"),
                                                       Expert("dr.legall", "Dr Yann Le Gall (radiologue)")]
    assert [e.user_id for e in eligible_experts(experts, "ch-morlaix", exclude=(LOCAL.user_id,))] == [
        "dr.morvan", "dr.legall"]  # not the asking radiologist
    assert [e.user_id for e in eligible_experts(experts, "ch-brest")] == ["dr.morvan", "dr.legall"]
    assert eligible_experts(experts, "unknown-site") == []


@pytest.mark.charter("CH-3.4", negative=True)
@pytest.mark.charter("CH-4.2.1", negative=True)
def test_task_service_refuses_an_unbound_expert_and_writes_nothing(experts):
    case_id = start_instance(experts, LOCAL, "teleexpertise", {}, site_id="ch-morlaix")
    request_task = open_task(experts, case_id, "te_request")
    with pytest.raises(FormValidationError) as refused:
        complete_task(experts, LOCAL, request_task, expertise_request(expert_id="dr.unbound"))
    assert UNBOUND in refused.value.errors["expert_id"]
    assert open_task(experts, case_id, "te_request") == request_task  # nothing moved
    case_id = at_choose_expert(experts)
    choose = open_task(experts, case_id, "te_choose_expert")
    for expert_id, message in (("dr.unbound", UNBOUND), (LOCAL.user_id, "votre propre télé-expert")):
        with pytest.raises(FormValidationError) as refused:
            complete_task(experts, LOCAL, choose, {"expert_id": expert_id})
        assert message in refused.value.errors["expert_id"]
    complete_task(experts, LOCAL, choose, {"expert_id": "dr.legall"})
    assert [t.spec_name for t in list_tasks(experts, LOCAL) if t.instance_id == case_id] == ["te_consent"]


@pytest.mark.charter("CH-3.4", negative=True)
def test_api_and_task_page_refuse_an_unbound_expert_in_french(app, experts, clock):
    case_id = at_choose_expert(experts)
    choose = open_task(experts, case_id, "te_choose_expert")
    token = issue_api_token(experts, LOCAL.user_id, "tests")
    response = app.test_client().post(f"/api/v1/tasks/{choose}/complete", json={"expert_id": "dr.unbound"},
                                      headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422 and UNBOUND in response.get_json()["fields"]["expert_id"]
    client = login(app, experts, clock, LOCAL.user_id)
    shown = html.unescape(client.post(f"/tasks/{choose}", data={"expert_id": "dr.unbound"}).get_data(as_text=True))
    assert UNBOUND in shown
    assert open_task(experts, case_id, "te_choose_expert") == choose


@pytest.mark.charter("CH-3.4", negative=True)
@pytest.mark.charter("CH-4.2.1", negative=True)
def test_a_new_request_naming_an_unbound_expert_creates_no_case(app, experts):
    def cases() -> int:
        with experts.read() as session:
            return len(session.execute(select(ProcessInstance.id)).all())

    before = cases()
    with pytest.raises(FormValidationError) as refused:
        start_instance(experts, LOCAL, "teleexpertise", {}, site_id="ch-morlaix",
                       first_task=expertise_request(expert_id="dr.unbound"))
    assert UNBOUND in refused.value.errors["expert_id"]
    token = issue_api_token(experts, LOCAL.user_id, "tests")
    response = app.test_client().post("/api/v1/cases", headers={"Authorization": f"Bearer {token}"}, json={
        "process": "teleexpertise", "site_id": "ch-morlaix", "request": expertise_request(expert_id="dr.unbound")})
    assert response.status_code == 422 and UNBOUND in response.get_json()["fields"]["expert_id"]
    assert cases() == before
    created = app.test_client().post("/api/v1/cases", headers={"Authorization": f"Bearer {token}"}, json={
        "process": "teleexpertise", "site_id": "ch-morlaix", "request": expertise_request(expert_id="dr.legall")})
    assert created.status_code == 201 and cases() == before + 1
