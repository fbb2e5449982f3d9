"""What two reviewers got through the first version of the gates, tried again: each path is now refused at
deployment (where a role may stand: engine.runtime.charter_placement) and again at run time (facts only from the
right kind of step, their answers checked, the radiologist's steps his alone)."""

from __future__ import annotations

import json
from datetime import date

import pytest

from engine.domain.actors import Actor
from engine.domain.credentials import RadiologistCredentials
from engine.domain.routing import Radiologist
from engine.errors import CharterRefused
from engine.ports import InMemoryDirectory, SystemClock
from engine.runtime.charter_paths import check_charter
from engine.runtime.definitions import read_library
from engine.services import designer
from engine.services.bootstrap import default_operations
from forms import FormValidationError, default_registry
from tests.workflows.conftest import REQUESTER, TECHNOLOGIST, WORKFLOWS, accept, consent_and_identity
from tests.workflows.test_charter_gates import deploy_defeated, refusals_of
from tests.workflows.test_teleexpertise import EXPERT, LOCAL_RADIOLOGIST, REPORT, consent

DESIGNER = Actor("sophie", frozenset({"process_designer"}))
THROW = '<bpmn:intermediateThrowEvent id="{id}"><bpmn:extensionElements><spiffworkflow:properties>' \
        '<spiffworkflow:property name="charterRole" value="{role}"/></spiffworkflow:properties>' \
        '</bpmn:extensionElements></bpmn:intermediateThrowEvent>'
# The consent and identity steps replaced by two events carrying their roles (reviewer's D1).
ROLES_ON_EVENTS = (
    ('sourceRef="radiologist_profile" targetRef="inform_patient"',
     'sourceRef="radiologist_profile" targetRef="auto_consent"/>'
     + THROW.format(id="auto_consent", role="consent") + THROW.format(id="auto_identity", role="identity_check")
     + '<bpmn:sequenceFlow id="f_auto_1" sourceRef="auto_consent" targetRef="auto_identity"/>'
     + '<bpmn:sequenceFlow id="f_auto_2" sourceRef="auto_identity" targetRef="justify_merge"'),
)


def shipped() -> dict[str, str]:
    return read_library(sorted([*WORKFLOWS.glob("*.bpmn"), *WORKFLOWS.glob("*.dmn")]))


def analyse(files: dict[str, str], process_id: str = "telediagnosis"):
    operations = default_operations(InMemoryDirectory(), SystemClock())
    return {(f.rule, f.element_id) for f in check_charter(files, process_id, operations,
                                                          default_registry().schema).errors}


def edited(*changes: tuple[str, str]) -> dict[str, str]:
    files = shipped()
    for old, new in changes:
        assert files["telediagnosis.bpmn"].count(old) == 1, old
        files["telediagnosis.bpmn"] = files["telediagnosis.bpmn"].replace(old, new)
    return files


def apply(*changes: tuple[str, str]):
    def edit(text: str) -> str:
        for old, new in changes:
            text = text.replace(old, new)
        return text
    return edit


@pytest.mark.charter("CH-4.1.6", negative=True)
@pytest.mark.charter("CH-4.1.7", negative=True)
def test_roles_on_events_are_refused_at_deployment_and_record_nothing_at_run_time(charter_ctx, new_case):
    assert {("CH-4.1.7", "auto_consent"), ("CH-4.1.6", "auto_identity")} <= analyse(edited(*ROLES_ON_EVENTS))
    deploy_defeated(charter_ctx, apply(*ROLES_ON_EVENTS))
    case = new_case()
    rad = accept(case)
    assert case.open_tasks() == ["justify"]  # the events ran; they recorded no consent and no identity check
    case.complete("justify", rad, justification="validate")
    with pytest.raises(CharterRefused) as refused:
        case.complete("choose_protocol", rad, protocol="ct_head_plain")
    assert "CH-4.1.6" in str(refused.value) and "CH-4.1.7" in str(refused.value)


