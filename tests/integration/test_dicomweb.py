"""DICOMweb under /dicomweb with a real client (dicomweb-client from PyPI) against the Flask app served by
Werkzeug on a loopback port: QIDO-RS, WADO-RS (instances, frames, metadata, rendered), WADO-URI, STOW-RS, and
the refusals: another site's radiologist sees nothing, a held study is never served, no credentials get 401, a
read token cannot store, bad keys and UIDs get 400 (CH-5.3, CH-8.1, CH-4.1.11)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid
from werkzeug.serving import make_server

from engine.domain.actors import Actor
from engine.services.accounts import issue_api_token
from integrations.dicom.upload import upload_files
from integrations.dicomweb import audit as dicomweb_audit
from tests.demo_app import login
from tests.integration import dicom_support
from tests.integration.dicom_support import audit_actions, demo_case, for_case, rewrite, study

dicom_ctx = dicom_support.dicom_ctx  # fixture
TECHNOLOGIST = Actor("merm.leroy", frozenset({"technologist"}), frozenset({"ch-brest"}))
# The test files: a single-frame CT, a 3-frame CT made from it (native pixel data, each frame different) and a
# 2-frame RLE-compressed colour image.
FILES = ("CT_small.dcm", "CT_small.dcm", "SC_rgb_rle_2frame.dcm")
STUDY_DATE = "20240110"


def multi_frame(path: Path, frames: int = 3) -> Path:
    """Rewrite a single-frame native file as `frames` frames, frame n holding the pixels plus n."""
    dataset = pydicom.dcmread(path)
    pixels = dataset.pixel_array
    dataset.NumberOfFrames = frames
    dataset.PixelData = b"".join((pixels + n).astype(pixels.dtype).tobytes() for n in range(frames))
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dataset.InstanceNumber = 2
    dataset.save_as(path, enforce_file_format=True)
    return path


@dataclass
class Served:
    url: str
    ctx: object
    app: object
    case_id: int
    accession: str
    study_uid: str
    files: list[Path]
    storage: Path

    def client(self, token: str) -> DICOMwebClient:
        return DICOMwebClient(self.url, headers={"Authorization": f"Bearer {token}"})

    def token(self, username: str, scope: str = "read") -> str:
        return issue_api_token(self.ctx, username, f"dicomweb-{scope}", scope=scope)


@pytest.fixture
def served(dicom_ctx, database_url, tmp_path) -> Iterator[Served]:
    """A demo case (Jean Quéré, CH de Brest) with one attached study of three instances, and the app served on a
    free loopback port."""
    dicomweb_audit.forget()
    case_id, accession = demo_case(dicom_ctx)
    study_uid = generate_uid()
    ct_series = generate_uid()
    files = [rewrite(tmp_path / "src", name, study=study_uid, series=ct_series if name.startswith("CT") else None,
                     **for_case(accession, StudyDate=STUDY_DATE)) for name in FILES]
    multi_frame(files[1])
    storage = tmp_path / "instance" / "dicom"
    summary = upload_files(dicom_ctx, TECHNOLOGIST, case_id, [(p.name, io.BytesIO(p.read_bytes())) for p in files],
                           storage)
    assert summary.stored == len(FILES), summary.french()
    assert study(dicom_ctx, study_uid).status == "attached"
    app = dicom_support.web_app(dicom_ctx, database_url, tmp_path)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_port}/dicomweb", dicom_ctx, app, case_id, accession,
                     study_uid, files, storage)
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_smoke(served):
    client = served.client(served.token("merm.leroy"))
    studies = client.search_for_studies()
    assert len(studies) == 1
