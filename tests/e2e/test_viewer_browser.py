"""The case's image viewer in Chromium (issue 18, item 3): a CT sent over DICOM (DCMTK's storescu) to the demo case
of Jean Quéré, and an earlier CT of the same patient, are opened by the radiologist in the viewer of the case page
(Cornerstone3D reading Telerad's DICOMweb with the session cookie): the image is drawn, a window preset changes
the pixels, scrolling changes the image shown, the earlier study is beside it; no console error and no CSP report.
A radiologist of another site gets 403 on the viewer and 404 on the DICOMweb addresses. The demo's own head CT
case (`telerad demo`, integrations.dicom.demo_images) opens with its 40 slices and last year's prior beside it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from integrations.dicom.demo_images import CURRENT_DESCRIPTION, PRIOR_DESCRIPTION, SLICES
from tests.e2e.conftest import Server

SCP_LINE = re.compile(r"DICOM SCP (\S+) listening on 127\.0\.0\.1:(\d+)")
PATIENT = {"PatientName": "QUERE^JEAN", "PatientBirthDate": "19600921", "PatientID": "IPP-BREST-1", "PatientSex": "M"}
RADIOLOGIST = "dr.legall"
OUTSIDER = "dr.kerbrat"  # local radiologist of the CH de Morlaix, never involved in the demo case
# What the viewer's canvas shows: the sum, spread and a few samples of its grey levels (read in the page).
CANVAS_STATS = """pane => {
  const canvas = document.querySelector(`[data-pane="${pane}"] [data-viewport] canvas`);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
  let sum = 0, sumSq = 0, n = 0;
  for (let i = 0; i < data.length; i += 4) { const v = data[i]; sum += v; sumSq += v * v; n += 1; }
  const mean = sum / n;
  return { width: canvas.width, height: canvas.height, mean, variance: sumSq / n - mean * mean,
           digest: Array.from({ length: 64 }, (_, k) => data[Math.floor((k * data.length) / 256) * 4]).join(',') };
}"""


def _dicom_listener(server: Server) -> tuple[str, int]:
    """(called AE title, port) of the server's DICOM SCP, as it logged them at start (TELERAD_DICOM_PORT=0)."""
    found = SCP_LINE.search(server.log_path.read_text(encoding="utf-8", errors="replace"))
    assert found, f"the server logged no DICOM SCP listening:\n{server.log_tail()}"
    return found.group(1), int(found.group(2))


def _ct_series(folder: Path, accession: str, slices: int, study_date: str, description: str) -> list[Path]:
    """`slices` instances of one new CT series built from pydicom's CT_small.dcm, each slice's pixels shifted so
    that the slices differ, numbered 1..slices."""
    import numpy as np
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    study, series = generate_uid(), generate_uid()
    paths = []
    for number in range(1, slices + 1):
        dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
        pixels = np.roll(dataset.pixel_array, 24 * number, axis=1)
        dataset.PixelData = pixels.astype(dataset.pixel_array.dtype).tobytes()
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study, series
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        dataset.InstanceNumber = number
        dataset.ImagePositionPatient = [0.0, 0.0, float(number) * 5.0]
        dataset.StudyDate = dataset.SeriesDate = study_date
        dataset.StudyDescription = dataset.SeriesDescription = description
        dataset.AccessionNumber = accession
        for keyword, value in PATIENT.items():
            setattr(dataset, keyword, value)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{dataset.SOPInstanceUID}.dcm"
        dataset.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _demo_case(page: Any) -> tuple[int, str]:
    """(case id, accession number) of the demo telediagnosis of Jean Quéré, from the radiologist's list of cases
    and the case page."""
    from playwright.sync_api import expect

    page.goto("/cases?q=Quéré")
    link = page.locator("tbody tr").filter(has_text="Télédiagnostic").filter(
        has_text=re.compile("Quéré", re.I)).locator('a[href^="/cases/"]').first
    expect(link).to_have_count(1)
    case_id = int(link.get_attribute("href").rsplit("/", 1)[1])
    page.goto(f"/cases/{case_id}")
    accession = page.locator("#patient-banner span", has_text="n° d’accession")
    expect(accession).to_have_count(1)
    return case_id, accession.inner_text().split()[-1]


def _study_of(path: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)


