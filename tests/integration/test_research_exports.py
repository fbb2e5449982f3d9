"""De-identified research exports (CH-8.2), through the services and the producer, on SQLite and PostgreSQL: every
exported DICOM file is read back with pydicom and no original identifying value remains in any element (sequences
and file meta included), private tags are gone, UIDs stay consistent across the series of a study; the case data
holds no direct identifier; nothing is produced before an administrator's approval; the export downloads once."""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.domain.research import RequestSpec, ResearchError, age_in_years
from engine.errors import Conflict, Forbidden, NotFound
from engine.services.instances import case_data
from engine.services.research import create_request, decide, get_request, list_requests, take_download
from engine.store.models import AuditEvent, ProcessInstance
from integrations.dicom.ingest import ingest_file
from integrations.dicom.research_export import produce_export
from tests.integration import dicom_support
from tests.integration.dicom_support import demo_case, for_case, rewrite

dicom_ctx = dicom_support.dicom_ctx
RESEARCHER = Actor("chercheur", frozenset({"researcher"}))
OTHER_RESEARCHER = Actor("chercheuse", frozenset({"researcher"}))
ADMIN = Actor("admin", frozenset({"administrator"}))
RADIOLOGIST = Actor("dr.guillou", frozenset({"radiologist"}))
IDENTIFYING = ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "InstitutionName",
               "InstitutionAddress", "ReferringPhysicianName", "OperatorsName", "PerformingPhysicianName",
               "StationName", "StudyID", "OtherPatientIDs")
STANDARD_UID_ROOT = "1.2.840.10008."  # SOP classes and transfer syntaxes: not identifying


def spec(**changes) -> RequestSpec:
    values = {"protocol": "ETUDE-EMBOLIE-2026", "approval_ref": "CPP Ouest 2026-A01234-45", "fields":
              ("process", "site", "sex", "age_years", "clinical_context", "question", "requested_at", "modality"),
              "images": True, "retain_dates": False, "clean_pixels": False, "period_start": date(2000, 1, 1),
              "period_end": date(2100, 12, 31), "sites": ("ch-brest",)}
    values.update(changes)
    return RequestSpec(**values)


def _identifying_file(folder: Path, accession: str, study: str, series: str, **extra) -> Path:
    path = rewrite(folder, "CT_small.dcm", study=study, series=series, **for_case(
        accession, InstitutionName="CH de Brest Cavale Blanche", InstitutionAddress="2 avenue Foch, Brest",
        ReferringPhysicianName="KERGUELEN^ANNE", OperatorsName="LE GALL^YANN", StationName="CTBREST01",
        StudyID="EX778899", FrameOfReferenceUID="1.2.826.0.1.3680043.2.1125.999.1",
        ImageComments="Scanner de M. Quere Jean, contrôle", StudyDescription="TDM thorax QUERE", **extra))
    dataset = pydicom.dcmread(path)
    dataset.add_new(0x00091010, "LO", "QUERE JEAN PRIVATE")  # a private tag with an identifying value
    dataset.private_block(0x0011, "ACME 1.1", create=True).add_new(0x01, "LO", "IPP-BREST-1")
    item = Dataset()
    item.PatientName, item.PatientID = "QUERE^JEAN", "IPP-BREST-1"
    item.ReferencedSOPInstanceUID = dataset.SOPInstanceUID
    dataset.ReferencedPatientSequence = [item]
    dataset.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def exported(dicom_ctx, tmp_path):
    """Quéré's case with two series of one study and one burned-in screen capture, exported."""
    case_id, accession = demo_case(dicom_ctx, "QU")
    study_uid, series = generate_uid(), (generate_uid(), generate_uid())
    originals = [_identifying_file(tmp_path / "in", accession, study_uid, series[0]),
                 _identifying_file(tmp_path / "in", accession, study_uid, series[0]),
                 _identifying_file(tmp_path / "in", accession, study_uid, series[1])]
    burned = _identifying_file(tmp_path / "in", accession, study_uid, generate_uid(), BurnedInAnnotation="YES")
    for path in [*originals, burned]:
        result = ingest_file(dicom_ctx, path, "ch-brest", "dicom", storage=tmp_path / "dicom", calling_ae="CT_BREST")
        assert result.status == "stored", result
    request_id = create_request(dicom_ctx, RESEARCHER, spec())
    decide(dicom_ctx, ADMIN, request_id, True)
    name = produce_export(dicom_ctx, request_id, tmp_path / "dicom", tmp_path / "research")
    return {"case_id": case_id, "accession": accession, "request": request_id, "originals": originals,
            "zip": tmp_path / "research" / name, "folder": tmp_path / "research"}