@pytest.mark.charter("CH-4.1.4", negative=True)
def test_a_charter_form_on_an_untagged_step_is_refused_at_deployment():
    files = edited(('<spiffworkflow:property name="charterRole" value="acquisition"/>', ''))
    assert ("CH-4.1.4", "acquire_images") in analyse(files)


@pytest.mark.charter("CH-1.1", negative=True)
def test_a_request_outside_the_two_families_is_refused_at_deployment():
    files = shipped()
    files["telediagnosis.bpmn"] = files["telediagnosis.bpmn"].replace('id="telediagnosis"', 'id="imagerie_express"')
    assert ("CH-1.1", "request") in analyse(files, "imagerie_express")


@pytest.mark.charter("CH-4.1.2", negative=True)
def test_only_the_case_radiologist_justifies_in_the_diagram_and_at_run_time(charter_ctx, new_case):
    move = ('<bpmn:flowNodeRef>justify</bpmn:flowNodeRef>', '')
    to_requester = ('<bpmn:flowNodeRef>inform_patient</bpmn:flowNodeRef>',
                    '<bpmn:flowNodeRef>inform_patient</bpmn:flowNodeRef><bpmn:flowNodeRef>justify</bpmn:flowNodeRef>')
    unassigned = ('<spiffworkflow:property name="assigneeVariable" value="radiologist_id"/>\n          '
                  '<spiffworkflow:property name="charterRole" value="justification"/>',
                  '<spiffworkflow:property name="charterRole" value="justification"/>')
    assert ("CH-4.1.2", "justify") in analyse(edited(move, to_requester, unassigned))
    deploy_defeated(charter_ctx, apply(move, to_requester, unassigned))
    case = new_case()
    accept(case)
    consent_and_identity(case)
    with pytest.raises(CharterRefused) as refused:  # the requester may see the step; he may not take it
        case.complete("justify", REQUESTER, justification="validate")
    assert "seul le radiologue qui a accepté" in str(refused.value)
    assert case.open_tasks() == ["justify"] and refusals_of(charter_ctx, case.id)


@pytest.mark.charter("CH-4.1.6", negative=True)
def test_a_relaxed_identity_form_cannot_pass_an_unchecked_identity(charter_ctx, new_case):
    relaxed = designer.form_schema(charter_ctx, DESIGNER, "td_identity.schema.json")
    relaxed["properties"]["identity_checked"].pop("const")
    key = designer.save_form_schema(charter_ctx, DESIGNER, "td_identity.schema.json", json.dumps(relaxed))
    deploy_defeated(charter_ctx, apply(('"td_identity.schema.json"', f'"{key}"')))
    case = new_case()
    rad = accept(case)
    case.complete("inform_patient", REQUESTER, patient_informed=True, consent="given")
    case.complete("check_identity", TECHNOLOGIST, identity_checked=False, identity_status="qualified",
                  identity_document="id_card")
    case.complete("justify", rad, justification="validate")
    with pytest.raises(CharterRefused) as refused:
        case.complete("choose_protocol", rad, protocol="ct_head_plain")
    assert "CH-4.1.6" in str(refused.value)


@pytest.mark.charter("CH-3.1", negative=True)
@pytest.mark.charter("CH-4.2.3", negative=True)
def test_a_tele_expert_whose_insurance_lapsed_cannot_give_the_opinion(charter_ctx, directory, clock):
    from engine.services.instances import start_instance
    from tests.workflows.conftest import Case
    from tests.workflows.test_teleexpertise import te_request_form

    case = Case(charter_ctx, start_instance(charter_ctx, LOCAL_RADIOLOGIST, "teleexpertise", {}, site_id="ch-brest"))
    case.complete("te_request", LOCAL_RADIOLOGIST, **te_request_form())
    consent(case)
    case.complete("te_check", EXPERT, file_complete=True)
    directory._radiologists[EXPERT.user_id] = Radiologist(
        EXPERT.user_id, "Dr Guillou", "vannes", RadiologistCredentials("10003456786", date(2030, 1, 1),
                                                                        date(2026, 1, 5)))
    clock.advance(days=3)
    with pytest.raises(CharterRefused) as refused:
        case.complete("te_report", EXPERT, **REPORT)
    assert "Assurance RCP expirée" in str(refused.value)
    assert case.open_tasks() == ["te_report"]


