"""Our C-STORE/C-ECHO SCP against real DCMTK peers (echoscu, storescu) on 127.0.0.1, with pydicom's test files
rewritten to a demo case: reception, indexing, matching, the images_received message, refusals (CH-5.1,
CH-4.1.11, CH-4.1.6)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import timedelta

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from sqlalchemy import select

from engine.store.models import InboundMessage
from integrations.dicom.models import DicomInstance
from integrations.dicom.stability import notify_stable_studies
from integrations.dicom.storage import path_of
from tests.integration import dicom_support
from tests.integration.dicom_support import (
    COMPRESSED,
    STORESCU,
    complete_step,
    counts,
    demo_case,
    echoscu,
    for_case,
    open_tasks,
    rewrite,
    stored_files,
    storescu,
    study,
)

dicom_ctx = dicom_support.dicom_ctx  # fixture
scp = dicom_support.scp  # fixture
storage = dicom_support.storage  # fixture

DELAY = 30


@pytest.mark.charter("CH-5.1")
def test_echoscu_verification_and_ae_title_checks(scp):
    assert echoscu(scp.port).returncode == 0
    unknown = echoscu(scp.port, calling="INTRUDER")
    assert unknown.returncode != 0 and "Calling AE Title Not Recognized" in unknown.stderr  # A-ASSOCIATE-RJ
    wrong_called = echoscu(scp.port, called="OTHER")
    assert wrong_called.returncode != 0 and "Called AE Title Not Recognized" in wrong_called.stderr


@pytest.mark.charter("CH-5.1")
@pytest.mark.charter("CH-4.1.11")
def test_storescu_study_is_stored_indexed_attached_and_moves_the_case_on(scp, dicom_ctx, storage, tmp_path,
                                                                          clock):
    case_id, accession = demo_case(dicom_ctx)
    assert open_tasks(dicom_ctx, case_id) == ["acquire_images"]
    uid = generate_uid()
    files = [rewrite(tmp_path / "send", name, study=uid, **for_case(accession))
             for name in ("CT_small.dcm", "MR_small.dcm")]
    sent = storescu(scp.port, *files)
    assert sent.returncode == 0, sent.stderr
    assert counts(dicom_ctx) == (1, 2, 2)
    received = study(dicom_ctx, uid)
    assert (received.status, received.case_id, received.site_id) == ("attached", case_id, "ch-brest")
    with dicom_ctx.read() as session:
        rows = session.execute(select(DicomInstance)).scalars().all()
    for row in rows:  # content-addressed: <storage>/ab/abcdef..., named by the SHA-256 of the Part-10 file
        assert hashlib.sha256(path_of(storage, row.sha256).read_bytes()).hexdigest() == row.sha256
        assert pydicom.dcmread(path_of(storage, row.sha256)).SOPInstanceUID == row.sop_instance_uid
        assert (row.source, row.calling_ae) == ("dicom", "CT_BREST")
    # Not stable yet: nothing is said to the case.
    clock.advance(seconds=DELAY - 1)
    assert notify_stable_studies(dicom_ctx, clock.now(), DELAY).notified == []
    assert open_tasks(dicom_ctx, case_id) == ["acquire_images"]
    clock.advance(seconds=2)
    assert notify_stable_studies(dicom_ctx, clock.now(), DELAY).notified == [uid]
    # The images do not stand for the technologist's attestation (CH-4.1.4): the task stays until it is given.
    assert open_tasks(dicom_ctx, case_id) == ["acquire_images"]
    complete_step(dicom_ctx, case_id, "acquire_images", "merm.leroy", {
        "images_sent": True, "protocol_followed": True, "technical_difficulty": False})
    assert "interpret" in open_tasks(dicom_ctx, case_id)
    with dicom_ctx.read() as session:
        message = session.execute(select(InboundMessage).where(InboundMessage.source == "dicom")).scalar_one()
    assert json.loads(message.payload) == {"study_uid": uid, "series": 2, "instances": 2}
    assert message.status == "delivered"
    assert notify_stable_studies(dicom_ctx, clock.now() + timedelta(hours=1), DELAY).notified == []  # once


@pytest.mark.charter("CH-5.1")
@pytest.mark.parametrize(("name", "option", "syntax"), COMPRESSED, ids=[c[0] for c in COMPRESSED])
def test_compressed_transfer_syntaxes_are_accepted_as_sent(scp, dicom_ctx, storage, tmp_path, name, option,
                                                           syntax):
    _, accession = demo_case(dicom_ctx)
    path = rewrite(tmp_path / "send", name, **for_case(accession))
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == syntax
    sent = storescu(scp.port, path, options=(option,))
    assert sent.returncode == 0, sent.stderr
    with dicom_ctx.read() as session:
        row = session.execute(select(DicomInstance)).scalar_one()
    assert row.transfer_syntax == syntax  # stored as sent: no decompression, no re-encoding
    assert pydicom.dcmread(path_of(storage, row.sha256)).PixelData == pydicom.dcmread(path).PixelData


@pytest.mark.charter("CH-5.1")
def test_a_duplicate_send_is_acknowledged_and_indexed_once(scp, dicom_ctx, storage, tmp_path):
    _, accession = demo_case(dicom_ctx)
    path = rewrite(tmp_path / "send", "CT_small.dcm", **for_case(accession))
    assert storescu(scp.port, path).returncode == 0
    again = storescu(scp.port, path, path)
    assert again.returncode == 0, again.stderr
    assert counts(dicom_ctx) == (1, 1, 1)
    assert len(stored_files(storage)) == 1


@pytest.mark.charter("CH-5.1")
def test_a_truncated_instance_gets_a_failure_status_and_nothing_is_indexed(scp, dicom_ctx, storage, tmp_path,
                                                                           caplog):
    _, accession = demo_case(dicom_ctx)
    # Pixel Data cut to half: the file still parses (DCMTK sends it), but the image is incomplete.
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    cut = tmp_path / "cut.dcm"
    dataset.PixelData = dataset.PixelData[: len(dataset.PixelData) // 2]
    for keyword, value in for_case(accession).items():
        setattr(dataset, keyword, value)
    dataset.save_as(cut, enforce_file_format=True)
    sent = storescu(scp.port, cut, options=("-v",))
    assert sent.returncode != 0 and "Received Store Response (Error: CannotUnderstand)" in sent.stderr  # 0xC000
    assert counts(dicom_ctx) == (0, 0, 0)
    assert stored_files(storage) == []
    assert "fichier tronqué" in caplog.text  # refusals are logged with their reason


@pytest.mark.charter("CH-5.1")
def test_two_modalities_sending_one_study_at_once(scp, dicom_ctx, tmp_path):
    _, accession = demo_case(dicom_ctx)
    uid, series = generate_uid(), [generate_uid(), generate_uid()]
    batches = [[rewrite(tmp_path / f"send{n}", "CT_small.dcm", study=uid, series=series[n], **for_case(accession))
                for _ in range(10)] for n in range(2)]
    dicom_support.require_dcmtk()
    senders = [subprocess.Popen([STORESCU, "-aet", "CT_BREST", "-aec", "TELERAD", "127.0.0.1", str(scp.port),
                                 *map(str, files)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for files in batches]
    for sender in senders:
        _, errors = sender.communicate(timeout=60)
        assert sender.returncode == 0, errors
    assert counts(dicom_ctx) == (1, 2, 20)
    assert study(dicom_ctx, uid).status == "attached"


@pytest.mark.charter("CH-5.1")
def test_an_unknown_calling_ae_cannot_store(scp, dicom_ctx, storage, tmp_path):
    _, accession = demo_case(dicom_ctx)
    sent = storescu(scp.port, rewrite(tmp_path / "send", "CT_small.dcm", **for_case(accession)), calling="PIRATE")
    assert sent.returncode != 0 and "Calling AE Title Not Recognized" in sent.stderr
    assert counts(dicom_ctx) == (0, 0, 0) and stored_files(storage) == []
