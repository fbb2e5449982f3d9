"""Demo images (`telerad demo`): a synthetic head CT for the demo case whose identity is checked, and a prior CT of
the same patient one year older, recorded as a prior of the case.

    added = add_demo_images(ctx, storage)   # storage: <instance>/dicom, as web.clinical.images.dicom_storage()

The pixels are generated here (a numpy head phantom in Hounsfield units: air, skull, brain, ventricles, and in the
current study only a small hyperdense lesion), never copied from anywhere. The files go through Telerad's own
reception (integrations.dicom.ingest.ingest_file, as the C-STORE SCP and the web upload), so they are stored,
indexed, identity-checked and attached like received images. The prior carries no accession number of a case: it
arrives without a case and is claimed as the case's prior the way the priors tick claims a study moved by a site's
PACS (integrations.dicom.priors).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from io import BytesIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid

from engine.domain.actors import Actor
from engine.services.cases import list_cases
from engine.services.context import EngineContext
from engine.services.images import case_identity
from engine.services.instances import case_data
from integrations.dicom.ingest import ingest_file
from integrations.dicom.matching import normalise
from integrations.dicom.priors import FoundStudy, _claim

SLICES = 40
SIZE = 256
PIXEL_SPACING = 0.9  # mm: a 230 mm field of view
SLICE_THICKNESS = 5.0  # mm: 200 mm of head
RESCALE_INTERCEPT = -1024.0  # stored value = HU + 1024, unsigned 12 bits
BRAIN_WINDOW = (40, 80)  # the window the images open with (centre, width, HU)
LESION_SLICES = range(22, 25)  # 0-based slices of the current study showing the hyperdense lesion
SOURCE = "demo"
DEMO_RADIOLOGIST = Actor("dr.legall", frozenset({"radiologist", "tele_expert"}))
CURRENT_DESCRIPTION = "TDM CEREBRALE SANS INJECTION"
PRIOR_DESCRIPTION = "TDM CEREBRALE (ANTERIEURE)"
PARIS = ZoneInfo("Europe/Paris")


@dataclass(frozen=True)
class DemoImages:
    case_id: int
    study_uid: str
    prior_study_uid: str
    instances: int  # per study
    prior_status: str  # the prior's status on the case (attached, held...)


def phantom(slices: int = SLICES, size: int = SIZE, lesion: bool = True, seed: int = 0) -> np.ndarray:
    """A head in HU, shape (slices, size, size), int16: air -1000, skull ~+1000, brain ~+35 with a little noise,
    ventricles ~+5 in the middle slices, and with `lesion` a small +70 hyperdense spot on LESION_SLICES."""
    rng = np.random.default_rng(seed)
    z = (np.arange(slices) - (slices - 1) / 2) * SLICE_THICKNESS
    y, x = (np.mgrid[0:size, 0:size] - (size - 1) / 2) * PIXEL_SPACING
    volume = np.full((slices, size, size), -1000.0)
    for k in range(slices):
        scale = np.sqrt(max(0.0, 1.0 - (z[k] / 105.0) ** 2))  # the head narrows towards the vertex and the base
        if scale < 0.2:
            continue
        outer = (x / (75 * scale)) ** 2 + (y / (95 * scale)) ** 2
        inner = (x / (75 * scale - 7)) ** 2 + (y / (95 * scale - 7)) ** 2
        image = volume[k]
        image[outer <= 1] = 1000.0
        brain = inner <= 1
        image[brain] = 35.0 + rng.normal(0.0, 4.0, size=int(brain.sum()))
        if abs(z[k]) <= 30:  # the lateral ventricles: two crescents beside the midline
            for side in (-1, 1):
                ventricle = ((x - side * 12) / 7) ** 2 + ((y + 10) / 28) ** 2 <= 1
                image[ventricle] = 5.0 + rng.normal(0.0, 2.0, size=int(ventricle.sum()))
        if lesion and k in LESION_SLICES:
            spot = ((x - 35) ** 2 + (y - 25) ** 2) <= (8 - 2 * abs(k - 23)) ** 2
            image[spot] = 70.0
    return np.clip(np.rint(volume), -1024, 3071).astype(np.int16)


def ct_series(volume: np.ndarray, patient: dict[str, str], *, study_date: date, accession: str | None,
              description: str, series_number: int = 2) -> list[bytes]:
    """One CT study of one axial series (CT Image Storage, explicit VR little endian), one Part-10 file per slice,
    each with its own UIDs; `patient`: PatientName, PatientID, PatientBirthDate, PatientSex."""
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    day = study_date.strftime("%Y%m%d")
    files = []
    for index, pixels in enumerate(volume):
        sop_uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop_uid
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = day
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "101500"
        ds.AccessionNumber = accession or ""
        ds.Modality = "CT"
        ds.Manufacturer = "Telerad demo phantom"
        ds.InstitutionName = "Telerad demo"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = description
        ds.SeriesDescription = description
        for keyword, value in patient.items():
            setattr(ds, keyword, value)
        ds.BodyPartExamined = "HEAD"
        ds.SliceThickness = SLICE_THICKNESS
        ds.KVP = 120
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.StudyID = "1"
        ds.SeriesNumber = series_number
        ds.InstanceNumber = index + 1
        ds.ImagePositionPatient = [-(SIZE - 1) / 2 * PIXEL_SPACING, -(SIZE - 1) / 2 * PIXEL_SPACING,
                                   float(index) * SLICE_THICKNESS]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceLocation = float(index) * SLICE_THICKNESS
        ds.PositionReferenceIndicator = ""
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = SIZE
        ds.PixelSpacing = [PIXEL_SPACING, PIXEL_SPACING]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.WindowCenter, ds.WindowWidth = BRAIN_WINDOW
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = RESCALE_INTERCEPT, 1, "HU"
        ds.PixelData = (pixels.astype(np.int32) - int(RESCALE_INTERCEPT)).astype("<u2").tobytes()
        buffer = BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        files.append(buffer.getvalue())
    return files


def demo_case(ctx: EngineContext) -> int | None:
    """The demo case for the images: the oldest running telediagnosis the demo radiologist may see whose
    patient's identity is checked and whose images are awaited (protocol chosen)."""
    cases = sorted(list_cases(ctx, DEMO_RADIOLOGIST, status="running"), key=lambda line: line.id)
    for line in cases:
        if line.process_id != "telediagnosis":
            continue
        identity = case_identity(ctx, line.id)
        if identity.identity_checked and not identity.awaiting_protocol:
            return line.id
    return None


