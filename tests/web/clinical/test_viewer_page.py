"""The case's image viewer page through the Flask test client: who gets it (radiologists and tele-experts who may
see the case; everyone else 403), its page-specific CSP (WebAssembly and the decoding worker, nothing more), the
non-diagnostic notice (CH-5.2), the link on the case page, and the viewer's assets."""

from __future__ import annotations

import io
import re
from typing import Any

import pydicom
import pytest

from tests.demo_app import login
from tests.integration import dicom_support
from tests.integration.dicom_support import demo_case, for_case, rewrite

dicom_ctx, app = dicom_support.dicom_ctx, dicom_support.dicom_app  # fixtures

RADIOLOGIST = "dr.legall"  # radiologist and tele-expert, routed the demo case
OUTSIDER = "dr.kerbrat"  # local radiologist of the CH de Morlaix, never involved in the demo case


@pytest.fixture
def case_with_ct(app, dicom_ctx, clock, tmp_path) -> tuple[int, str, str, Any]:
    """(case id, study UID, series UID, the technologist's client) of a CT the technologist uploaded to the demo
    case."""
    case_id, accession = demo_case(dicom_ctx)
    path = rewrite(tmp_path, "CT_small.dcm", **for_case(accession))
    technologist = login(app, dicom_ctx, clock, "merm.leroy")
    answer = technologist.post(f"/cases/{case_id}/dicom", content_type="multipart/form-data",
                               data={"dicom_files": (io.BytesIO(path.read_bytes()), "ct.dcm")})
    assert answer.status_code == 302
    dataset = pydicom.dcmread(path)
    return case_id, str(dataset.StudyInstanceUID), str(dataset.SeriesInstanceUID), technologist


@pytest.mark.charter("CH-5.2")
@pytest.mark.charter("CH-4.1.11")
def test_the_radiologist_gets_the_viewer_under_its_own_csp(app, dicom_ctx, clock, case_with_ct):
    case_id, study_uid, _series, _technologist = case_with_ct
    client = login(app, dicom_ctx, clock, RADIOLOGIST)
    response = client.get(f"/cases/{case_id}/viewer")
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page[:500]
    assert "Visionneuse de consultation : ne remplace pas une console de diagnostic" in page
    assert f'data-studies="{study_uid}"' in page and 'data-dicomweb="/dicomweb"' in page
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self' 'wasm-unsafe-eval';" in csp and csp.endswith("; worker-src 'self'")
    assert "img-src 'self' data: blob:;" in csp  # the tools' SVG cursors
    assert "'unsafe-eval'" not in csp and "'unsafe-inline'" not in csp and "style-src 'self';" in csp
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all('src="' in attributes and not body.strip() for attributes, body in scripts)
    assert '<script type="module" src="/viewer/assets/viewer.js">' in page
    # The case page links to it, in its images section.
    case_page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert f'href="/cases/{case_id}/viewer"' in case_page
    # Every other page keeps the application's CSP.
    assert "wasm-unsafe-eval" not in client.get(f"/cases/{case_id}").headers["Content-Security-Policy"]


@pytest.mark.charter("CH-5.3")
def test_others_get_403_on_the_viewer_and_404_on_the_images(app, dicom_ctx, clock, case_with_ct):
    case_id, study_uid, series_uid, technologist = case_with_ct
    outsider = login(app, dicom_ctx, clock, OUTSIDER)
    refused = outsider.get(f"/cases/{case_id}/viewer")
    assert refused.status_code == 403 and "Visionneuse de consultation" not in refused.get_data(as_text=True)
    assert outsider.get("/cases/999999/viewer").status_code == 403  # the same answer: no existence leak
    assert outsider.get(f"/dicomweb/studies/{study_uid}/series").status_code == 404
    wado = outsider.get(f"/dicomweb/wado?requestType=WADO&studyUID={study_uid}&seriesUID={series_uid}"
                        f"&objectUID=1.2.3&contentType=application%2Fdicom")
    assert wado.status_code == 404
    # The technologist sees the case but is not a reader of images: no viewer, no link.
    assert technologist.get(f"/cases/{case_id}/viewer").status_code == 403
    assert f"/cases/{case_id}/viewer" not in technologist.get(f"/cases/{case_id}").get_data(as_text=True)
    # Signed out: the login page, as for every page.
    anonymous = app.test_client().get(f"/cases/{case_id}/viewer")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_viewer_assets_are_served_with_the_viewer_csp_and_nothing_else(app, dicom_ctx, clock):
    client = login(app, dicom_ctx, clock, RADIOLOGIST)
    bundle = client.get("/viewer/assets/viewer.js")
    assert bundle.status_code == 200, "the viewer is not built: run `make install` (npm run vendor)"
    assert bundle.mimetype == "text/javascript" and "wasm-unsafe-eval" in bundle.headers["Content-Security-Policy"]
    worker = client.get("/viewer/assets/decodeImageFrameWorker.js")
    assert worker.status_code == 200 and "worker-src 'self'" in worker.headers["Content-Security-Policy"]
    codec = client.get("/viewer/assets/charlswasm_decode.wasm")
    assert codec.status_code == 200 and codec.mimetype == "application/wasm" and codec.data[:4] == b"\0asm"
    for name in ("missing.js", "LICENSE.core", ".npm-stamp", "..%2Fbpmn-js%2FLICENSE", "viewer.exe"):
        assert client.get(f"/viewer/assets/{name}").status_code == 404, name