def _forbidden_values(paths: list[Path]) -> set[str]:
    values: set[str] = set()
    for path in paths:
        dataset = pydicom.dcmread(path)

        def collect(ds, element, values=values):
            if element.keyword in IDENTIFYING and element.value:
                values.add(str(element.value))
            if element.VR == "UI" and element.value and not str(element.value).startswith(STANDARD_UID_ROOT) \
                    and element.keyword != "ImplementationClassUID":  # the writing software's, not the patient's
                values.add(str(element.value))
        dataset.walk(collect)
        dataset.file_meta.walk(collect)
    return {value for value in values if len(value) >= 4}


@pytest.mark.charter("CH-8.2")
def test_every_exported_dicom_file_is_clean(exported, dicom_ctx):
    forbidden = _forbidden_values(exported["originals"])
    assert {"QUERE^JEAN", "IPP-BREST-1", "19600921", exported["accession"], "KERGUELEN^ANNE"} <= forbidden
    forbidden |= {"Quere", "QUERE", "Jean"}  # the names typed in descriptions and comments
    with zipfile.ZipFile(exported["zip"]) as archive:
        images = [name for name in archive.namelist() if name.endswith(".dcm")]
        assert len(images) == 3  # the burned-in capture is left out
        datasets = [pydicom.dcmread(archive.open(name)) for name in images]
        manifest = json.loads(archive.read("manifest.json"))
    for dataset in datasets:
        found: list[str] = []

        def check(ds, element, found=found):
            assert not element.tag.is_private, element
            if element.VR in ("OB", "OW", "OF", "OD", "UN"):
                return
            text = str(element.value)
            found.extend(value for value in forbidden if value in text)
        dataset.walk(check)
        dataset.file_meta.walk(check)
        assert not found, found
        assert dataset.PatientIdentityRemoved == "YES"
    studies = {dataset.StudyInstanceUID for dataset in datasets}
    series = [dataset.SeriesInstanceUID for dataset in datasets]
    assert len(studies) == 1 and sorted(Counter(series).values()) == [1, 2]  # two series, as sent
    assert len({dataset.FrameOfReferenceUID for dataset in datasets}) == 1
    assert all(d.SOPInstanceUID == d.file_meta.MediaStorageSOPInstanceUID for d in datasets)
    assert all(d.ReferencedPatientSequence[0].ReferencedSOPInstanceUID in {x.SOPInstanceUID for x in datasets}
               for d in datasets)
    assert [item["reason"] for item in manifest["left_out"]] == [
        "Texte incrusté dans l'image (BurnedInAnnotation=YES) : option Clean Pixel Data non choisie."]
    assert "Basic Application Level Confidentiality Profile" in manifest["profile"]


@pytest.mark.charter("CH-8.2")
def test_the_case_data_holds_no_direct_identifier(exported, dicom_ctx):
    data = case_data(dicom_ctx, exported["case_id"])
    with zipfile.ZipFile(exported["zip"]) as archive:
        rows = json.loads(archive.read("cases.json"))
        text = archive.read("cases.json").decode() + archive.read("manifest.json").decode()
    assert rows and all(set(row) == {"patient", "case", *spec().fields} for row in rows)
    patient = data["patient"]
    for value in ("Quéré", "QUERE", "Jean", patient["birth_date"], "IPP-BREST-1", exported["accession"]):
        assert value.lower() not in text.lower(), value
    assert all(str(exported["case_id"]) != row["case"] for row in rows)
    record = get_request(dicom_ctx, ADMIN, exported["request"])
    assert record.status == "ready" and exported["case_id"] in record.manifest["case_ids"]


