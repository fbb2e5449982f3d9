"""The telediagnosis diagram, driven through the engine services: one scenario per charter rule."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.errors import NotFound
from engine.services.messages import deliver_message
from engine.services.notices import list_notices
from engine.services.tasks import complete_task, list_tasks
from engine.services.timers import fire_due_timers
from engine.store.models import Timer
from forms import FormValidationError
from tests.workflows.conftest import (
    REQUESTER,
    SITE_LEAD,
    TECHNOLOGIST,
    Case,
    accept,
    consent_and_identity,
    radiologist,
    request_form,
)

REPORT = {"outcome": "report", "findings": "Pas d'anomalie.", "conclusion": "Examen normal.",
          "certainty": "certain", "urgent_finding": False, "poor_prognosis": False}


def through_protocol(case, contrast=False, protocol="ct_head_plain"):
    rad = accept(case)
    consent_and_identity(case)
    case.complete("justify", rad, justification="validate")
    case.complete("choose_protocol", rad, protocol=protocol)
    return rad


def acquire(case):
    case.complete("acquire_images", TECHNOLOGIST, images_sent=True, protocol_followed=True,
                  technical_difficulty=False)


def finish(case, rad, **report):
    case.complete("interpret", rad, **{**REPORT, **report})
    case.complete("acknowledge_report", REQUESTER, report_read=True, integrated_in_record=True)


@pytest.mark.charter("CH-4.1.10")
def test_CH4_1_10_scheduled_ct_with_contrast_requires_joint_check_and_physician_presence(new_case):
    case = new_case(requested_exam="Scanner abdominal avec injection")
    rad = through_protocol(case, contrast=True, protocol="ct_abdomen_contrast")
    assert case.open_tasks() == ["check_contraindications_radiologist", "check_contraindications_requester"]
    case.complete("check_contraindications_requester", REQUESTER, allergy_history=False, metformin=False,
                  requester_contraindication=False, renal_function_egfr=85)
    assert case.open_tasks() == ["check_contraindications_radiologist"]  # joint: both must answer
    case.complete("check_contraindications_radiologist", rad, contrast_decision="cleared")
    # The injection cannot be recorded before a named physician's presence is attested.
    assert case.open_tasks() == ["attest_physician_presence"]
    with pytest.raises(FormValidationError) as refused:
        case.complete("attest_physician_presence", TECHNOLOGIST, physician_name="Dr Urgences",
                      physician_role="emergency", physically_present=False)
    assert "physically_present" in refused.value.errors
    case.complete("attest_physician_presence", TECHNOLOGIST, physician_name="Dr Urgences",
                  physician_role="emergency", physically_present=True)
    case.complete("record_injection", TECHNOLOGIST, product="Iohexol 350", volume_ml=80, lot_number="LOT-4471B",
                  injected_at="2026-01-05T09:12", adverse_event=True)
    case.complete("record_adverse_event", REQUESTER, description="Urticaire", severity="mild",
                  treatment="Antihistaminique", handled_by="Dr Urgences")
    assert case.open_tasks() == ["acquire_images"]
    acquire(case)
    finish(case, rad)
    assert case.status == "completed"
    assert case.data["physician_name"] == "Dr Urgences"


@pytest.mark.charter("CH-4.1.10")
def test_CH4_1_10_contraindication_sends_the_radiologist_back_to_the_protocol(new_case):
    case = new_case()
    rad = through_protocol(case, contrast=True, protocol="ct_head_contrast")
    case.complete("check_contraindications_requester", REQUESTER, allergy_history=True, metformin=False,
                  requester_contraindication=True)
    case.complete("check_contraindications_radiologist", rad, contrast_decision="contraindicated")
    assert case.open_tasks() == ["choose_protocol"]
    case.complete("choose_protocol", rad, protocol="ct_head_plain")
    assert case.open_tasks() == ["acquire_images"]


@pytest.mark.charter("CH-4.1.12")
def test_CH4_1_12_urgent_ct_report_due_timer_and_recorded_phone_call(new_case, charter_ctx, clock):
    case = new_case(urgency="urgent")
    rad = through_protocol(case)
    delivery = deliver_message(charter_ctx, "images_received",
                               {"accession_number": case.data["accession_number"]}, {"instances": 32},
                               source="dicom")
    assert delivery.delivered_to == (case.id,)
    assert case.open_tasks() == ["acquire_images"]  # the technologist still attests the acquisition
    acquire(case)
    assert case.open_tasks() == ["interpret"]
    with charter_ctx.read() as session:
        timer = session.execute(select(Timer).where(Timer.instance_id == case.id)).scalar_one()
    assert timer.expression == 'escalation["report_" + urgency]'
    assert (timer.due_at - clock.now()).total_seconds() == 4 * 3600  # shipped report_urgent: PT4H
    clock.advance(hours=4, seconds=1)
    assert fire_due_timers(charter_ctx).fired == 1
    assert case.open_tasks() == ["interpret"]  # non-interrupting: the radiologist goes on, the delay is recorded
    for who in (rad, REQUESTER, SITE_LEAD):  # the delay reaches the inboxes of those who must act
        assert [(n.case_id, n.kind) for n in list_notices(charter_ctx, who)] == [(case.id, "report_overdue")]
    assert list_notices(charter_ctx, TECHNOLOGIST) == []
    case.complete("interpret", rad, **{**REPORT, "urgent_finding": True, "conclusion": "Hématome sous-dural."})
    assert "acknowledge_report" not in case.open_tasks()  # no release before the call is recorded
    with pytest.raises(FormValidationError):
        case.complete("record_phone_call", rad, caller="Dr Le Gall", callee="Dr Requester")
    case.complete("record_phone_call", rad, caller="Dr Le Gall", callee="Dr Requester",
                  called_at="2026-01-05T12:05", summary="Hématome sous-dural aigu, avis neurochirurgical.")
    assert "acknowledge_report" in case.open_tasks()
    assert case.data["release"]["released_by"] == "rad.local"
    assert list_notices(charter_ctx, SITE_LEAD) == []  # the report is written: the notice is resolved


@pytest.mark.charter("CH-4.1.12", negative=True)
def test_CH4_1_12_uncertain_diagnosis_requires_a_complementary_strategy(new_case):
    case = new_case()
    rad = through_protocol(case)
    acquire(case)
    with pytest.raises(FormValidationError) as refused:
        case.complete("interpret", rad, **{**REPORT, "certainty": "uncertain"})
    assert refused.value.errors == {"complementary_strategy": "Ce champ est obligatoire."}
    assert case.open_tasks() == ["interpret"] and "release" not in case.data  # nothing released
    finish(case, rad, certainty="uncertain", complementary_strategy="IRM à 48 h.")
    assert case.status == "completed"


@pytest.mark.charter("CH-4.1.3")
def test_CH4_1_3_child_ct_is_flagged_and_substituted_by_ultrasound(new_case):
    case = new_case(patient={**request_form()["patient"], "birth_date": "2018-06-01"},
                    requested_exam="Scanner abdominal", question="Appendicite ?")
    assert case.data["facts"]["minor"] is True
    assert "mineur" in case.data["radioprotection_alert"]
    assert case.data["substitution_candidates"] == "US, MR"
    rad = accept(case)
    consent_and_identity(case)
    case.complete("justify", rad, justification="substitute", substitute_modality="US")
    case.complete("choose_protocol", rad, protocol="us_abdomen")
    assert case.open_tasks() == ["acquire_images"]
    assert case.data["substitute_modality"] == "US"


@pytest.mark.charter("CH-4.1.3")
def test_CH4_1_3_woman_of_childbearing_age_without_pregnancy_status_is_blocked(new_case):
    case = new_case(patient={**request_form()["patient"], "sex": "F", "birth_date": "1995-04-10"},
                    pregnancy_status="unknown")
    assert case.open_tasks() == ["state_pregnancy"]  # no offer to any radiologist yet
    assert list_tasks(case.ctx, radiologist("rad.local")) == []
    case.complete("state_pregnancy", REQUESTER, pregnancy_status="not_pregnant")
    assert case.open_tasks() == ["accept_case"]
    assert case.data["pregnancy_block"] is False


@pytest.mark.charter("CH-4.1.14")
def test_CH4_1_14_refusal_for_insufficient_quality_then_convention_fallback(new_case):
    case = new_case()
    rad = through_protocol(case)
    acquire(case)
    case.complete("interpret", rad, outcome="refuse")
    assert case.open_tasks() == ["state_refusal"]
    with pytest.raises(FormValidationError):
        case.complete("state_refusal", rad, refusal_reason="blurry", refusal_detail="x", refusal_follow_up="x")
    case.complete("state_refusal", rad, refusal_reason="insufficient_quality",
                  refusal_detail="Artéfacts de mouvement majeurs.", refusal_follow_up="convention_fallback")
    case.complete("apply_fallback", REQUESTER, fallback_applied="Transfert au CHU pour scanner.")
    assert case.status == "completed"
    assert case.data["refusal_reason"] == "insufficient_quality"


@pytest.mark.charter("CH-4.1.14")
def test_CH4_1_14_refusal_at_justification_with_site_visit(new_case):
    case = new_case()
    rad = accept(case)
    consent_and_identity(case)
    case.complete("justify", rad, justification="refuse")
    case.complete("state_refusal", rad, refusal_reason="insufficient_information",
                  refusal_detail="Indication non précisée.", refusal_follow_up="site_visit")
    case.complete("plan_site_visit", rad, visit_planned_at="2026-01-06T08:30")
    assert case.status == "completed"


@pytest.mark.charter("CH-4.1.13")
def test_CH4_1_13_poor_prognosis_report_waits_for_the_announcement_plan(new_case):
    case = new_case()
    rad = through_protocol(case)
    acquire(case)
    case.complete("interpret", rad, **{**REPORT, "poor_prognosis": True, "conclusion": "Lésion suspecte."})
    assert case.open_tasks() == ["propose_announcement"]
    assert "release" not in case.data
    case.complete("propose_announcement", rad, announcement_proposal="Annonce par le médecin traitant demain.")
    assert case.open_tasks() == ["confirm_announcement_plan"]
    case.complete("confirm_announcement_plan", REQUESTER, plan_confirmed=True, announcer="Dr Requester",
                  planned_at="2026-01-06T10:00")
    assert case.open_tasks() == ["acknowledge_report"]
    assert case.data["release"]["released_by"] == "rad.local"


@pytest.mark.charter("CH-4.1.7")
def test_CH4_1_7_force_majeure_without_consent_must_be_stated(new_case):
    case = new_case(urgency="vital")
    accept(case)
    with pytest.raises(FormValidationError) as refused:
        case.complete("inform_patient", REQUESTER, patient_informed=True, consent="force_majeure")
    assert "force_majeure_reason" in refused.value.errors
    case.complete("inform_patient", REQUESTER, patient_informed=True, consent="force_majeure",
                  force_majeure_reason="Patient inconscient, pas de proche joignable.")
    assert case.open_tasks() == ["check_identity"]


@pytest.mark.charter("CH-4.1.7")
def test_CH4_1_7_patient_information_names_the_radiologist_and_his_status(new_case):
    case = new_case()
    accept(case, "rad.local")
    assert case.data["radiologist"]["name"] == "Dr Le Gall"
    assert case.data["radiologist"]["extraterritorial"] is False


@pytest.mark.charter("CH-3.2")
def test_CH3_2_extraterritorial_radiologist_without_documents_is_not_offered_the_case(new_case):
    case = new_case()
    assert case.data["offer"]["candidates"] == ["rad.local"]  # not rad.abroad (no documents), not rad.expired
    assert list_tasks(case.ctx, radiologist("rad.abroad")) == []
    with pytest.raises(NotFound):
        complete_task(case.ctx, radiologist("rad.abroad"), case.task_id("accept_case", radiologist("rad.local")),
                      {"acceptance": "accept"})


@pytest.mark.charter("CH-3.2")
def test_CH3_2_extraterritorial_radiologist_with_documents_is_named_with_non_reimbursement(new_case):
    case = new_case()
    case.complete("accept_case", radiologist("rad.local"), acceptance="decline", decline_reason="Indisponible")
    # Nobody left at tier 1: tier 2 is offered at once, without waiting for the timer.
    assert case.open_tasks() == ["accept_case"]
    assert case.data["offer"]["tier"] == 2
    assert sorted(case.data["offer"]["candidates"]) == ["rad.abroad.ok", "rad.neighbour"]
    case.complete("accept_case", radiologist("rad.abroad.ok"), acceptance="accept")
    profile = case.data["radiologist"]
    assert profile["extraterritorial"] is True and profile["not_reimbursed"] is True
    assert "assurance maladie" in profile["notice"]


@pytest.mark.charter("CH-3.1")
def test_CH3_1_radiologist_with_expired_insurance_is_not_offered(new_case):
    case = new_case()
    assert "rad.expired" not in case.data["offer"]["candidates"]
    assert list_tasks(case.ctx, radiologist("rad.expired")) == []


@pytest.mark.charter("CH-3.3")
@pytest.mark.charter("CH-5.5")
def test_CH3_3_case_moves_to_the_next_tier_only_when_nobody_accepts_in_time(new_case, charter_ctx, clock):
    case = new_case()
    assert case.data["offer"] == {"tier": 1, "candidates": ["rad.local"], "exhausted": False,
                                  "setting": "accept_tier1"}
    clock.advance(minutes=14)
    assert fire_due_timers(charter_ctx).fired == 0
    assert list_tasks(charter_ctx, radiologist("rad.neighbour")) == []
    clock.advance(minutes=2)  # shipped accept_tier1: PT15M
    assert fire_due_timers(charter_ctx).fired == 1
    offer = case.data["offer"]
    assert offer["tier"] == 2 and sorted(offer["candidates"]) == ["rad.abroad.ok", "rad.neighbour"]
    assert list_tasks(charter_ctx, radiologist("rad.local")) == []
    clock.advance(minutes=16)
    fire_due_timers(charter_ctx)
    assert case.data["offer"]["candidates"] == ["rad.region"]
    clock.advance(minutes=31)
    fire_due_timers(charter_ctx)
    assert case.data["offer"] == {"tier": 4, "candidates": ["rad.company"], "exhausted": True,
                                  "setting": "accept_tier4"}
    clock.advance(minutes=31)
    fire_due_timers(charter_ctx)
    assert case.open_tasks() == ["no_radiologist_alert"]  # no tier left: the site's medical lead is alerted
    assert [t for t in list_tasks(charter_ctx, REQUESTER) if t.instance_id == case.id] == []
    notices = list_notices(charter_ctx, SITE_LEAD)
    assert [(n.case_id, n.kind) for n in notices] == [(case.id, "no_radiologist")]
    assert list_notices(charter_ctx, Actor("admin", frozenset({"administrator"}), frozenset()))[0].case_id == case.id
    assert list_notices(charter_ctx, REQUESTER) == []
    with charter_ctx.read() as session:
        due = session.execute(select(Timer).where(Timer.instance_id == case.id)).scalar_one()
    assert due.setting == "no_radiologist_alert" and (due.due_at - clock.now()).total_seconds() == 15 * 60
    clock.advance(minutes=16)
    assert fire_due_timers(charter_ctx).fired == 1  # the reminder: the alert stays open and is raised again
    assert case.open_tasks() == ["no_radiologist_alert"] and len(list_notices(charter_ctx, SITE_LEAD)) == 2
    with pytest.raises(FormValidationError):
        case.complete("no_radiologist_alert", SITE_LEAD, action_taken="Radiologue d'astreinte joint.")
    case.complete("no_radiologist_alert", SITE_LEAD, alert_outcome="retry",
                  action_taken="Radiologue d'astreinte joint par téléphone.")
    assert case.data["offer"]["tier"] == 1 and case.open_tasks() == ["accept_case"]
    assert list_notices(charter_ctx, SITE_LEAD) == []  # handled: the notices are resolved


@pytest.mark.charter("CH-3.3")
@pytest.mark.charter("CH-1.2")
def test_CH3_3_no_radiologist_left_can_be_closed_as_handled_locally_with_its_reason(new_case, charter_ctx, clock):
    case = new_case()
    for minutes in (16, 16, 31, 31):
        clock.advance(minutes=minutes)
        fire_due_timers(charter_ctx)
    assert case.open_tasks() == ["no_radiologist_alert"]
    case.complete("no_radiologist_alert", SITE_LEAD, alert_outcome="handled_locally",
                  action_taken="Patient transféré au CHU de Brest, scanner réalisé sur place.")
    assert case.status == "completed" and case.open_tasks() == []


@pytest.mark.charter("CH-2.1", negative=True)
def test_CH2_1_local_radiologist_on_duty_requires_a_reason(new_case, charter_ctx):
    from engine.services.instances import start_instance

    case_id = start_instance(charter_ctx, REQUESTER, "telediagnosis", {}, site_id="ch-brest")
    task = [t for t in list_tasks(charter_ctx, REQUESTER) if t.instance_id == case_id][0]
    with pytest.raises(FormValidationError) as refused:
        complete_task(charter_ctx, REQUESTER, task.id, request_form(local_radiologist_on_duty=True))
    assert "teleradiology_reason" in refused.value.errors
    case = Case(charter_ctx, case_id)
    assert case.open_tasks() == ["request"] and "offer" not in case.data  # offered to no radiologist
    complete_task(charter_ctx, REQUESTER, task.id, request_form(
        local_radiologist_on_duty=True, teleradiology_reason="Radiologue de garde mobilisé au bloc."))


@pytest.mark.charter("CH-4.1.1", negative=True)
@pytest.mark.charter("CH-4.1.8", negative=True)
def test_CH4_1_1_and_CH4_1_8_request_needs_attested_clinical_exam_and_content(charter_ctx):
    from engine.services.instances import start_instance

    case_id = start_instance(charter_ctx, REQUESTER, "telediagnosis", {}, site_id="ch-brest")
    task = [t for t in list_tasks(charter_ctx, REQUESTER) if t.instance_id == case_id][0]
    incomplete = request_form(clinical_exam_done=False)
    del incomplete["question"], incomplete["clinical_exam_date"]
    with pytest.raises(FormValidationError) as refused:
        complete_task(charter_ctx, REQUESTER, task.id, incomplete)
    assert {"clinical_exam_done", "clinical_exam_date", "question"} <= set(refused.value.errors)
    case = Case(charter_ctx, case_id)
    assert case.open_tasks() == ["request"] and "question" not in case.data and "offer" not in case.data


@pytest.mark.charter("CH-4.1.2")
@pytest.mark.charter("CH-4.1.5")
def test_CH4_1_2_request_sent_back_for_more_information_and_resubmitted(new_case):
    case = new_case()
    rad = accept(case)
    consent_and_identity(case)
    case.complete("justify", rad, justification="more_info", question_to_requester="Traitement anticoagulant ?")
    assert case.open_tasks() == ["provide_information"]
    case.complete("provide_information", REQUESTER, information="Apixaban 5 mg x2.")
    assert case.open_tasks() == ["justify"]
    case.complete("justify", rad, justification="modify", modified_exam="Scanner cérébral sans injection")
    assert case.open_tasks() == ["choose_protocol"]
    assert case.data["information"] == "Apixaban 5 mg x2."


@pytest.mark.charter("CH-4.1.9")
def test_CH4_1_9_only_the_assigned_radiologist_chooses_the_protocol_from_the_list(new_case):
    case = new_case()
    rad = accept(case)
    consent_and_identity(case)
    case.complete("justify", rad, justification="validate")
    other = radiologist("rad.neighbour")
    assert [t for t in list_tasks(case.ctx, other) if t.instance_id == case.id] == []
    with pytest.raises(FormValidationError):
        case.complete("choose_protocol", rad, protocol="my_own_protocol")
    case.complete("choose_protocol", rad, protocol="ct_head_plain")


@pytest.mark.charter("CH-4.1.6")
def test_CH4_1_6_identity_is_checked_before_acquisition(new_case):
    case = new_case()
    rad = accept(case)
    case.complete("inform_patient", REQUESTER, patient_informed=True, consent="given")
    assert case.open_tasks() == ["check_identity"]
    with pytest.raises(FormValidationError):
        case.complete("check_identity", TECHNOLOGIST, identity_checked=False, identity_status="qualified",
                      identity_document="id_card")
    case.complete("check_identity", TECHNOLOGIST, identity_checked=True, identity_status="provisional",
                  identity_document="none")
    case.complete("justify", rad, justification="validate")
    case.complete("choose_protocol", rad, protocol="ct_head_plain")
    assert case.open_tasks() == ["acquire_images"]


@pytest.mark.charter("CH-4.1.4")
def test_CH4_1_4_technical_difficulty_is_reported_to_the_radiologist(new_case):
    case = new_case()
    rad = through_protocol(case)
    case.complete("acquire_images", TECHNOLOGIST, images_sent=True, protocol_followed=True,
                  technical_difficulty=True, difficulty_description="Patient agité, coupes bougées.")
    assert case.open_tasks() == ["review_difficulty"]
    case.complete("review_difficulty", rad, difficulty_acknowledged=True)
    assert case.open_tasks() == ["interpret"]


@pytest.mark.charter("CH-4.1.11", negative=True)
@pytest.mark.charter("CH-5.1")
def test_CH4_1_11_images_received_message_moves_the_case_only_for_its_accession_number(new_case, charter_ctx):
    case = new_case()
    through_protocol(case)
    wrong = deliver_message(charter_ctx, "images_received", {"accession_number": "OTHER"}, {}, source="dicom")
    assert not wrong.delivered and case.open_tasks() == ["acquire_images"]
    deliver_message(charter_ctx, "images_received", {"accession_number": case.data["accession_number"]}, {},
                    source="dicom")
    assert case.open_tasks() == ["acquire_images"]
    acquire(case)
    assert case.open_tasks() == ["interpret"]


@pytest.mark.charter("CH-4.1.4", negative=True)
def test_CH4_1_4_images_by_dicom_do_not_skip_the_technologists_attestation(new_case, charter_ctx):
    case = new_case()
    through_protocol(case)
    deliver_message(charter_ctx, "images_received", {"accession_number": case.data["accession_number"]},
                    {"instances": 12}, source="dicom")
    assert case.open_tasks() == ["acquire_images"]
    with pytest.raises(FormValidationError):
        case.complete("acquire_images", TECHNOLOGIST, images_sent=True, protocol_followed=False,
                      technical_difficulty=False)
    case.complete("acquire_images", TECHNOLOGIST, images_sent=True, protocol_followed=True,
                  technical_difficulty=True, difficulty_description="Patient agité, artefacts de mouvement.")
    assert case.open_tasks() == ["review_difficulty"]


@pytest.mark.charter("CH-1.2")
@pytest.mark.charter("CH-4.1.15", negative=True)
def test_CH1_2_images_alone_never_close_a_case_and_the_report_is_acknowledged(new_case, charter_ctx):
    case = new_case()
    rad = through_protocol(case)
    deliver_message(charter_ctx, "images_received", {"accession_number": case.data["accession_number"]}, {})
    assert case.status == "running" and case.open_tasks() == ["acquire_images"]
    acquire(case)
    assert case.status == "running" and case.open_tasks() == ["interpret"]
    case.complete("interpret", rad, **REPORT)
    assert case.status == "running" and case.open_tasks() == ["acknowledge_report"]
    with pytest.raises(FormValidationError):
        case.complete("acknowledge_report", REQUESTER, report_read=True, integrated_in_record=False)
    assert case.status == "running" and case.open_tasks() == ["acknowledge_report"]
    case.complete("acknowledge_report", REQUESTER, report_read=True, integrated_in_record=True)
    assert case.status == "completed"
    assert case.data["requester_id"] == "dr.requester" and case.data["radiologist_id"] == "rad.local"


@pytest.mark.charter("CH-5.5")
@pytest.mark.charter("CH-3.3")
def test_CH5_5_out_of_hours_the_on_call_radiologist_is_offered_the_case_first(make_ctx, clock):
    from datetime import UTC, datetime

    from engine.domain.actors import Actor
    from engine.domain.oncall import OnCallSlot
    from engine.ports import InMemoryDirectory
    from engine.services.bootstrap import default_operations
    from engine.services.definitions import deploy_library
    from forms import default_registry
    from tests.workflows.conftest import CONVENTION, RADIOLOGISTS, SITE, TERRITORIES, WORKFLOWS, Case

    clock.set(datetime(2026, 1, 10, 1, 10, tzinfo=UTC))  # Saturday night
    slot = OnCallSlot("brest", "rad.neighbour", datetime(2026, 1, 9, 17, 30, tzinfo=UTC),
                      datetime(2026, 1, 12, 7, 0, tzinfo=UTC))
    directory = InMemoryDirectory([SITE], TERRITORIES, [CONVENTION], RADIOLOGISTS, [slot])
    ctx = make_ctx(operations=default_operations(directory, clock), forms=default_registry(), escalation=None)
    deploy_library(ctx, Actor("designer"), WORKFLOWS)
    from engine.services.instances import start_instance

    case = Case(ctx, start_instance(ctx, REQUESTER, "telediagnosis", {}, site_id="ch-brest",
                                    first_task=request_form(urgency="vital")))
    assert case.data["offer"] == {"tier": 0, "candidates": ["rad.neighbour"], "exhausted": False,
                                  "setting": "accept_oncall"}
    assert list_tasks(ctx, radiologist("rad.local")) == []
    clock.advance(minutes=11)  # shipped accept_oncall: PT10M
    fire_due_timers(ctx)
    assert case.data["offer"]["tier"] == 1 and case.data["offer"]["candidates"] == ["rad.local"]
