"""Identifiers in research exports (CH-8.2), through the producer, on SQLite and PostgreSQL: text the profile
removes (comments, patient characteristics, the age) is gone from every image with or without Retain Longitudinal
Temporal Information; identifiers and phone numbers typed in images or case fields appear in no exported file;
documents and screen copies are left out; old-style overlays in the unused high bits are cleared."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select

from engine.services import instances
from engine.services.research import create_request, decide
from engine.store.models import ProcessInstance
from integrations.dicom.ingest import ingest_file
from integrations.dicom.research_export import produce_export
from tests.integration import dicom_support
from tests.integration.dicom_support import demo_case, for_case, rewrite
from tests.integration.test_research_exports import ADMIN, RESEARCHER, spec

dicom_ctx = dicom_support.dicom_ctx

NIR = "1850775123456"
IMAGE_TEXT = {"PatientComments": f"IPP123456 NIR {NIR} ACC998877", "ImageComments": "acc ACC998877",
              "AdditionalPatientHistory": "tel 0601020304", "StudyComments": "rappeler le 06 11 22 33 44",
              "PatientBirthDateInAlternativeCalendar": "5720 Tishri 3", "PatientWeight": "71.5",
              "PatientSize": "1.72", "OtherPatientIDs": "OPID-77665544", "MedicalAlerts": "allergie iode"}
SECRETS = ("IPP123456", NIR, "ACC998877", "0601020304", "06 11 22 33 44", "5720 Tishri", "71.5", "1.72",
           "OPID-77665544", "allergie iode", "IPP-BREST-1", "QUERE")


def _store(ctx, folder: Path, path: Path) -> None:
    result = ingest_file(ctx, path, "ch-brest", "dicom", storage=folder / "dicom", calling_ae="CT_BREST")
    assert result.status == "stored", result


def _export(ctx, folder: Path, **changes: Any) -> dict[str, bytes]:
    request_id = create_request(ctx, RESEARCHER, spec(**changes))
    decide(ctx, ADMIN, request_id, True)
    name = produce_export(ctx, request_id, folder / "dicom", folder / "research")
    with zipfile.ZipFile(folder / "research" / name) as archive:
        return {member: archive.read(member) for member in archive.namelist()}


def _images(files: dict[str, bytes]) -> list[pydicom.Dataset]:
    import io

    return [pydicom.dcmread(io.BytesIO(data)) for name, data in files.items() if name.endswith(".dcm")]


@pytest.mark.charter("CH-8.2", negative=True)
@pytest.mark.parametrize("retain_dates", [False, True])
def test_no_age_comment_or_identifier_survives_in_any_exported_file(dicom_ctx, tmp_path, monkeypatch, retain_dates):
    """PatientAge in days, weeks or months beside the study date gives the birth date: removed from every image
    (PS3.15 X), with or without Retain Longitudinal Temporal Information; cases.json keeps the age in whole years.
    The comments and history typed at the modality are removed, and the case's identifiers (IPP, INS, accession
    number) and phone numbers typed in its clinical context are scrubbed."""
    case_id, accession = demo_case(dicom_ctx, "QU")
    with dicom_ctx.read() as session:
        patient_ref = session.execute(select(ProcessInstance.patient_ref).where(
            ProcessInstance.id == case_id)).scalar_one()
    real = instances.case_data
    context = (f"Patient IPP {patient_ref}, INS 2 85 07 75 123 456 78, dossier {accession}, "
               "joignable au +33 6 98 76 54 32 ou 0298765432. Douleur thoracique.")

    def with_identifiers(ctx, instance_id):
        data = real(ctx, instance_id)
        if instance_id == case_id:
            data = {**data, "clinical_context": context}
        return data

    monkeypatch.setattr(instances, "case_data", with_identifiers)
    study = generate_uid()
    for age in ("012D", "006W", "003M"):
        _store(dicom_ctx, tmp_path, rewrite(tmp_path / "in", "CT_small.dcm", study=study, series=generate_uid(),
                                            **for_case(accession, PatientAge=age, **IMAGE_TEXT)))
    files = _export(dicom_ctx, tmp_path, retain_dates=retain_dates,
                    fields=("clinical_context", "age_years", "requested_at"))
    images = _images(files)
    assert len(images) == 3
    for image in images:
        for keyword in ("PatientAge", *IMAGE_TEXT):
            assert keyword not in image, keyword
    secrets = [*SECRETS, accession, "98 76 54 32", "0298765432", "2 85 07 75 123 456 78"]
    if patient_ref:
        secrets.append(patient_ref)
    for member, data in files.items():
        for value in secrets:
            assert value.encode() not in data, (member, value)
        for age in ("012D", "006W", "003M"):
            assert age.encode() not in data, (member, age)
    rows = json.loads(files["cases.json"])
    [row] = [row for row in rows if "Douleur thoracique" in (row["clinical_context"] or "")]
    assert "[IDENTIFIANT]" in row["clinical_context"] and "[TÉLÉPHONE]" in row["clinical_context"]
    assert isinstance(row["age_years"], int)


@pytest.mark.charter("CH-8.2", negative=True)
def test_documents_and_screen_copies_are_left_out_and_reformatted_series_kept(dicom_ctx, tmp_path):
    """An Encapsulated PDF under the CT modality, with the patient's name in its bytes, never goes; nor a secondary
    capture, a converted image or a dose report; a reformatted (DERIVED\\SECONDARY) CT series does."""
    _case_id, accession = demo_case(dicom_ctx, "QU")
    study = generate_uid()
    pdf = rewrite(tmp_path / "in", "CT_small.dcm", study=study, series=generate_uid(), **for_case(
        accession, SOPClassUID="1.2.840.10008.5.1.4.1.1.104.1", MIMETypeOfEncapsulatedDocument="application/pdf",
        EncapsulatedDocument=b"%PDF-1.4 Compte rendu de QUERE JEAN IPP-BREST-1 %%EOF\n", BurnedInAnnotation="NO"))
    dataset = pydicom.dcmread(pdf)  # pixels kept: the store refuses an instance without them
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.save_as(pdf, enforce_file_format=True)
    _store(dicom_ctx, tmp_path, pdf)
    for extra in ({"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"}, {"ConversionType": "WSD"},
                  {"SeriesDescription": "Dose Report"}, {"ImageType": ["DERIVED", "SECONDARY", "DOSE_INFO"]},
                  {"ImageType": ["DERIVED", "SECONDARY", "REFORMATTED"], "SeriesDescription": "Thorax MPR"}):
        _store(dicom_ctx, tmp_path, rewrite(tmp_path / "in", "CT_small.dcm", study=study, series=generate_uid(),
                                            **for_case(accession, BurnedInAnnotation="NO", **extra)))
    files = _export(dicom_ctx, tmp_path, fields=())
    manifest = json.loads(files["manifest.json"])
    [image] = _images(files)
    assert list(image.ImageType) == ["DERIVED", "SECONDARY", "REFORMATTED"]
    reasons = [item["reason"] for item in manifest["left_out"]]
    assert len(reasons) == 5 and sum("Document encapsulé" in reason for reason in reasons) == 1
    assert all(b"QUERE" not in data and b"%PDF" not in data for data in files.values())


@pytest.mark.charter("CH-8.2", negative=True)
def test_old_style_overlays_in_the_unused_high_bits_are_cleared(dicom_ctx, tmp_path):
    _case_id, accession = demo_case(dicom_ctx, "QU")
    path = rewrite(tmp_path / "in", "CT_small.dcm", **for_case(accession, BitsStored=12, HighBit=11,
                                                               PixelRepresentation=0))
    dataset = pydicom.dcmread(path)
    words = np.frombuffer(dataset.PixelData, dtype="<u2") & 0x0FFF
    words[:64] |= 0x1000  # an overlay plane in bit 12: a burned-in annotation outside the pixels' 12 bits
    dataset.PixelData = words.tobytes()
    dataset.save_as(path, enforce_file_format=True)
    _store(dicom_ctx, tmp_path, path)
    [image] = _images(_export(dicom_ctx, tmp_path, fields=()))
    exported = np.frombuffer(image.PixelData, dtype="<u2")
    assert not (exported & 0xF000).any()
    assert np.array_equal(exported, words & 0x0FFF)  # the 12 bits of the image kept