def _dicom_patient(case_id: int, traits: dict[str, Any]) -> dict[str, str]:
    family = normalise(traits.get("birth_name") or traits.get("used_name"))
    given = normalise(traits.get("first_names")).split(" ")[0]
    return {"PatientName": f"{family}^{given}", "PatientID": str(traits.get("site_patient_id") or f"DEMO-{case_id}"),
            "PatientBirthDate": str(traits.get("birth_date") or "")[:10].replace("-", ""),
            "PatientSex": str(traits.get("sex") or "")}


def _year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def add_demo_images(ctx: EngineContext, storage: Path, now: datetime | None = None,
                    case_id: int | None = None) -> DemoImages | None:
    """Ingest the demo CT into `case_id` (by default the demo case found by `demo_case`) and its prior one year
    older (claimed as the case's prior); None when the demo has no such case."""
    case_id = case_id if case_id is not None else demo_case(ctx)
    if case_id is None:
        return None
    identity = case_identity(ctx, case_id)
    accession = str(case_data(ctx, case_id).get("accession_number") or "")
    patient = _dicom_patient(case_id, identity.patient)
    today = (now or ctx.clock.now()).astimezone(PARIS).date()
    current = ct_series(phantom(lesion=True), patient, study_date=today, accession=accession,
                        description=CURRENT_DESCRIPTION)
    prior_day = _year_before(today)
    prior = ct_series(phantom(lesion=False, seed=1), patient, study_date=prior_day, accession=None,
                      description=PRIOR_DESCRIPTION)
    study_uid = _ingest(ctx, storage, current, identity.site_id)
    prior_uid = _ingest(ctx, storage, prior, identity.site_id)
    # As the priors tick does for a study its PACS sent: recorded as the case's prior, identity-checked, attached.
    status = _claim(ctx, case_id, identity, identity.identity_checked,
                    FoundStudy(prior_uid, prior_day.isoformat(), "CT", PRIOR_DESCRIPTION, None))
    return DemoImages(case_id, study_uid, prior_uid, len(current), status)


def _ingest(ctx: EngineContext, storage: Path, files: list[bytes], site_id: str | None) -> str:
    study_uid = None
    for data in files:
        result = ingest_file(ctx, data, site_id, SOURCE, storage=storage, fsync=False)
        if result.status not in ("stored", "duplicate"):
            raise RuntimeError(f"demo image not stored: {result.status} ({result.reason})")
        study_uid = result.study_uid
    assert study_uid is not None
    return study_uid
