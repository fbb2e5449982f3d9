"""The engine's hard gates (engine.domain.gates, engine.services.charter_gates) hold whatever the deployed diagram:
a defeated diagram that slipped past deployment checks still cannot expose a patient, inject, release or close a
case against the charter. Each refusal is traced on the case's audit chain and nothing of the refused step is
written."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import func, select

from engine.domain.credentials import RadiologistCredentials
from engine.domain.routing import Radiologist
from engine.errors import CharterRefused
from engine.runtime import Bundle, bundles_from_library
from engine.runtime.definitions import read_library
from engine.services.tasks import list_tasks
from engine.store import audit
from engine.store.models import AuditEvent, ProcessDefinition, ProcessInstance, Timer
from tests.workflows.conftest import (
    REQUESTER,
    TECHNOLOGIST,
    WORKFLOWS,
    accept,
    consent_and_identity,
)

pytestmark = pytest.mark.charter("CH-1.2")


def deploy_defeated(ctx, edit, every_file: bool = False) -> None:
    """Store a changed telediagnosis directly, as if a deployment check had missed it (the runtime gates are the
    last line of defence)."""
    files = read_library(sorted([*WORKFLOWS.glob("*.bpmn"), *WORKFLOWS.glob("*.dmn")]))
    bundle = next(b for b in bundles_from_library(files) if b.process_id == "telediagnosis")
    changed = {name: edit(text) if every_file or name == "telediagnosis.bpmn" else text
               for name, text in bundle.files.items()}
    defeated = Bundle("telediagnosis", changed)
    ctx.runtime.definition(defeated)
    with ctx.write() as session:
        latest = session.execute(select(func.max(ProcessDefinition.version)).where(
            ProcessDefinition.process_id == "telediagnosis")).scalar()
        session.add(ProcessDefinition(process_id="telediagnosis", version=latest + 1, name="défait",
                                      content_hash=defeated.content_hash, source=defeated.to_json(),
                                      deployed_at=ctx.clock.now(), deployed_by="designer"))
        session.commit()


def refusals_of(ctx, case_id: int) -> list[dict]:
    with ctx.read() as session:
        rows = session.execute(select(AuditEvent.detail).where(AuditEvent.chain == case_id,
                                                               AuditEvent.action == "charter.refused")).scalars()
        return [json.loads(detail) for detail in rows]


def version_of(ctx, case_id: int) -> int:
    with ctx.read() as session:
        return session.get(ProcessInstance, case_id).version


def to_protocol(case):
    """Accepted, informed, identified and justified: the radiologist is about to choose `protocol`."""
    rad = accept(case)
    consent_and_identity(case)
    case.complete("justify", rad, justification="validate")
    return rad


NO_CONTRAST_BRANCH = ('protocol_facts["contrast"] == True', 'protocol_facts["contrast"] == "oui"')


@pytest.mark.charter("CH-4.1.10", negative=True)
def test_CH4_1_10_injected_protocol_never_reaches_acquisition_without_presence_even_on_a_defeated_diagram(
        charter_ctx, new_case):
    deploy_defeated(charter_ctx, lambda text: text.replace(*NO_CONTRAST_BRANCH))
    case = new_case()
    rad = to_protocol(case)
    before = version_of(charter_ctx, case.id)
    with pytest.raises(CharterRefused) as refused:
        case.complete("choose_protocol", rad, protocol="ct_head_contrast")
    assert "présence d'un médecin" in str(refused.value) and "CH-4.1.10" in str(refused.value)
    assert case.open_tasks() == ["choose_protocol"] and version_of(charter_ctx, case.id) == before
    assert "protocol" not in case.data  # nothing of the refused step was written
    assert refusals_of(charter_ctx, case.id)
    case.complete("choose_protocol", rad, protocol="ct_head_plain")  # a protocol without injection goes on
    assert case.open_tasks() == ["acquire_images"]


@pytest.mark.charter("CH-4.1.10", negative=True)
def test_CH4_1_10_requester_contraindication_needs_a_documented_joint_decision(new_case):
    case = new_case()
    rad = to_protocol(case)
    case.complete("choose_protocol", rad, protocol="ct_head_contrast")
    case.complete("check_contraindications_requester", REQUESTER, allergy_history=True, metformin=False,
                  requester_contraindication=True, requester_comment="Urticaire après injection iodée en 2019.")
    case.complete("check_contraindications_radiologist", rad, contrast_decision="cleared")
    assert case.open_tasks() == ["decide_jointly"]  # never silently on to the injection
    case.complete("decide_jointly", rad, joint_decision="maintain", requester_consulted="Dr Requester",
                  joint_reason="Urgence vitale, prémédication par antihistaminique.")
    assert case.open_tasks() == ["attest_physician_presence"]


@pytest.mark.charter("CH-4.1.10")
def test_CH4_1_10_joint_decision_to_change_the_protocol_goes_back_to_the_protocol(new_case):
    case = new_case()
    rad = to_protocol(case)
    case.complete("choose_protocol", rad, protocol="ct_head_contrast")
    case.complete("check_contraindications_requester", REQUESTER, allergy_history=True, metformin=False,
                  requester_contraindication=True)
    case.complete("check_contraindications_radiologist", rad, contrast_decision="cleared")
    case.complete("decide_jointly", rad, joint_decision="change_protocol", requester_consulted="Dr Requester",
                  joint_reason="Allergie documentée : scanner sans injection.")
    assert case.open_tasks() == ["choose_protocol"]


@pytest.mark.charter("CH-4.1.3", negative=True)
def test_CH4_1_3_substitution_to_an_ionizing_modality_asks_the_pregnancy_status_again(new_case):
    case = new_case(patient={"birth_name": "LE BRIS", "first_names": "Anne", "birth_date": "1994-05-01",
                             "sex": "F", "identity_status": "qualified"},
                    modality="MR", requested_exam="IRM cérébrale", pregnancy_status="unknown")
    rad = accept(case)
    consent_and_identity(case)
    case.complete("justify", rad, justification="modify", modified_exam="Scanner cérébral",
                  modified_modality="CT")
    case.complete("choose_protocol", rad, protocol="ct_head_plain")
    assert case.open_tasks() == ["state_pregnancy_final"]  # exposure blocked while the status is unknown
    case.complete("state_pregnancy_final", REQUESTER, pregnancy_status="not_pregnant")
    assert case.open_tasks() == ["acquire_images"]


@pytest.mark.charter("CH-4.1.3", negative=True)
def test_CH4_1_3_a_diagram_without_the_final_pregnancy_question_cannot_expose(charter_ctx, new_case):
    deploy_defeated(charter_ctx, lambda text: text.replace('protocol_facts["pregnancy_block"] == True',
                                                           'protocol_facts["pregnancy_block"] == "jamais"'))
    case = new_case(patient={"birth_name": "LE BRIS", "first_names": "Anne", "birth_date": "1994-05-01",
                             "sex": "F", "identity_status": "qualified"},
                    modality="MR", requested_exam="IRM cérébrale", pregnancy_status="unknown")
    rad = accept(case)
    consent_and_identity(case)
    case.complete("justify", rad, justification="modify", modified_exam="Scanner", modified_modality="CT")
    with pytest.raises(CharterRefused) as refused:
        case.complete("choose_protocol", rad, protocol="ct_head_plain")
    assert "grossesse" in str(refused.value) and "CH-4.1.3" in str(refused.value)


@pytest.mark.charter("CH-4.1.9", negative=True)
def test_CH4_1_9_a_protocol_of_another_modality_is_refused(new_case):
    from forms import FormValidationError

    case = new_case()
    rad = to_protocol(case)
    with pytest.raises(FormValidationError) as refused:
        case.complete("choose_protocol", rad, protocol="mr_brain")
    assert "protocol" in refused.value.errors


@pytest.mark.charter("CH-1.2", negative=True)
def test_CH1_2_a_shortcut_to_an_end_event_cannot_close_the_case(charter_ctx, new_case):
    deploy_defeated(charter_ctx, lambda text: text.replace(
        'sourceRef="interpret" targetRef="interpretation_outcome"', 'sourceRef="interpret" targetRef="images_noted"'))
    case = new_case()
    rad = to_protocol(case)
    case.complete("choose_protocol", rad, protocol="ct_head_plain")
    case.complete("acquire_images", TECHNOLOGIST, images_sent=True, protocol_followed=True,
                  technical_difficulty=False)
    with pytest.raises(CharterRefused) as refused:
        case.complete("interpret", rad, outcome="report", findings="Normal.", conclusion="Normal.",
                      certainty="certain", urgent_finding=False, poor_prognosis=False)
    assert "CH-1.2" in str(refused.value)
    assert case.status == "running" and case.open_tasks() == ["interpret"]


@pytest.mark.charter("CH-4.1.13", negative=True)
def test_CH4_1_13_a_poor_prognosis_report_is_not_released_before_the_announcement_plan(charter_ctx, new_case):
    deploy_defeated(charter_ctx, lambda text: text.replace("poor_prognosis == True", 'poor_prognosis == "oui"'))
    case = new_case()
    rad = to_protocol(case)
    case.complete("choose_protocol", rad, protocol="ct_head_plain")
    case.complete("acquire_images", TECHNOLOGIST, images_sent=True, protocol_followed=True,
                  technical_difficulty=False)
    with pytest.raises(CharterRefused) as refused:
        case.complete("interpret", rad, outcome="report", findings="Masse.", conclusion="Tumeur.",
                      certainty="certain", urgent_finding=False, poor_prognosis=True)
    assert "CH-4.1.13" in str(refused.value)
    assert "release" not in case.data


@pytest.mark.charter("CH-3.1", negative=True)
@pytest.mark.charter("CH-3.2", negative=True)
def test_CH3_1_a_radiologist_whose_insurance_lapsed_after_acceptance_cannot_go_on(charter_ctx, new_case, clock,
                                                                                    directory):
    case = new_case()
    rad = accept(case, "rad.local")
    consent_and_identity(case)
    lapsed = RadiologistCredentials("10003456786", date(2030, 1, 1), date(2026, 1, 5))
    directory._radiologists["rad.local"] = Radiologist("rad.local", "Dr Le Gall", "brest", lapsed)
    clock.advance(days=1)  # 6 January: expired the day before (Paris date)
    with pytest.raises(CharterRefused) as refused:
        case.complete("justify", rad, justification="validate")
    assert "CH-3.1" in str(refused.value) and "proposé à nouveau" in str(refused.value)
    assert refusals_of(charter_ctx, case.id)[0]["refusals"][0]["rule"] == "CH-3.1"
    # Replaced through routing: offered again to the eligible radiologists (not him), consent to be given again
    # for the new named radiologist, the reason on the case's audit chain.
    assert case.open_tasks() == ["accept_case"]
    assert list_tasks(charter_ctx, rad) == []  # no longer offered to him
    assert sorted(case.data["offer"]["candidates"]) == ["rad.abroad.ok", "rad.neighbour"]  # tier 1 has nobody left
    with charter_ctx.read() as session:
        rerouted = session.execute(select(AuditEvent.detail).where(
            AuditEvent.chain == case.id, AuditEvent.action == "case.rerouted")).scalars().all()
    assert len(rerouted) == 1 and json.loads(rerouted[0])["radiologist"] == "rad.local"
    accept(case, "rad.neighbour")
    assert case.open_tasks() == ["inform_patient"]  # the patient is told the name of the new radiologist


def test_a_refusal_is_traced_on_a_valid_audit_chain(charter_ctx, new_case):
    deploy_defeated(charter_ctx, lambda text: text.replace(*NO_CONTRAST_BRANCH))
    case = new_case()
    rad = to_protocol(case)
    with pytest.raises(CharterRefused):
        case.complete("choose_protocol", rad, protocol="ct_head_contrast")
    (traced,) = refusals_of(charter_ctx, case.id)
    assert traced["step"] == "choose_protocol" and {r["rule"] for r in traced["refusals"]} == {"CH-4.1.10"}
    with charter_ctx.read() as session:
        checked, problems = audit.verify(session)
    assert checked > 0 and problems == []


@pytest.mark.charter("CH-3.1", negative=True)
def test_CH3_1_replacement_inside_the_contrast_checks_forgets_their_pending_steps(charter_ctx, new_case):
    """The case is taken back to routing while it waits inside a called process (the contrast checks): their
    tasks and timers are dropped, and the case goes on with the new radiologist."""
    from engine.domain.actors import Actor
    from engine.services.reassignment import replace_radiologist

    case = new_case()
    rad = to_protocol(case)
    case.complete("choose_protocol", rad, protocol="ct_head_contrast")
    assert sorted(case.open_tasks()) == ["check_contraindications_radiologist", "check_contraindications_requester"]
    replace_radiologist(charter_ctx, Actor("admin", frozenset({"administrator"}), frozenset()), case.id,
                        "Assurance expirée")
    assert case.open_tasks() == ["accept_case"]
    with charter_ctx.read() as session:  # the timers of the dropped steps are gone with them
        timers = session.execute(select(Timer.spec_name).where(Timer.instance_id == case.id)).scalars().all()
    assert timers == ["accept_timeout"]
    accept(case, "rad.local")
    assert case.open_tasks() == ["inform_patient"]


@pytest.mark.charter("CH-4.1.6", negative=True)
@pytest.mark.charter("CH-4.1.1", negative=True)
def test_a_charter_check_of_a_form_is_refused_and_traced(charter_ctx):
    from engine.services.instances import start_instance
    from forms import FormValidationError
    from tests.workflows.conftest import Case, request_form

    case = Case(charter_ctx, start_instance(charter_ctx, REQUESTER, "telediagnosis", {}, site_id="ch-brest"))
    bad = request_form(clinical_exam_date="2099-01-01")
    bad["patient"] = {**bad["patient"], "ins": "150032912345678"}
    with pytest.raises(FormValidationError) as refused:
        case.complete("request", REQUESTER, **bad)
    assert set(refused.value.errors) == {"patient.ins", "clinical_exam_date"}
    assert case.open_tasks() == ["request"]
    (traced,) = refusals_of(charter_ctx, case.id)
    assert {r["rule"] for r in traced["refusals"]} == {"CH-4.1.6", "CH-4.1.1"}
    assert not any("patient.ins" in r["reason"] or "clinical_exam_date" in r["reason"] for r in traced["refusals"])


def test_a_case_running_on_a_version_from_before_the_roles_finishes_as_it_started(charter_ctx, new_case):
    """Cases started on a version deployed before charter roles existed record no facts; the gates must not hold
    them back at their end (they are migrated on purpose, not stranded)."""
    deploy_defeated(charter_ctx, lambda text: text.replace('name="charterRole"', 'name="formerRole"'), every_file=True)
    case = new_case()
    rad = accept(case)
    consent_and_identity(case)
    case.complete("justify", rad, justification="validate")
    case.complete("choose_protocol", rad, protocol="ct_head_plain")
    case.complete("acquire_images", TECHNOLOGIST, images_sent=True, protocol_followed=True,
                  technical_difficulty=False)
    case.complete("interpret", rad, outcome="report", findings="Normal.", conclusion="Normal.", certainty="certain",
                  urgent_finding=False, poor_prognosis=False)
    case.complete("acknowledge_report", REQUESTER, report_read=True, integrated_in_record=True)
    assert case.status == "completed"
