"""The demo's images (`telerad demo`, integrations.dicom.demo_images): a generated head CT received through Telerad's
own ingest path into the demo case whose identity is checked, and a prior CT of the patient one year older
recorded as that case's prior; the demo radiologist finds both by DICOMweb, a radiologist of another site nothing
(issue 18)."""

from __future__ import annotations

import io
import json
from zoneinfo import ZoneInfo

import numpy as np
import pydicom
import pytest
from sqlalchemy import func, select

from integrations.dicom.demo_images import LESION_SLICES, SLICES, add_demo_images, phantom
from integrations.dicom.models import INSTANCE, SERIES, STUDY
from integrations.dicom.pacs import case_priors
from tests.demo_app import app, demo_ctx, login  # noqa: F401 - fixtures (the app's instance folder: tmp_path)
from tests.integration.dicom_support import demo_case

RADIOLOGIST = "dr.legall"
OUTSIDER = "dr.kerbrat"  # local radiologist of the CH de Morlaix


def _study(ctx, uid):
    with ctx.read() as session:
        study = session.execute(select(STUDY).where(STUDY.c.uid == uid)).one()
        counts = session.execute(select(SERIES.c.uid, SERIES.c.modality, func.count(INSTANCE.c.sop_instance_uid))
                                 .join(INSTANCE, INSTANCE.c.series_uid == SERIES.c.uid)
                                 .where(SERIES.c.study_uid == uid).group_by(SERIES.c.uid, SERIES.c.modality)).all()
    return study, counts


@pytest.mark.charter("CH-4.1.8")
@pytest.mark.charter("CH-4.1.11")
def test_the_demo_case_gets_a_ct_and_its_prior_that_only_its_radiologist_finds(app, demo_ctx, clock, tmp_path):  # noqa: F811
    storage = tmp_path / "instance" / "dicom"  # the app's dicom_storage(): where the SCP and the upload store
    added = add_demo_images(demo_ctx, storage)
    assert added is not None
    case_id, accession = demo_case(demo_ctx)  # Jean Quéré's: the only demo case past its identity check
    assert added.case_id == case_id and added.instances == SLICES and added.prior_status == "attached"

    # The current CT: stored, indexed and attached to the case by its accession number, one series of 40.
    current, series = _study(demo_ctx, added.study_uid)
    assert (current.case_id, current.status, current.accession_number) == (case_id, "attached", accession)
    assert [(modality, count) for _uid, modality, count in series] == [("CT", SLICES)]
    assert (current.patient_name, current.patient_birth_date, current.patient_sex) == ("QUERE^JEAN", "1960-09-21",
                                                                                      "M")
    # The prior: received without a case, then claimed as the case's prior (attached, never notified as new images).
    prior, prior_series = _study(demo_ctx, added.prior_study_uid)
    assert (prior.case_id, prior.status, prior.accession_number) == (case_id, "attached", None)
    assert prior.notified_at is not None and current.notified_at is None
    assert [(modality, count) for _uid, modality, count in prior_series] == [("CT", SLICES)]
    priors = case_priors(demo_ctx, case_id)
    assert [(p.study_uid, p.status, p.modality) for p in priors] == [(added.prior_study_uid, "attached", "CT")]
    with demo_ctx.read() as session:
        files = session.execute(select(INSTANCE.c.sha256)).scalars().all()
    assert len(files) == 2 * SLICES and all((storage / digest[:2] / digest).is_file() for digest in files)

    # DICOMweb: the demo radiologist lists both studies of the patient; the case page shows the series.
    client = login(app, demo_ctx, clock, RADIOLOGIST)
    answer = client.get(f"/dicomweb/studies?PatientID={current.patient_id}")
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    found = {item["0020000D"]["Value"][0]: item for item in json.loads(answer.get_data())}
    assert set(found) == {added.study_uid, added.prior_study_uid}
    dates = {uid: item["00080020"]["Value"][0] for uid, item in found.items()}
    assert dates[added.study_uid] == clock.now().astimezone(ZoneInfo("Europe/Paris")).strftime("%Y%m%d")
    one_year_before = f"{int(dates[added.study_uid][:4]) - 1}{dates[added.study_uid][4:]}"
    assert dates[added.prior_study_uid] == one_year_before  # the test clock's day is no 29 February
    assert priors[0].date == f"{one_year_before[:4]}-{one_year_before[4:6]}-{one_year_before[6:]}"
    viewer = client.get(f"/cases/{case_id}/viewer").get_data(as_text=True)
    assert added.study_uid in viewer and added.prior_study_uid in viewer
    # The pixels are generated, not blank: a whole instance read back by WADO-RS varies across the head.
    instances = json.loads(client.get(f"/dicomweb/studies/{added.study_uid}/instances").get_data())
    middle = next(i for i in instances if i["00200013"]["Value"][0] == LESION_SLICES[1] + 1)
    series_uid, sop_uid = middle["0020000E"]["Value"][0], middle["00080018"]["Value"][0]
    wado = client.get(f"/dicomweb/studies/{added.study_uid}/series/{series_uid}/instances/{sop_uid}",
                      headers={"Accept": 'multipart/related; type="application/dicom"'})
    assert wado.status_code == 200
    body = wado.get_data()
    dataset = pydicom.dcmread(io.BytesIO(body[body.index(b"DICM") - 128:]))
    hu = dataset.pixel_array.astype(np.int32) * int(dataset.RescaleSlope) + int(dataset.RescaleIntercept)
    assert hu.min() == -1000 and hu.max() >= 1000 and hu.std() > 100
    assert (dataset.WindowCenter, dataset.WindowWidth) == (40, 80)

    # A radiologist of another site: no study of the patient, nothing of the study.
    outsider = login(app, demo_ctx, clock, OUTSIDER)
    assert outsider.get(f"/dicomweb/studies?PatientID={current.patient_id}").status_code == 204
    assert outsider.get(f"/dicomweb/studies/{added.study_uid}/series").status_code == 404
    assert outsider.get(f"/dicomweb/studies/{added.prior_study_uid}/series").status_code == 404