@pytest.mark.charter("CH-8.2", negative=True)
def test_retained_dates_keep_the_acquisition_date_but_the_birth_date_cannot_be_recovered(dicom_ctx, tmp_path):
    """With Retain Longitudinal Temporal Information the image keeps its real dates and cases.json its real case
    dates (the same, as a researcher joining them finds them), and no birth date is left in the image: the shift
    a researcher derives from the outputs (image study date minus case date), undone on whatever birth date the
    image holds, never gives the real one. The age stays in cases.json."""
    case_id, accession = demo_case(dicom_ctx, "QU")
    with dicom_ctx.read() as session:
        started = session.get(ProcessInstance, case_id).started_at
    day = started.strftime("%Y%m%d")  # the study made the day the case was asked, as in life
    original = _identifying_file(tmp_path / "in", accession, generate_uid(), generate_uid(), StudyDate=day,
                                 SeriesDate=day, ContentDate=day, PatientBirthTime="063000")
    ingest_file(dicom_ctx, original, "ch-brest", "dicom", storage=tmp_path / "dicom", calling_ae="CT_BREST")
    request_id = create_request(dicom_ctx, RESEARCHER, spec(retain_dates=True, fields=("requested_at", "age_years")))
    decide(dicom_ctx, ADMIN, request_id, True)
    name = produce_export(dicom_ctx, request_id, tmp_path / "dicom", tmp_path / "research")
    with zipfile.ZipFile(tmp_path / "research" / name) as archive:
        [member] = [n for n in archive.namelist() if n.endswith(".dcm")]
        image = pydicom.dcmread(archive.open(member))
        rows = json.loads(archive.read("cases.json"))
        manifest = json.loads(archive.read("manifest.json"))
        contents = [archive.read(member) for member in archive.namelist()]
    source = pydicom.dcmread(original)
    real_birth = _dicom_date(source.PatientBirthDate)
    for text in (source.PatientBirthDate, real_birth.isoformat(), real_birth.strftime("%d/%m/%Y")):
        assert not any(text.encode() in content for content in contents), text
    assert image.StudyDate == source.StudyDate == day and image.StudyTime == source.StudyTime
    [row] = [row for row in rows if row["case"] == member.split("/")[1]]
    assert row["requested_at"] == started.date().isoformat()  # the case data keeps its real dates too
    derived = _dicom_date(image.StudyDate) - date.fromisoformat(row["requested_at"])
    birth = _dicom_date(source.PatientBirthDate)
    for shift in {derived, timedelta(0)}:
        assert image.PatientBirthDate != (birth - shift).strftime("%Y%m%d"), "birth date recovered"
    assert image.PatientBirthDate == "" and "PatientBirthTime" not in image  # PS3.15 Z and X
    assert row["age_years"] == age_in_years(birth, started.date())
    codes = [item.CodeValue for item in image.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113106"]
    assert "date de naissance retirée" in manifest["dates"]


def _dicom_date(value: str) -> date:
    return date(int(value[:4]), int(value[4:6]), int(value[6:8]))


@pytest.mark.charter("CH-8.2")
def test_image_dates_shift_by_the_same_days_as_the_case_data_of_their_patient(dicom_ctx, tmp_path):
    """A researcher joining images to cases.json finds the same dates: the study date of an image moves by the
    shift of its patient's case dates (read from both outputs), every date element of the image by the same."""
    case_id, accession = demo_case(dicom_ctx, "QU")
    original = _identifying_file(tmp_path / "in", accession, generate_uid(), generate_uid(), SeriesDate="20040120",
                                 AcquisitionDate="20040119", AcquisitionTime="235900")
    ingest_file(dicom_ctx, original, "ch-brest", "dicom", storage=tmp_path / "dicom", calling_ae="CT_BREST")
    request_id = create_request(dicom_ctx, RESEARCHER, spec(fields=("requested_at",)))
    decide(dicom_ctx, ADMIN, request_id, True)
    name = produce_export(dicom_ctx, request_id, tmp_path / "dicom", tmp_path / "research")
    with zipfile.ZipFile(tmp_path / "research" / name) as archive:
        [member] = [n for n in archive.namelist() if n.endswith(".dcm")]
        image = pydicom.dcmread(archive.open(member))
        rows = json.loads(archive.read("cases.json"))
    with dicom_ctx.read() as session:
        started = session.get(ProcessInstance, case_id).started_at
    [row] = [row for row in rows if row["case"] == member.split("/")[1]]  # images/<case>/<series>/<n>.dcm
    assert image.PatientID == row["patient"]  # the researcher's join key
    shift = started.date() - date.fromisoformat(row["requested_at"])  # the case data's shift, from its output
    assert 1 <= shift.days <= 365
    source = pydicom.dcmread(original)
    for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        assert _dicom_date(getattr(image, keyword)) == _dicom_date(getattr(source, keyword)) - shift, keyword
    assert image.AcquisitionTime == "235900" and image.StudyTime == source.StudyTime  # whole days: times kept
    assert _dicom_date(image.PatientBirthDate) == _dicom_date(source.PatientBirthDate) - shift


@pytest.mark.charter("CH-8.2", negative=True)
def test_the_export_downloads_once_by_its_requester(exported, dicom_ctx):
    with pytest.raises(NotFound):
        take_download(dicom_ctx, OTHER_RESEARCHER, exported["request"])
    assert take_download(dicom_ctx, RESEARCHER, exported["request"]) == exported["zip"].name
    with pytest.raises(Conflict, match="déjà été téléchargé"):
        take_download(dicom_ctx, RESEARCHER, exported["request"])
    with dicom_ctx.read() as session:
        downloads = session.execute(select(AuditEvent.actor).where(AuditEvent.action == "research.downloaded")).all()
    assert [row.actor for row in downloads] == ["chercheur"]


@pytest.mark.charter("CH-8.2", negative=True)
def test_nothing_is_produced_without_an_administrators_approval(dicom_ctx, tmp_path):
    request_id = create_request(dicom_ctx, RESEARCHER, spec())
    with pytest.raises(Conflict, match="pas approuvée"):
        produce_export(dicom_ctx, request_id, tmp_path / "dicom", tmp_path / "research")
    with pytest.raises(Forbidden):
        decide(dicom_ctx, RESEARCHER, request_id, True)
    with pytest.raises(ResearchError, match="motif du refus"):
        decide(dicom_ctx, ADMIN, request_id, False)
    decide(dicom_ctx, ADMIN, request_id, False, "Avis du CPP non joint")
    with pytest.raises(Conflict, match="pas approuvée"):
        produce_export(dicom_ctx, request_id, tmp_path / "dicom", tmp_path / "research")
    with pytest.raises(Conflict, match="déjà été examinée"):
        decide(dicom_ctx, ADMIN, request_id, True)
    with pytest.raises(Conflict, match="pas prêt"):
        take_download(dicom_ctx, RESEARCHER, request_id)
    assert not (tmp_path / "research").exists() or not list((tmp_path / "research").iterdir())


@pytest.mark.charter("CH-8.2", negative=True)
def test_requests_are_checked_and_seen_by_their_requester_and_administrators(dicom_ctx):
    with pytest.raises(Forbidden):
        create_request(dicom_ctx, RADIOLOGIST, spec())
    for bad, message in ((spec(approval_ref=" "), "autorisation"), (spec(fields=("patient_name",)), "non exportable"),
                         (spec(sites=("nowhere",)), "Site inconnu"), (spec(fields=(), images=False), "au moins"),
                         (spec(period_end=date(1999, 1, 1)), "précède")):
        with pytest.raises(ResearchError, match=message):
            create_request(dicom_ctx, RESEARCHER, bad)
    request_id = create_request(dicom_ctx, RESEARCHER, spec())
    assert [r.id for r in list_requests(dicom_ctx, RESEARCHER)] == [request_id]
    assert list_requests(dicom_ctx, OTHER_RESEARCHER) == []
    assert [r.id for r in list_requests(dicom_ctx, ADMIN)] == [request_id]
    with pytest.raises(Forbidden):
        list_requests(dicom_ctx, RADIOLOGIST)
    with pytest.raises(NotFound):
        get_request(dicom_ctx, OTHER_RESEARCHER, request_id)


@pytest.mark.charter("CH-8.2", negative=True)
def test_burned_in_images_of_a_device_no_rule_knows_stay_out_even_with_clean_pixel_data(dicom_ctx, tmp_path):
    """CT_small's device (GE RHAPSODE, 128 x 128) is in none of deid's rules: its images cannot be cleaned."""
    _case_id, accession = demo_case(dicom_ctx, "QU")
    study_uid = generate_uid()
    for extra in ({"BurnedInAnnotation": "YES"}, {"Modality": "US"}, {"BurnedInAnnotation": "NO"},
                  {"ImageType": ["DERIVED", "SECONDARY", "SCREEN SAVE"]}):  # a CT dose screen
        ingest_file(dicom_ctx, _identifying_file(tmp_path / "in", accession, study_uid, generate_uid(), **extra),
                    "ch-brest", "dicom", storage=tmp_path / "dicom", calling_ae="CT_BREST")
    request_id = create_request(dicom_ctx, RESEARCHER, spec(clean_pixels=True, fields=()))
    decide(dicom_ctx, ADMIN, request_id, True)
    name = produce_export(dicom_ctx, request_id, tmp_path / "dicom", tmp_path / "research")
    with zipfile.ZipFile(tmp_path / "research" / name) as archive:
        images = [n for n in archive.namelist() if n.endswith(".dcm")]
        manifest = json.loads(archive.read("manifest.json"))
    assert len(images) == 1 and len(manifest["left_out"]) == 3
    assert any("BurnedInAnnotation=YES" in item["reason"] for item in manifest["left_out"])
    assert any("Modalité US" in item["reason"] for item in manifest["left_out"])
    assert any("Copie d'écran" in item["reason"] for item in manifest["left_out"])
    assert all("aucune règle de nettoyage" in item["reason"] for item in manifest["left_out"])
    assert manifest["cleaned"] == []
    assert any(option.startswith("Clean Pixel Data (règles CTP de deid") for option in manifest["options"])


@pytest.mark.charter("CH-8.2", negative=True)
def test_an_export_not_downloaded_in_time_is_deleted(dicom_ctx, tmp_path, clock):
    from engine.domain.research import EXPORT_KEPT_DAYS
    from engine.services.research import expire_exports
    from integrations.dicom.research_export import expired_files_removed

    request_id = create_request(dicom_ctx, RESEARCHER, spec(images=False))
    decide(dicom_ctx, ADMIN, request_id, True)
    name = produce_export(dicom_ctx, request_id, tmp_path / "dicom", tmp_path / "research")
    clock.advance(days=EXPORT_KEPT_DAYS - 1)
    assert expire_exports(dicom_ctx) == []
    clock.advance(days=2)
    assert expired_files_removed(tmp_path / "research", expire_exports(dicom_ctx)) == 1
    assert not (tmp_path / "research" / name).exists()
    with pytest.raises(Conflict, match="supprimé"):
        take_download(dicom_ctx, RESEARCHER, request_id)
    assert get_request(dicom_ctx, RESEARCHER, request_id).status == "expired"
