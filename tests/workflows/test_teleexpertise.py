"""The teleexpertise diagram (second opinion, CH-4.2), driven through the engine services: one scenario per rule.

A defect found in a diagram is pinned by a strict xfail test WITHOUT a ``charter`` marker (the conformance
matrix must never count a failing test as proof); once fixed, the marker goes back on.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.errors import Conflict, NotFound
from engine.services.instances import start_instance
from engine.services.tasks import complete_task, list_tasks, task_data
from engine.services.timers import fire_due_timers
from engine.store.models import AuditEvent, Timer
from forms import FormValidationError
from tests.workflows.conftest import LOCAL_RADIOLOGIST, Case, radiologist

EXPERT = radiologist("rad.region")  # Dr Guillou, Vannes
OTHER_EXPERT = radiologist("rad.neighbour")
SITE_EXPERT = Actor("rad.brest.expert", frozenset({"radiologist", "tele_expert"}), frozenset({"ch-brest"}))
OTHER_LOCAL_RADIOLOGIST = Actor("dr.local.other", frozenset({"local_radiologist"}), frozenset({"ch-brest"}))

REPORT = {"opinion": "Lésion kystique simple, sans critère de malignité.", "conclusion": "Bosniak I.",
          "send_to_requester": False, "patient_requested": False}


def te_request_form(**overrides: Any) -> dict[str, Any]:
    data = {
        "patient": {"birth_name": "KERMARREC", "first_names": "Yann", "birth_date": "1950-03-02", "sex": "M",
                    "identity_status": "qualified", "ins": "150032912345688"},
        "expert_id": "rad.region",
        "question": "Lésion rénale gauche : kyste simple ou lésion tissulaire ?",
        "clinical_context": "Découverte fortuite, créatinine normale, pas d'hématurie.",
        "study_reference": "TR260105A1B2C3D4",
        "prior_imaging": "Échographie rénale du 2025-11-02 (même lésion, 18 mm).",
        "interventional_decision_possible": True,
    }
    data.update(overrides)
    return data


@pytest.fixture
def new_expertise(charter_ctx):
    def start(**request: Any) -> Case:
        case = Case(charter_ctx, start_instance(charter_ctx, LOCAL_RADIOLOGIST, "teleexpertise", {},
                                                site_id="ch-brest"))
        case.complete("te_request", LOCAL_RADIOLOGIST, **te_request_form(**request))
        return case

    return start


def consent(case: Case) -> None:
    case.complete("te_consent", LOCAL_RADIOLOGIST, patient_informed=True, consent="given")


def mine(case: Case, actor: Actor) -> list[str]:
    return sorted(t.spec_name for t in list_tasks(case.ctx, actor) if t.instance_id == case.id)


def up_to_report(case: Case) -> None:
    consent(case)
    case.complete("te_check", EXPERT, file_complete=True)
    assert case.open_tasks() == ["te_report"]


# --------------------------------------------------------------------------------------------------
# CH-4.2.1 consent to the opinion of a NAMED tele-expert
# --------------------------------------------------------------------------------------------------


@pytest.mark.charter("CH-4.2.1")
def test_CH4_2_1_the_patient_consents_to_a_named_tele_expert(new_expertise):
    case = new_expertise()
    # The expert's identity is in the case before the patient is asked: consent is to a named person.
    assert case.open_tasks() == ["te_consent"]
    assert case.data["expert"]["id"] == "rad.region"
    assert case.data["expert"]["name"] == "Dr Guillou"
    assert case.data["expert"]["known"] is True
    assert case.data["local_radiologist_id"] == "dr.local"
    # Consent is the task of the local radiologist who asked, not of a colleague nor of the expert.
    assert mine(case, OTHER_LOCAL_RADIOLOGIST) == []
    assert mine(case, EXPERT) == []
    with pytest.raises(FormValidationError) as refused:
        case.complete("te_consent", LOCAL_RADIOLOGIST, patient_informed=False, consent="given")
    assert "patient_informed" in refused.value.errors
    consent(case)
    assert case.data["consent"] == "given"
    assert case.open_tasks() == ["te_check"]


@pytest.mark.charter("CH-4.2.1")
def test_CH4_2_1_force_majeure_without_consent_must_be_stated(new_expertise):
    case = new_expertise()
    with pytest.raises(FormValidationError) as refused:
        case.complete("te_consent", LOCAL_RADIOLOGIST, patient_informed=True, consent="force_majeure")
    assert refused.value.errors == {"force_majeure_reason": "Ce champ est obligatoire."}
    with pytest.raises(FormValidationError) as too_short:
        case.complete("te_consent", LOCAL_RADIOLOGIST, patient_informed=True, consent="force_majeure",
                      force_majeure_reason="urgence")
    assert "force_majeure_reason" in too_short.value.errors
    assert case.open_tasks() == ["te_consent"]
    case.complete("te_consent", LOCAL_RADIOLOGIST, patient_informed=True, consent="force_majeure",
                  force_majeure_reason="Patient intubé, aucun proche joignable.")
    assert case.open_tasks() == ["te_check"]
    assert case.data["force_majeure_reason"] == "Patient intubé, aucun proche joignable."


@pytest.mark.charter("CH-4.2.1")
def test_CH4_2_1_only_the_named_tele_expert_gets_the_file(new_expertise):
    case = new_expertise()
    consent(case)
    assert mine(case, EXPERT) == ["te_check"]
    # Another tele-expert is not even told the task exists.
    assert mine(case, OTHER_EXPERT) == [] and mine(case, SITE_EXPERT) == []
    assert mine(case, LOCAL_RADIOLOGIST) == []
    check = case.task_id("te_check", EXPERT)
    with pytest.raises(NotFound):
        complete_task(case.ctx, OTHER_EXPERT, check, {"file_complete": True})
    with pytest.raises(NotFound):
        task_data(case.ctx, OTHER_EXPERT, check)
    with pytest.raises(Conflict):  # a tele-expert of the site cannot take it over either
        complete_task(case.ctx, SITE_EXPERT, check, {"file_complete": True})
    assert case.open_tasks() == ["te_check"]
    case.complete("te_check", EXPERT, file_complete=True)
    assert mine(case, EXPERT) == ["te_report"] and mine(case, SITE_EXPERT) == []


@pytest.mark.charter("CH-4.2.1", negative=True)
@pytest.mark.charter("CH-3.1", negative=True)
@pytest.mark.charter("CH-3.4", negative=True)
@pytest.mark.parametrize("expert_id", ["rad.expired", "nobody", "dr.local"],
                         ids=["expired-insurance", "unknown-id", "the-local-radiologist-himself"])
def test_CH4_2_1_and_CH3_1_only_a_valid_tele_expert_can_be_named(charter_ctx, expert_id):
    case = Case(charter_ctx, start_instance(charter_ctx, LOCAL_RADIOLOGIST, "teleexpertise", {},
                                            site_id="ch-brest"))
    with pytest.raises(FormValidationError) as refused:  # no consent, no file shared with an unfit expert
        case.complete("te_request", LOCAL_RADIOLOGIST, **te_request_form(expert_id=expert_id))
    assert "expert_id" in refused.value.errors
    assert case.open_tasks() == ["te_request"]
    assert "te_check" not in mine(case, radiologist(expert_id))
    case.complete("te_request", LOCAL_RADIOLOGIST, **te_request_form(expert_id=EXPERT.user_id))
    assert case.open_tasks() == ["te_consent"]
    assert case.data["expert"]["assignable"] is True


@pytest.mark.charter("CH-4.2.1")
@pytest.mark.charter("CH-5.3")
def test_CH4_2_1_a_tele_expert_of_the_site_cannot_read_the_named_experts_file(new_expertise):
    case = new_expertise()
    consent(case)
    with pytest.raises((NotFound, Conflict)):  # told it is someone else's task, never shown its data
        task_data(case.ctx, SITE_EXPERT, case.task_id("te_check", EXPERT))


# --------------------------------------------------------------------------------------------------
# CH-4.2.2 the tele-expert gets the images, the prior imaging and the pertinent information
# --------------------------------------------------------------------------------------------------


@pytest.mark.charter("CH-4.2.2", negative=True)
def test_CH4_2_2_request_without_images_reference_or_information_is_refused(charter_ctx):
    case = Case(charter_ctx, start_instance(charter_ctx, LOCAL_RADIOLOGIST, "teleexpertise", {},
                                            site_id="ch-brest"))
    incomplete = te_request_form()
    for field in ("study_reference", "clinical_context", "question", "expert_id", "patient"):
        del incomplete[field]
    with pytest.raises(FormValidationError) as refused:
        case.complete("te_request", LOCAL_RADIOLOGIST, **incomplete)
    assert {"study_reference", "clinical_context", "question", "expert_id", "patient"} <= set(refused.value.errors)
    with pytest.raises(FormValidationError) as empty:
        case.complete("te_request", LOCAL_RADIOLOGIST,
                      **te_request_form(study_reference="", clinical_context="", expert_id=""))
    assert {"study_reference", "clinical_context", "expert_id"} <= set(empty.value.errors)
    assert case.open_tasks() == ["te_request"]


@pytest.mark.charter("CH-4.2.2")
def test_CH4_2_2_the_expert_sees_the_images_reference_priors_and_clinical_information(new_expertise):
    case = new_expertise()
    consent(case)
    seen = task_data(case.ctx, EXPERT, case.task_id("te_check", EXPERT))
    request = te_request_form()
    for field in ("study_reference", "prior_imaging", "clinical_context", "question", "patient"):
        assert seen[field] == request[field], field


@pytest.mark.charter("CH-4.2.2", negative=True)
def test_CH4_2_2_prior_imaging_must_be_stated(charter_ctx):
    case = Case(charter_ctx, start_instance(charter_ctx, LOCAL_RADIOLOGIST, "teleexpertise", {},
                                            site_id="ch-brest"))
    request = te_request_form()
    del request["prior_imaging"]
    with pytest.raises(FormValidationError) as refused:
        case.complete("te_request", LOCAL_RADIOLOGIST, **request)
    assert "prior_imaging" in refused.value.errors
    assert case.open_tasks() == ["te_request"] and "expert" not in case.data  # nothing sent to an expert


# --------------------------------------------------------------------------------------------------
# CH-3.6 teleexpertise where an interventional or surgical decision is possible
# --------------------------------------------------------------------------------------------------


@pytest.mark.charter("CH-3.6")
@pytest.mark.parametrize("possible", [True, False])
def test_CH3_6_the_request_records_whether_an_interventional_decision_is_possible(new_expertise, possible):
    case = new_expertise(interventional_decision_possible=possible)
    assert case.data["interventional_decision_possible"] is possible
    consent(case)
    seen = task_data(case.ctx, EXPERT, case.task_id("te_check", EXPERT))
    assert seen["interventional_decision_possible"] is possible


@pytest.mark.charter("CH-3.6", negative=True)
def test_CH3_6_a_request_that_does_not_say_whether_a_decision_is_possible_is_refused(charter_ctx):
    case = Case(charter_ctx, start_instance(charter_ctx, LOCAL_RADIOLOGIST, "teleexpertise", {},
                                            site_id="ch-brest"))
    request = te_request_form()
    del request["interventional_decision_possible"]
    with pytest.raises(FormValidationError) as refused:
        case.complete("te_request", LOCAL_RADIOLOGIST, **request)
    assert "interventional_decision_possible" in refused.value.errors
    assert case.open_tasks() == ["te_request"] and "expert" not in case.data


# --------------------------------------------------------------------------------------------------
# CH-4.2.3 completeness check, missing data loop, report and its recipients
# --------------------------------------------------------------------------------------------------


@pytest.mark.charter("CH-4.2.3", negative=True)
def test_CH4_2_3_missing_data_go_back_to_the_local_radiologist_with_what_and_why(new_expertise):
    case = new_expertise()
    consent(case)
    with pytest.raises(FormValidationError) as refused:
        case.complete("te_check", EXPERT, file_complete=False)
    assert refused.value.errors == {"missing_items": "Ce champ est obligatoire.",
                                    "missing_reason": "Ce champ est obligatoire."}
    with pytest.raises(FormValidationError) as no_reason:
        case.complete("te_check", EXPERT, file_complete=False, missing_items="Séquences T1 injectées")
    assert set(no_reason.value.errors) == {"missing_reason"}
    assert case.open_tasks() == ["te_check"] and mine(case, LOCAL_RADIOLOGIST) == []  # nothing went back yet
    case.complete("te_check", EXPERT, file_complete=False, missing_items="Séquences T1 injectées",
                  missing_reason="Rehaussement de la paroi du kyste à évaluer.")
    assert case.open_tasks() == ["te_complete_file"]
    assert mine(case, EXPERT) == [] and mine(case, LOCAL_RADIOLOGIST) == ["te_complete_file"]
    told = task_data(case.ctx, LOCAL_RADIOLOGIST, case.task_id("te_complete_file", LOCAL_RADIOLOGIST))
    assert told["missing_items"] == "Séquences T1 injectées"
    assert told["missing_reason"] == "Rehaussement de la paroi du kyste à évaluer."
    with pytest.raises(FormValidationError):
        case.complete("te_complete_file", LOCAL_RADIOLOGIST, additional_information="")
    case.complete("te_complete_file", LOCAL_RADIOLOGIST, additional_information="IRM rénale du 2026-01-04 jointe.")
    # Back to the same expert, who now sees the additions, and no report before the file is complete.
    assert case.open_tasks() == ["te_check"] and mine(case, EXPERT) == ["te_check"]
    seen = task_data(case.ctx, EXPERT, case.task_id("te_check", EXPERT))
    assert seen["additional_information"] == "IRM rénale du 2026-01-04 jointe."
    case.complete("te_check", EXPERT, file_complete=True)
    assert case.open_tasks() == ["te_report"]
    case.complete("te_report", EXPERT, **REPORT)
    assert case.open_tasks() == ["te_integrate"]
    assert case.data["conclusion"] == "Bosniak I."


@pytest.mark.charter("CH-4.2.3", negative=True)
def test_CH4_2_3_what_is_missing_and_why_cannot_be_left_blank(new_expertise):
    case = new_expertise()
    consent(case)
    with pytest.raises(FormValidationError) as refused:
        case.complete("te_check", EXPERT, file_complete=False, missing_items="", missing_reason="")
    assert {"missing_items", "missing_reason"} <= set(refused.value.errors)
    assert case.open_tasks() == ["te_check"] and "missing_items" not in case.data


@pytest.mark.charter("CH-4.2.3")
@pytest.mark.parametrize(
    ("send_to_requester", "patient_requested", "agreement", "recipients"),
    [
        (False, True, True, ["local_radiologist", "patient"]),
        (True, True, False, ["local_radiologist", "requester"]),
        (False, False, None, ["local_radiologist"]),
        (True, False, None, ["local_radiologist", "requester"]),
    ],
    ids=["patient-with-agreement", "patient-refused-by-local-radiologist", "patient-not-requested",
         "requester-only"],
)
def test_CH4_2_3_report_recipients_patient_only_with_the_local_radiologists_agreement(
        new_expertise, send_to_requester, patient_requested, agreement, recipients):
    case = new_expertise()
    up_to_report(case)
    case.complete("te_report", EXPERT, **{**REPORT, "send_to_requester": send_to_requester,
                                          "patient_requested": patient_requested})
    if agreement is None:
        assert case.open_tasks() == ["te_integrate"]  # nobody is asked: the patient did not ask
    else:
        assert case.open_tasks() == ["te_patient_agreement"]
        assert mine(case, LOCAL_RADIOLOGIST) == ["te_patient_agreement"] and mine(case, EXPERT) == []
        case.complete("te_patient_agreement", LOCAL_RADIOLOGIST, local_radiologist_agrees=agreement)
    assert case.data["distribution"]["recipients"] == recipients
    assert case.open_tasks() == ["te_integrate"]


@pytest.mark.charter("CH-4.2.3")
@pytest.mark.charter("CH-1.2")
def test_CH4_2_3_the_local_radiologist_integrates_the_opinion_which_closes_the_case(new_expertise):
    case = new_expertise()
    up_to_report(case)
    case.complete("te_report", EXPERT, **REPORT)
    assert case.status == "running" and mine(case, LOCAL_RADIOLOGIST) == ["te_integrate"]
    assert mine(case, EXPERT) == [] and mine(case, OTHER_LOCAL_RADIOLOGIST) == []
    with pytest.raises(FormValidationError):
        case.complete("te_integrate", LOCAL_RADIOLOGIST, integrated_in_record=False)
    assert case.status == "running"
    case.complete("te_integrate", LOCAL_RADIOLOGIST, integrated_in_record=True)
    assert case.status == "completed" and case.open_tasks() == []
    assert case.data["local_radiologist_id"] == "dr.local" and case.data["expert_id"] == "rad.region"


# --------------------------------------------------------------------------------------------------
# Answer delay: escalation["teleexpertise_answer"] (shipped P3D)
# --------------------------------------------------------------------------------------------------


@pytest.mark.charter("CH-4.2.3")
def test_CH4_2_3_late_opinion_is_recorded_without_cancelling_the_expert_task(
        new_expertise, charter_ctx, clock):
    case = new_expertise()
    up_to_report(case)
    with charter_ctx.read() as session:
        timer = session.execute(select(Timer).where(Timer.instance_id == case.id)).scalar_one()
    assert timer.spec_name == "te_answer_due"
    assert timer.expression == 'escalation["teleexpertise_answer"]'
    assert (timer.due_at - clock.now()).total_seconds() == 3 * 24 * 3600  # shipped teleexpertise_answer: P3D
    clock.advance(days=3, seconds=-1)
    assert fire_due_timers(charter_ctx).fired == 0
    assert case.open_tasks() == ["te_report"]
    clock.advance(seconds=2)
    assert fire_due_timers(charter_ctx).fired == 1
    assert case.open_tasks() == ["te_report"]  # non-interrupting: the expert goes on, the delay is recorded
    assert mine(case, EXPERT) == ["te_report"]
    with charter_ctx.read() as session:
        fired = session.execute(select(AuditEvent.detail).where(AuditEvent.instance_id == case.id,
                                                                AuditEvent.action == "timer.fired")).scalars().all()
    assert len(fired) == 1 and "te_answer_due" in fired[0]
    case.complete("te_report", EXPERT, **REPORT)
    case.complete("te_integrate", LOCAL_RADIOLOGIST, integrated_in_record=True)
    assert case.status == "completed"


@pytest.mark.charter("CH-4.2.3")
def test_CH4_2_3_an_opinion_integrated_after_the_delay_closes_the_case(new_expertise, charter_ctx, clock):
    case = new_expertise()
    up_to_report(case)
    clock.advance(days=3, seconds=1)
    assert fire_due_timers(charter_ctx).fired == 1
    case.complete("te_report", EXPERT, **REPORT)
    case.complete("te_integrate", LOCAL_RADIOLOGIST, integrated_in_record=True)
    assert case.status == "completed"


@pytest.mark.charter("CH-4.2.3")
def test_CH4_2_3_no_follow_up_when_the_opinion_comes_in_time(new_expertise, charter_ctx, clock):
    case = new_expertise()
    up_to_report(case)
    clock.advance(days=2)
    case.complete("te_report", EXPERT, **REPORT)
    with charter_ctx.read() as session:  # the opinion's delay is gone; only the next step's due time waits
        timers = session.execute(select(Timer.spec_name).where(Timer.instance_id == case.id)).scalars().all()
    assert timers == ["te_integrate_due"]
    clock.advance(days=1)
    assert fire_due_timers(charter_ctx).fired == 0
    assert case.open_tasks() == ["te_integrate"]