def test_the_phantom_shows_the_lesion_in_the_current_study_only():
    current, prior = phantom(lesion=True), phantom(lesion=False)
    assert current.shape == (SLICES, 256, 256) and current.dtype == np.int16
    middle = current[LESION_SLICES[1]]
    assert set(np.unique(middle[middle > 500])) == {1000} and (middle == 70).sum() > 50
    assert (prior == 70).sum() == 0 and (current == 70).sum() > 100
    assert not np.array_equal(current[5], current[20])  # the slices differ: scrolling changes the image


@pytest.mark.charter("CH-4.1.11")
def test_telerad_demo_gives_its_head_ct_case_the_ct_and_the_prior(demo_ctx, tmp_path):  # noqa: F811
    """`telerad demo` adds a head CT case waiting for its images and gives it the CT and its prior."""
    from engine.services.instances import case_data
    from web.cli.demo_data import create_demo_ct_case

    case_id = create_demo_ct_case(demo_ctx)
    data = case_data(demo_ctx, case_id)
    assert (data["modality"], data["protocol"]) == ("CT", "ct_head_plain")
    added = add_demo_images(demo_ctx, tmp_path / "dicom", case_id=case_id)
    assert added is not None and added.case_id == case_id and added.prior_status == "attached"
    current, series = _study(demo_ctx, added.study_uid)
    assert (current.case_id, current.status, current.patient_name) == (case_id, "attached", "LE ROUX^MARCEL")
    assert [(modality, count) for _uid, modality, count in series] == [("CT", SLICES)]
    assert [p.study_uid for p in case_priors(demo_ctx, case_id)] == [added.prior_study_uid]
