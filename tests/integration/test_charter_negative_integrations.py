"""Charter violations tried through the integrations, as a misconfigured modality or RIS would: what is not DICOM
or not HL7 is refused in its protocol and leaves nothing behind (CH-5.1), and images of another examination never
move a case on (CH-4.1.11)."""

from __future__ import annotations

import io

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import func, select

from engine.store.models import InboundMessage, ProcessInstance
from integrations.dicom.ingest import ingest_file
from integrations.hl7.mllp import MllpClient
from integrations.hl7.service import Hl7Service
from tests.demo_app import login, web_app
from tests.integration import dicom_support
from tests.integration.dicom_support import (
    audit_actions,
    counts,
    demo_case,
    for_case,
    open_tasks,
    rewrite,
    stored_files,
    study,
)
from tests.integration.hl7_support import demo_hl7_ctx, inbound_rows, msa, sample

dicom_ctx = dicom_support.dicom_ctx  # fixture
OTHER_PATIENT = {"PatientName": "LE^BRIS^ANNA", "PatientBirthDate": "19710203", "PatientID": "IPP-BREST-9",
                 "PatientSex": "F"}


@pytest.fixture
def app(dicom_ctx, database_url, tmp_path):
    return web_app(dicom_ctx, database_url, tmp_path)


@pytest.fixture
def hl7(request, make_ctx, database_url):
    ctx = demo_hl7_ctx(request, make_ctx, database_url)
    service = Hl7Service(ctx, "127.0.0.1", 0, delivery_interval=3600)
    service.start()
    yield ctx, service
    service.stop()


def case_count(ctx) -> int:
    with ctx.read() as session:
        return session.execute(select(func.count()).select_from(ProcessInstance)).scalar_one()


@pytest.mark.charter("CH-5.1", negative=True)
def test_CH5_1_files_that_are_not_dicom_are_refused_by_the_web_upload_and_nothing_is_stored(
        app, dicom_ctx, clock, tmp_path):
    case_id, _ = demo_case(dicom_ctx)  # Jean Quéré, waiting at acquire_images
    before = audit_actions(dicom_ctx, case_id)
    client = login(app, dicom_ctx, clock, "merm.leroy")
    uploads = [(io.BytesIO(b"%PDF-1.7 compte rendu" * 50), "scanner.pdf"),
               (io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\x00" * 400), "capture.png"),
               (io.BytesIO(b"\x00" * 128 + b"DICM" + b"\x00" * 20), "faux.dcm")]
    response = client.post(f"/cases/{case_id}/dicom", data={"dicom_files": uploads},
                           content_type="multipart/form-data", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "0 image(s) enregistrée(s), 3 refusée(s)" in page
    assert counts(dicom_ctx) == (0, 0, 0)
    assert stored_files(tmp_path / "instance" / "dicom") == []
    assert open_tasks(dicom_ctx, case_id) == ["acquire_images"]
    after = audit_actions(dicom_ctx, case_id)
    assert after[:len(before)] == before
    assert set(after[len(before):]) <= {"dicom.uploaded", "case.viewed"}  # the attempt traced, nothing attached


@pytest.mark.charter("CH-5.1", negative=True)
@pytest.mark.parametrize("payload", [b"Demande de scanner pour M. Kermarrec, urgent.",
                                     b"<order><patient>KERMARREC</patient></order>",
                                     b'{"patient": "KERMARREC", "exam": "CT"}'],
                         ids=["free-text", "xml", "json"])
def test_CH5_1_an_order_that_is_not_hl7_gets_ar_over_mllp_and_creates_no_case(hl7, payload):
    ctx, service = hl7
    before = case_count(ctx)
    with MllpClient("127.0.0.1", service.port, timeout=30) as mllp:
        ack = mllp.send(payload)
    assert msa(ack)[0] == "AR"
    [row] = inbound_rows(ctx)
    assert row.status == "rejected" and row.case_id is None
    assert case_count(ctx) == before


@pytest.mark.charter("CH-5.1", negative=True)
def test_CH5_1_an_hl7_message_that_is_not_an_order_creates_no_case(hl7):
    ctx, service = hl7
    before = case_count(ctx)
    with MllpClient("127.0.0.1", service.port, timeout=30) as mllp:
        ack = mllp.send(sample("siu_s12_2.5.hl7"))  # a scheduling message, not an imaging order
    assert msa(ack)[0] == "AR"
    assert case_count(ctx) == before


@pytest.mark.charter("CH-4.1.11", negative=True)
def test_CH4_1_11_images_of_another_accession_number_and_patient_do_not_reach_the_case(
        dicom_ctx, tmp_path, clock):
    case_id, accession = demo_case(dicom_ctx)  # identity checked, waiting at acquire_images
    before = audit_actions(dicom_ctx, case_id)
    uid = generate_uid()
    other = rewrite(tmp_path, "CT_small.dcm", study=uid, **{**OTHER_PATIENT, "AccessionNumber": "ACC-AUTRE-1"})
    result = ingest_file(dicom_ctx, other, "ch-brest", "dicom", storage=tmp_path / "store", calling_ae="CT_BREST")
    assert result.status == "stored"  # kept, but attached to no case
    assert study(dicom_ctx, uid).status != "attached"
    assert open_tasks(dicom_ctx, case_id) == ["acquire_images"]
    assert audit_actions(dicom_ctx, case_id) == before
    with dicom_ctx.read() as session:
        delivered = session.execute(select(InboundMessage.delivered_to).where(
            InboundMessage.message_name == "images_received")).scalars().all()
    assert all(d is None or str(case_id) not in d for d in delivered)
    # The same modality sending the case's own study does reach it.
    own = rewrite(tmp_path, "CT_small.dcm", **for_case(accession))
    assert ingest_file(dicom_ctx, own, "ch-brest", "dicom", storage=tmp_path / "store",
                       calling_ae="CT_BREST").status == "stored"
    assert audit_actions(dicom_ctx, case_id)[len(before):] == ["dicom.study_attached"]