def _stats(page: Any, pane: str = "current") -> dict[str, Any]:
    return dict(page.evaluate(CANVAS_STATS, pane))


def _stats_once_redrawn(page: Any, before: dict[str, Any], pane: str = "current") -> dict[str, Any]:
    """The canvas after a change asked of the viewer: Cornerstone draws on the next animation frame, after the
    attribute the test waited for, so the pixels are read until they differ from `before` (at most 5 s; the caller
    asserts that they did)."""
    stats = _stats(page, pane)
    for _ in range(50):
        if stats["digest"] != before["digest"]:
            break
        page.wait_for_timeout(100)
        stats = _stats(page, pane)
    return stats


@pytest.mark.charter("CH-4.1.11")
@pytest.mark.charter("CH-5.2")
def test_the_radiologist_views_a_ct_with_its_prior_and_an_outsider_gets_nothing(login, server, shoot, browser_log,
                                                                                tmp_path):
    from playwright.sync_api import expect

    from tests.integration.dicom_support import rewrite, storescu

    start = browser_log.mark()
    page = login(RADIOLOGIST)
    case_id, accession = _demo_case(page)
    current = _ct_series(tmp_path / "current", accession, 3, "20250610", "TDM cerebrale")
    prior = _ct_series(tmp_path / "prior", accession, 2, "20240115", "TDM cerebrale ancienne")
    # A JPEG-LS compressed series in the current study, sent as stored (DCMTK proposes JPEG-LS lossless).
    compressed = rewrite(tmp_path / "compressed", "MR_small_jpeg_ls_lossless.dcm", study=_study_of(current[0]),
                         AccessionNumber=accession, StudyDate="20250610", SeriesNumber=7,
                         SeriesDescription="IRM compressee", StudyDescription="TDM cerebrale", **PATIENT)
    called, port = _dicom_listener(server)
    for files, options in (([*current, *prior], ()), ([compressed], ("-xt",))):
        sent = storescu(port, *files, options=options, calling="CT_BREST", called=called)  # the demo's CT, Brest
        assert sent.returncode == 0, f"storescu failed:\n{sent.stdout}\n{sent.stderr}\n{server.log_tail()}"

    # The case page links to the viewer once the images are attached (stored as they arrive: no waiting).
    page.goto(f"/cases/{case_id}")
    page.locator("#open-viewer").click()
    expect(page).to_have_url(server.url(f"/cases/{case_id}/viewer"))
    expect(page.locator("#viewer-not-diagnostic")).to_have_text(
        "Visionneuse de consultation : ne remplace pas une console de diagnostic")
    viewer = page.locator("#viewer")
    expect(viewer).to_have_attribute("data-state", "ready")
    current_viewport = page.locator('[data-pane="current"] [data-viewport]')
    prior_viewport = page.locator('[data-pane="prior"] [data-viewport]')
    expect(current_viewport).to_have_attribute("data-rendered", "true")
    expect(current_viewport).to_have_attribute("data-images", "3")
    expect(prior_viewport).to_have_attribute("data-rendered", "true")
    expect(prior_viewport).to_have_attribute("data-images", "2")
    # The case's two studies, the newest opened; the older one in the second viewport (as any other visible study
    # of the patient would be).
    expect(page.locator("#series-current optgroup").first).to_have_attribute("label", "10/06/2025 · TDM cerebrale")
    expect(page.locator("#series-current option")).to_have_text([
        "CT n° 1 TDM cerebrale (3 images)", "MR n° 7 IRM compressee (1 image)",
        "CT n° 1 TDM cerebrale ancienne (2 images)"])
    expect(page.locator("#series-prior optgroup")).to_have_attribute("label", "15/01/2024 · TDM cerebrale ancienne")
    expect(page.locator("#series-prior option")).to_have_text(["CT n° 1 TDM cerebrale ancienne (2 images)"])
    expect(page.locator('[data-pane="current"] [data-slice-label]')).to_have_text("1 / 3")

    # Drawn: the canvas is not blank.
    first = _stats(page)
    assert first["width"] > 0 and first["variance"] > 50, first
    assert _stats(page, "prior")["variance"] > 50

    # A window preset changes the pixels (bone, then brain).
    page.get_by_role("button", name="Os").click()
    expect(current_viewport).to_have_attribute("data-preset", "bone")
    bone = _stats_once_redrawn(page, first)
    page.get_by_role("button", name="Cerveau").click()
    expect(current_viewport).to_have_attribute("data-preset", "brain")
    brain = _stats_once_redrawn(page, bone)
    assert bone["digest"] != first["digest"] and brain["digest"] != bone["digest"], (first, bone, brain)
    shoot(page, "viewer-ct-brain-window-with-prior")

    # Scrolling: the mouse wheel over the image, then the keyboard, then the slider.
    current_viewport.hover()
    page.mouse.wheel(0, 120)
    expect(current_viewport).to_have_attribute("data-image-index", "1")
    expect(page.locator('[data-pane="current"] [data-slice-label]')).to_have_text("2 / 3")
    expect(page.locator("#slice-current")).to_have_value("2")
    second = _stats_once_redrawn(page, brain)
    assert second["digest"] != brain["digest"], (brain, second)
    current_viewport.focus()
    page.keyboard.press("ArrowDown")
    expect(current_viewport).to_have_attribute("data-image-index", "2")
    page.locator("#slice-current").fill("1")
    expect(current_viewport).to_have_attribute("data-image-index", "0")

    # Length measurement: the tool becomes the left button's.
    measure = page.get_by_role("button", name="Mesure de longueur")
    measure.click()
    expect(measure).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="Fenêtrage")).to_have_attribute("aria-pressed", "false")

    # The compressed series: chosen in the list, decoded and drawn.
    page.locator("#series-current").select_option(label="MR n° 7 IRM compressee (1 image)")
    expect(current_viewport).to_have_attribute("data-images", "1")
    expect(current_viewport).to_have_attribute("data-rendered", "true")
    expect(page.locator('[data-pane="current"] [data-slice-label]')).to_have_text("1 / 1")
    expect(page.locator("#slice-current")).to_be_disabled()
    assert _stats(page)["variance"] > 50

    # The demo's head CT case (`telerad demo`): its 40-slice CT opened, its prior CT of last year beside it.
    page.goto("/cases?q=Le Roux")
    link = page.locator("tbody tr").filter(has_text="Télédiagnostic").filter(
        has_text=re.compile("Le Roux", re.I)).locator('a[href^="/cases/"]').first
    demo_case_id = int(link.get_attribute("href").rsplit("/", 1)[1])
    page.goto(f"/cases/{demo_case_id}/viewer")
    expect(viewer).to_have_attribute("data-state", "ready")
    expect(current_viewport).to_have_attribute("data-rendered", "true")
    expect(current_viewport).to_have_attribute("data-images", str(SLICES))
    expect(prior_viewport).to_have_attribute("data-rendered", "true")
    expect(prior_viewport).to_have_attribute("data-images", str(SLICES))
    expect(page.locator("#series-current option").first).to_contain_text(CURRENT_DESCRIPTION)
    expect(page.locator("#series-prior option").first).to_contain_text(PRIOR_DESCRIPTION)
    assert _stats(page)["variance"] > 50 and _stats(page, "prior")["variance"] > 50
    shoot(page, "viewer-demo-head-ct-with-prior")

    csp = browser_log.matching("Content Security Policy", start)
    assert not csp, "\n".join(csp)
    errors = browser_log.errors(start)
    assert not errors, "\n".join(errors)

    # A radiologist of another site: 403 on the viewer, 404 on the images by DICOMweb.
    study_uid = current_viewport.evaluate("el => el.closest('#viewer').dataset.studies.split(',')[0]")
    outsider = login(OUTSIDER)
    outside = browser_log.mark()
    answer = outsider.goto(f"/cases/{case_id}/viewer")
    assert answer is not None and answer.status == 403
    expect(outsider.locator("#viewer")).to_have_count(0)
    for path in (f"/dicomweb/studies/{study_uid}/series", f"/dicomweb/studies/{study_uid}/metadata"):
        response = outsider.request.get(server.url(path))
        assert response.status == 404, (path, response.status)
    assert outsider.request.get(server.url(f"/dicomweb/studies?PatientID={PATIENT['PatientID']}")).status == 204
    assert all(" 403 " in entry for entry in browser_log.errors(outside)), browser_log.errors(outside)
