"""Cases changed from outside the forms: cancelled (order cancelled), amended (patient traits corrected)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from engine.domain.actors import Actor
from engine.domain.identity import nir_key
from engine.errors import CharterRefused, Forbidden
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
from engine.store.models import AuditEvent, ProcessInstance, Task, Timer
from forms import FormValidationError
from integrations.dicom.ingest import ingest_file
from tests.integration import dicom_support
from tests.integration.dicom_support import (
    audit_actions,
    check_identity,
    demo_case,
    justify_and_protocol,
    open_tasks,
    rewrite,
    study,
)
from tests.integration.test_engine_services import RADIOLOGIST, REQUESTER, SUBMIT, only_task
from web.cli.demo_data import demo_request


def audit_ok(ctx) -> None:
    with ctx.read() as session:
        assert audit.verify(session)[1] == []


def test_cancelled_case_ends_its_tasks_timers_and_is_audited(deployed):
    case_id = start_instance(deployed, REQUESTER, "engine_flow", {}, site_id="site-a")
    complete_task(deployed, REQUESTER, only_task(deployed, REQUESTER).id, dict(SUBMIT))
    cancel_instance(deployed, RIS, case_id, "order cancelled by the RIS")
    with deployed.read() as session:
        assert session.get(ProcessInstance, case_id).status == "cancelled"
        assert session.execute(select(Timer).where(Timer.instance_id == case_id)).first() is None
        assert set(session.execute(select(Task.status).where(Task.instance_id == case_id)).scalars()) == {
            "completed", "cancelled"}
        assert audit.verify(session)[1] == []
    assert list_tasks(deployed, RADIOLOGIST) == []
    cancel_instance(deployed, RIS, case_id, "twice")  # idempotent


def test_amended_case_data_reaches_the_open_tasks_and_lookup_by_patient_and_accession(deployed):
    case_id = start_instance(deployed, REQUESTER, "engine_flow", {
        "patient": {"birth_name": "DUPONT", "first_names": "Jean", "site_patient_id": "IPP42"},
        "accession_number": "ACC-7"}, site_id="site-a")
    assert cases_for_patient(deployed, "site-a", "IPP42") == [case_id]
    assert cases_for_patient(deployed, "site-b", "IPP42") == []
    assert case_by_accession(deployed, "ACC-7") == case_id
    assert amend_case(deployed, RIS, case_id, {"patient": {"birth_name": "DUPONT-MOREL"}}, "ADT^A08")
    data = case_data(deployed, case_id)
    assert data["patient"] == {"birth_name": "DUPONT-MOREL", "first_names": "Jean", "site_patient_id": "IPP42"}
    with deployed.read() as session:
        assert session.get(ProcessInstance, case_id).patient_name == "DUPONT-MOREL JEAN"


# Charter gates on outside changes, on the shipped telediagnosis diagram (demo cases of the CH de Brest)

dicom_ctx = dicom_support.dicom_ctx  # fixture: the demo directory, the shipped diagrams and demo cases
RIS = Actor("hl7:RIS_BREST@CH_BREST", frozenset({"requester"}), frozenset({"ch-brest"}))
NIR = "2790229123456"
GOOD_INS = f"{NIR}{nir_key(NIR):02d}"
BAD_INS = f"{NIR}{(nir_key(NIR) % 97) + 1:02d}"


def _case_count(ctx) -> int:
    with ctx.read() as session:
        return int(session.execute(select(func.count()).select_from(ProcessInstance)).scalar_one())


def _refusals(ctx, case_id):
    with ctx.read() as session:
        rows = session.execute(select(AuditEvent.detail).where(
            AuditEvent.chain == case_id, AuditEvent.action == "charter.refused").order_by(AuditEvent.seq)).scalars()
        return [json.loads(row) for row in rows]


@pytest.mark.charter("CH-4.1.6", negative=True)
def test_an_identity_amendment_after_the_identity_check_is_refused_traced_and_not_written(dicom_ctx):
    case_id, _ = demo_case(dicom_ctx)  # Jean Quéré: identity checked, exam justified, at the acquisition step
    before = case_data(dicom_ctx, case_id)
    for change in ({"birth_name": "Quéré-Morvan"}, {"birth_date": "1960-09-12"}, {"sex": "F"},
                   {"site_patient_id": "IPP-AUTRE"}):
        with pytest.raises(CharterRefused) as refused:
            amend_case(dicom_ctx, RIS, case_id, {"patient": change}, "ADT^A08")
        assert "l'identité du patient a déjà été vérifiée" in str(refused.value)
        assert refused.value.refusals[0][0] == "CH-4.1.6"
    assert case_data(dicom_ctx, case_id)["patient"] == before["patient"]
    traced = _refusals(dicom_ctx, case_id)
    assert len(traced) == 4 and traced[0]["step"] == "amend" and traced[0]["refusals"][0]["rule"] == "CH-4.1.6"
    assert "case.amended" not in audit_actions(dicom_ctx, case_id)
    audit_ok(dicom_ctx)
    # The RIS repeating what the case already knows changes nothing and is not refused.
    assert amend_case(dicom_ctx, RIS, case_id, {"patient": {"birth_name": "Quéré"}, "modality": "XR"}, "ADT^A08")


@pytest.mark.charter("CH-4.1.2", negative=True)
def test_a_modality_or_indication_amendment_after_the_justification_is_refused(dicom_ctx):
    case_id, _ = demo_case(dicom_ctx)
    before = case_data(dicom_ctx, case_id)
    for change in ({"modality": "CT"}, {"question": "Luxation ?"}, {"requested_exam": "Scanner du poignet"},
                   {"clinical_context": "Chute dans l'escalier."}):
        with pytest.raises(CharterRefused) as refused:
            amend_case(dicom_ctx, RIS, case_id, change, "XO")
        assert "l'examen a déjà été justifié" in str(refused.value) and refused.value.refusals[0][0] == "CH-4.1.2"
    after = case_data(dicom_ctx, case_id)
    assert [after[k] for k in ("modality", "question", "requested_exam", "clinical_context")] == [
        before[k] for k in ("modality", "question", "requested_exam", "clinical_context")]
    assert len(_refusals(dicom_ctx, case_id)) == 4
    # An order reference the case did not have yet may be given (the Study Instance UID the RIS assigns later),
    # but not changed once given: the images would then be matched to another study (CH-4.1.6).
    assert amend_case(dicom_ctx, RIS, case_id, {"study_instance_uid": "1.2.3.4"}, "XO")
    for change in ({"study_instance_uid": "1.2.3.5"}, {"urgency": "vital"}):
        with pytest.raises(CharterRefused):
            amend_case(dicom_ctx, RIS, case_id, change, "XO")
    assert case_data(dicom_ctx, case_id)["study_instance_uid"] == "1.2.3.4"


def test_amendments_before_the_identity_check_are_applied(dicom_ctx):
    case_id, _ = demo_case(dicom_ctx, "LE BIHAN")  # accepted: identity not checked, exam not justified
    assert amend_case(dicom_ctx, RIS, case_id, {"patient": {"birth_name": "Le Bihan-Morvan", "ins": GOOD_INS},
                                                "modality": "MR", "question": "Embolie ?"}, "XO")
    data = case_data(dicom_ctx, case_id)
    assert (data["patient"]["birth_name"], data["patient"]["ins"], data["modality"]) == (
        "Le Bihan-Morvan", GOOD_INS, "MR")
    assert _refusals(dicom_ctx, case_id) == []


@pytest.mark.charter("CH-1.2", negative=True)
def test_a_case_at_the_acquisition_step_cannot_be_cancelled(dicom_ctx):
    case_id, _ = demo_case(dicom_ctx)  # the acquire_images task is open
    with pytest.raises(CharterRefused) as refused:
        cancel_instance(dicom_ctx, RIS, case_id, "commande annulée par le RIS")
    assert "ne peut plus être annulé" in str(refused.value) and refused.value.refusals[0][0] == "CH-1.2"
    with dicom_ctx.read() as session:
        assert session.get(ProcessInstance, case_id).status == "running"
    assert open_tasks(dicom_ctx, case_id) == ["acquire_images"]
    assert _refusals(dicom_ctx, case_id)[0]["step"] == "cancel"
    assert "instance.cancelled" not in audit_actions(dicom_ctx, case_id)


@pytest.mark.charter("CH-1.2", negative=True)
def test_a_case_with_attached_images_cannot_be_cancelled(dicom_ctx, tmp_path, clock):
    case_id, accession = demo_case(dicom_ctx, "LE BIHAN")
    check_identity(dicom_ctx, case_id)
    justify_and_protocol(dicom_ctx, case_id)  # images of the patient come in once the radiologist has decided
    result = ingest_file(dicom_ctx, rewrite(tmp_path, "CT_small.dcm", PatientName="LE BIHAN^NOLWENN",
                                            PatientBirthDate="19790203", PatientSex="F", PatientID="",
                                            AccessionNumber=accession), "ch-brest", "dicom",
                         storage=tmp_path / "dicom", calling_ae="CT_BREST")
    assert study(dicom_ctx, result.study_uid).status == "attached"
    with pytest.raises(CharterRefused):
        cancel_instance(dicom_ctx, RIS, case_id, "commande annulée par le RIS")
    with dicom_ctx.read() as session:
        assert session.get(ProcessInstance, case_id).status == "running"


def test_a_case_before_the_acquisition_step_is_cancelled(dicom_ctx):
    case_id, _ = demo_case(dicom_ctx, "LE BIHAN")
    cancel_instance(dicom_ctx, RIS, case_id, "commande annulée par le RIS")
    with dicom_ctx.read() as session:
        assert session.get(ProcessInstance, case_id).status == "cancelled"


@pytest.mark.charter("CH-4.1.6", negative=True)
@pytest.mark.charter("CH-8.1", negative=True)
def test_an_ins_with_a_wrong_key_is_refused_at_start_and_in_amendments(dicom_ctx):
    requester = Actor("dr.martin", frozenset({"requester"}), frozenset({"ch-brest"}))
    cases = _case_count(dicom_ctx)
    with pytest.raises(FormValidationError) as refused:
        start_instance(dicom_ctx, requester, "telediagnosis", {"patient": {"ins": BAD_INS}}, site_id="ch-brest")
    assert list(refused.value.errors) == ["patient.ins"] and "INS invalide" in refused.value.errors["patient.ins"]
    patient = {**demo_request()["patient"], "ins": BAD_INS}
    with pytest.raises(FormValidationError) as refused:
        start_instance(dicom_ctx, requester, "telediagnosis", {}, site_id="ch-brest",
                       first_task=demo_request(patient=patient))
    assert "patient.ins" in refused.value.errors
    assert _case_count(dicom_ctx) == cases  # nothing half-created
    le_bihan, _ = demo_case(dicom_ctx, "LE BIHAN")
    with pytest.raises(FormValidationError):
        amend_case(dicom_ctx, RIS, le_bihan, {"patient": {"ins": BAD_INS}}, "ADT^A08")
    assert "ins" not in case_data(dicom_ctx, le_bihan)["patient"]
    started = start_instance(dicom_ctx, requester, "telediagnosis", {}, site_id="ch-brest",
                             first_task=demo_request(patient={**patient, "ins": GOOD_INS}))
    assert case_data(dicom_ctx, started)["patient"]["ins"] == GOOD_INS


@pytest.mark.charter("CH-1.2", negative=True)
@pytest.mark.charter("CH-4.1.13", negative=True)
def test_only_the_hospital_systems_amend_or_cancel_and_never_what_the_steps_recorded(deployed):
    """A clinician does not amend or cancel a case from outside its steps (a direct call), and even the RIS cannot
    change who requested, which radiologist, the report or its prognosis."""
    case_id = start_instance(deployed, REQUESTER, "engine_flow", {"patient": {"birth_name": "DUPONT"}},
                             site_id="site-a")
    before = case_data(deployed, case_id)
    with pytest.raises(Forbidden):
        amend_case(deployed, REQUESTER, case_id, {"patient": {"birth_name": "X"}}, "direct call")
    with pytest.raises(Forbidden):
        cancel_instance(deployed, REQUESTER, case_id, "direct call")
    for owned in ({"requester_id": "merm.tech"}, {"radiologist_id": "rad.neighbour"}, {"poor_prognosis": False},
                  {"conclusion": "Normal."}, {"pregnancy_status": "not_pregnant"}):
        with pytest.raises(Forbidden):
            amend_case(deployed, RIS, case_id, owned, "XO")
    assert case_data(deployed, case_id) == before
    with deployed.read() as session:
        assert session.get(ProcessInstance, case_id).status == "running"