@pytest.mark.charter("CH-1.2", negative=True)
@pytest.mark.charter("CH-4.1.7", negative=True)
def test_invisible_characters_are_no_text(new_case):
    case = new_case()
    accept(case)
    with pytest.raises(FormValidationError) as refused:
        case.complete("inform_patient", REQUESTER, patient_informed=True, consent="force_majeure",
                      force_majeure_reason="\u00a0\u200b" * 6)
    assert "force_majeure_reason" in refused.value.errors


@pytest.mark.charter("CH-4.1.3", negative=True)
def test_a_child_gets_a_paediatric_protocol_and_a_pregnant_woman_a_written_reason(new_case):
    child = new_case(patient={"birth_name": "LE ROUX", "first_names": "Maël", "birth_date": "2019-04-02",
                              "sex": "F", "identity_status": "qualified"}, modality="MG",
                     requested_exam="Mammographie", pregnancy_status="not_applicable")
    rad = accept(child)
    consent_and_identity(child)
    child.complete("justify", rad, justification="validate")
    with pytest.raises(FormValidationError) as refused:
        child.complete("choose_protocol", rad, protocol="mg_bilateral")
    assert "pédiatrique" in refused.value.errors["protocol"]
    pregnant = new_case(patient={"birth_name": "LE BRIS", "first_names": "Anne", "birth_date": "1994-05-01",
                                 "sex": "F", "identity_status": "qualified"}, pregnancy_status="pregnant")
    rad = accept(pregnant, "rad.local")
    consent_and_identity(pregnant)
    pregnant.complete("justify", rad, justification="validate")
    with pytest.raises(FormValidationError) as refused:
        pregnant.complete("choose_protocol", rad, protocol="ct_head_plain")
    assert "exposure_justification" in refused.value.errors
    pregnant.complete("choose_protocol", rad, protocol="ct_head_plain",
                      exposure_justification="Traumatisme crânien grave, IRM indisponible la nuit ; tablier plombé.")
    assert pregnant.open_tasks() == ["acquire_images"]


@pytest.mark.charter("CH-3.2", negative=True)
def test_a_radiologist_who_lapsed_before_the_exposure_is_replaced_not_waited_for(charter_ctx, new_case, directory,
                                                                                clock):
    case = new_case()
    rad = accept(case, "rad.local")
    consent_and_identity(case)
    case.complete("justify", rad, justification="validate")
    case.complete("choose_protocol", rad, protocol="ct_head_contrast")
    case.complete("check_contraindications_requester", REQUESTER, allergy_history=False, metformin=False,
                  requester_contraindication=False)
    case.complete("check_contraindications_radiologist", rad, contrast_decision="cleared")
    directory._radiologists["rad.local"] = Radiologist("rad.local", "Dr Le Gall", "brest", RadiologistCredentials(
        "10003456786", date(2030, 1, 1), date(2026, 1, 5)))
    clock.advance(days=1)
    case.complete("attest_physician_presence", TECHNOLOGIST, physician_name="Dr Requester",
                  physician_role="requester", physically_present=True)
    with pytest.raises(CharterRefused) as refused:  # the injection then the acquisition would expose the patient
        case.complete("record_injection", TECHNOLOGIST, product="Iohexol 350", volume_ml=70, lot_number="L2",
                      injected_at="2026-01-06T10:00", adverse_event=False)
    assert "proposé à nouveau" in str(refused.value)
    assert case.open_tasks() == ["accept_case"] and "rad.local" not in case.data["offer"]["candidates"]
