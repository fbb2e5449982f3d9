"""Ingestion without the network: checks of damaged files, matching by accession number then Study Instance UID,
identity vigilance (held study, technologist's decision), late matches and the stability tick (CH-4.1.6,
CH-4.1.11, CH-5.1)."""

from __future__ import annotations

import pytest
from pydicom.uid import generate_uid

from engine.domain.actors import Actor
from engine.services.instances import amend_case, case_data
from engine.services.tasks import complete_task, list_tasks
from engine.store.models import ProcessInstance
from integrations.dicom.ingest import ingest_file
from integrations.dicom.matching import DicomPatient, identity_differences, normalise
from integrations.dicom.service import DicomService, DicomSettings
from integrations.dicom.stability import notify_stable_studies
from tests.integration import dicom_support
from tests.integration.dicom_support import (
    QUERE,
    audit_actions,
    check_identity,
    counts,
    demo_case,
    echoscu,
    for_case,
    justify_and_protocol,
    open_tasks,
    rewrite,
    stored_files,
    study,
)

dicom_ctx = dicom_support.dicom_ctx  # fixture
storage = dicom_support.storage  # fixture

TECHNOLOGIST = Actor("merm.leroy", frozenset({"technologist"}), frozenset({"ch-brest"}))
DELAY = 30
CASE_PATIENT = {"birth_name": "Quéré", "first_names": "Jean Marie", "birth_date": "1960-09-21", "sex": "M",
                "site_patient_id": "IPP-BREST-1"}


def ingest(ctx, path, storage, site="ch-brest", **options):
    return ingest_file(ctx, path, site, "dicom", storage=storage, calling_ae="CT_BREST", **options)


def identity_task(ctx, identity_case):
    return next(t for t in list_tasks(ctx, TECHNOLOGIST) if t.instance_id == identity_case)


# Identity comparison (pure)

FEWER = "moins de deux traits concordants"


def _short(differences):
    return [FEWER if d.startswith(FEWER) else d for d in differences]


@pytest.mark.charter("CH-4.1.6")
@pytest.mark.parametrize(("dicom", "differences"), [
    (DicomPatient("IPP-BREST-1", "QUERE^JEAN", "1960-09-21", "M"), []),
    (DicomPatient(None, "QUERE", "1960-09-21"), []),  # no given name in the images: the family name suffices
    (DicomPatient("IPP-BREST-1", "quéré^jean^marie", None, "M"), []),  # case, accents, middle name: first names
])
def test_identity_matches_on_at_least_two_traits(dicom, differences):
    assert identity_differences(dicom, CASE_PATIENT) == differences


@pytest.mark.charter("CH-4.1.6", negative=True)
@pytest.mark.charter("CH-8.1", negative=True)
@pytest.mark.parametrize(("dicom", "patient", "differences"), [
    (DicomPatient(None, "quéré^jean^marie", None), CASE_PATIENT, [FEWER]),  # one trait is not enough
    (DicomPatient("IPP-BREST-1", None, None), CASE_PATIENT, [FEWER]),  # a Patient ID alone never attaches...
    (DicomPatient("IPP-BREST-1", None, None), {k: v for k, v in CASE_PATIENT.items() if k != "site_patient_id"},
     [FEWER]),  # ... least of all to a case with no IPP
    (DicomPatient("IPP-BREST-2", "QUERE^JEAN", "1960-09-21"), CASE_PATIENT, ["identifiant patient (IPP)"]),
    (DicomPatient(None, "KERMARREC^JEAN", "1960-09-21"), CASE_PATIENT, ["nom"]),
    (DicomPatient(None, "QUERE^PAUL", "1960-09-21"), CASE_PATIENT, ["prénom"]),
    (DicomPatient(None, "QUERE^JEAN", "1960-09-12"), CASE_PATIENT, ["date de naissance"]),
    (DicomPatient("IPP-BREST-1", "QUERE^JEAN", "1960-09-21", "F"), CASE_PATIENT, ["sexe"]),  # 3 match, 1 differs
    (DicomPatient(None, None, None), CASE_PATIENT, ["aucune identité dans les images"]),
    (DicomPatient(None, "QUERE^JEAN", None, "M"), CASE_PATIENT, [FEWER]),  # the sex never counts as a second trait
    (DicomPatient(None, None, "1960-09-21", "M"), CASE_PATIENT, [FEWER]),
])
def test_identity_mismatches_and_too_few_traits(dicom, patient, differences):
    assert _short(identity_differences(dicom, patient)) == differences


def test_used_name_and_normalisation():
    assert normalise("Le Bihan-Quéré") == "LE BIHAN QUERE"
    married = {**CASE_PATIENT, "birth_name": "Le Bihan", "used_name": "Quéré"}
    assert identity_differences(DicomPatient(None, "QUERE^JEAN", "1960-09-21"), married) == []


# Damaged files

@pytest.mark.charter("CH-5.1")
@pytest.mark.filterwarnings("ignore:End of file reached before delimiter")  # pydicom only warns: we refuse
@pytest.mark.charter("CH-5.1", negative=True)
def test_damaged_files_are_refused_with_a_reason_and_leave_nothing(dicom_ctx, storage, tmp_path, caplog):
    _, accession = demo_case(dicom_ctx)
    whole = rewrite(tmp_path, "CT_small.dcm", **for_case(accession)).read_bytes()
    rle = rewrite(tmp_path, "MR_small_RLE.dcm", **for_case(accession)).read_bytes()
    no_uid = rewrite(tmp_path, "CT_small.dcm", **for_case(accession), StudyInstanceUID="")
    cases = {
        "cut in the pixel data": whole[: len(whole) * 2 // 3],
        "cut in the trailing element": whole[:-3],
        "compressed, cut before its delimiter": rle[: len(rle) - 300],
        "not DICOM": b"%PDF-1.7 not an image" * 20,
        "empty": b"",
        "no study UID": no_uid.read_bytes(),
    }
    for label, content in cases.items():
        result = ingest(dicom_ctx, content, storage)
        assert result.status == "refused", label
        assert result.reason, label
    assert counts(dicom_ctx) == (0, 0, 0)
    assert stored_files(storage) == []
    assert caplog.text.count("DICOM instance refused") == len(cases)


# Matching

@pytest.mark.charter("CH-4.1.11")
def test_a_study_without_accession_number_attaches_by_its_study_instance_uid(dicom_ctx, storage, tmp_path, clock):
    case_id, _ = demo_case(dicom_ctx)
    uid = generate_uid()
    amend_case(dicom_ctx, Actor("hl7:RIS@CH"), case_id, {"study_instance_uid": uid}, "ordre du RIS")
    result = ingest(dicom_ctx, rewrite(tmp_path, "CT_small.dcm", study=uid, **QUERE, AccessionNumber=""), storage)
    assert result.status == "stored"
    assert (study(dicom_ctx, uid).status, study(dicom_ctx, uid).case_id) == ("attached", case_id)


def test_a_case_of_another_site_is_not_matched(dicom_ctx, storage, tmp_path):
    _, accession = demo_case(dicom_ctx)  # a CH de Brest case, images sent by the Morlaix scanner
    uid = generate_uid()
    path = rewrite(tmp_path, "CT_small.dcm", study=uid, **for_case(accession))
    assert ingest(dicom_ctx, path, storage, site="ch-morlaix").status == "stored"
    received = study(dicom_ctx, uid)
    assert (received.status, received.case_id) == ("receiving", None)
    assert "autre site" in received.hold_reason


@pytest.mark.charter("CH-4.1.11")
def test_images_before_their_order_are_matched_by_a_later_tick(dicom_ctx, storage, tmp_path, clock):
    case_id, _ = demo_case(dicom_ctx)
    uid = generate_uid()
    ingest(dicom_ctx, rewrite(tmp_path, "CT_small.dcm", study=uid, **QUERE, AccessionNumber="RIS-0001"), storage)
    assert study(dicom_ctx, uid).status == "receiving"
    assert notify_stable_studies(dicom_ctx, clock.now(), DELAY).matched == []  # still no order
    amend_case(dicom_ctx, Actor("hl7:RIS@CH"), case_id, {"study_instance_uid": uid}, "ordre du RIS")
    clock.advance(seconds=DELAY + 1)
    assert notify_stable_studies(dicom_ctx, clock.now(), DELAY).matched == []  # looked for once a minute at most
    clock.advance(seconds=30)
    report = notify_stable_studies(dicom_ctx, clock.now(), DELAY)
    assert report.matched == [uid] and report.notified == [uid]
    # The images are there; the technologist still attests the acquisition (CH-4.1.4).
    assert open_tasks(dicom_ctx, case_id) == ["acquire_images"]
    assert case_data(dicom_ctx, case_id)["images"]["study_uid"] == uid


@pytest.mark.charter("CH-4.1.11")
@pytest.mark.charter("CH-4.1.6", negative=True)
@pytest.mark.charter("CH-4.1.9", negative=True)
def test_images_before_the_identity_check_are_held_then_attached_and_reach_the_case_only_when_it_waits(
        dicom_ctx, storage, tmp_path, clock):
    case_id, accession = demo_case(dicom_ctx, "LE BIHAN")  # accepted: identity not checked, not at acquisition
    uid = generate_uid()
    ingest(dicom_ctx, rewrite(tmp_path, "CT_small.dcm", study=uid, PatientName="LE BIHAN^NOLWENN",
                              PatientBirthDate="19790203", PatientSex="F", PatientID="", AccessionNumber=accession),
           storage)
    held = study(dicom_ctx, uid)
    assert (held.status, held.case_id, held.identity_case_id) == ("held", case_id, None)
    assert "pas encore vérifiée" in held.hold_reason
    assert "dicom.study_held" in audit_actions(dicom_ctx, case_id)
    clock.advance(seconds=DELAY + 1)
    report = notify_stable_studies(dicom_ctx, clock.now(), DELAY)
    assert (report.released, report.notified) == ([], [])  # still held: nothing moves the case
    assert study(dicom_ctx, uid).status == "held"

    check_identity(dicom_ctx, case_id)  # the technologist checks the identity: the next tick compares the traits
    report = notify_stable_studies(dicom_ctx, clock.now(), DELAY)
    assert report.released == [] and study(dicom_ctx, uid).status == "held"  # no justification, no protocol yet
    justify_and_protocol(dicom_ctx, case_id)  # CH-4.1.2, CH-4.1.9: the radiologist's decisions come first
    report = notify_stable_studies(dicom_ctx, clock.now(), DELAY)
    assert report.released == [uid] and study(dicom_ctx, uid).status == "attached"
    assert audit_actions(dicom_ctx, case_id).count("dicom.study_attached") == 1
    assert report.notified == [uid]  # the case waits at the acquisition step: the images reach it


@pytest.mark.charter("CH-4.1.6", negative=True)
def test_a_study_held_before_the_check_whose_traits_differ_stays_held_for_reconciliation(
        dicom_ctx, storage, tmp_path, clock):
    case_id, accession = demo_case(dicom_ctx, "LE BIHAN")
    uid = generate_uid()
    first = rewrite(tmp_path, "CT_small.dcm", study=uid, PatientName="LE BIHAN^NOLWENN", PatientBirthDate="19790302",
                    PatientSex="F", PatientID="", AccessionNumber=accession)
    ingest(dicom_ctx, first, storage)
    check_identity(dicom_ctx, case_id)
    # The next image after the check decides (before any tick): the birth date contradicts the case's.
    ingest(dicom_ctx, rewrite(tmp_path, "CT_small.dcm", study=uid, PatientName="LE BIHAN^NOLWENN",
                              PatientBirthDate="19790302", PatientSex="F", PatientID="", AccessionNumber=accession),
           storage)
    held = study(dicom_ctx, uid)
    assert held.status == "held" and "date de naissance" in held.hold_reason
    assert held.identity_case_id is not None  # the technologists reconcile
    assert audit_actions(dicom_ctx, case_id).count("dicom.study_held") == 2  # before the check, then mismatch
    assert "dicom.study_attached" not in audit_actions(dicom_ctx, case_id)


# Identity vigilance

@pytest.mark.charter("CH-4.1.6")
@pytest.mark.parametrize("decision", ["attach", "reject"])
def test_a_patient_mismatch_holds_the_study_for_the_technologist(dicom_ctx, storage, tmp_path, clock, decision):
    case_id, accession = demo_case(dicom_ctx)
    uid = generate_uid()
    series = generate_uid()
    for _ in range(2):
        ingest(dicom_ctx, rewrite(tmp_path, "CT_small.dcm", study=uid, series=series,
                                  **for_case(accession, PatientBirthDate="19600912")), storage)
    held = study(dicom_ctx, uid)
    assert (held.status, held.case_id) == ("held", case_id)
    assert "date de naissance" in held.hold_reason
    with dicom_ctx.read() as session:
        identity = session.get(ProcessInstance, held.identity_case_id)
    assert (identity.process_id, identity.site_id) == ("image_identity_check", "ch-brest")
    data = case_data(dicom_ctx, identity.id)
    assert data["case_id"] == case_id and data["study_uid"] == uid
    assert data["dicom_patient"]["birth_date"] == "1960-09-12"
    assert data["case_patient"]["birth_date"] == "1960-09-21"
    blocked = case_data(dicom_ctx, case_id)  # its banner shows the blocked case's identity status, not "—"
    assert data["patient"]["identity_status"] == (blocked.get("identity_status")
                                                  or blocked["patient"]["identity_status"])
    assert open_tasks(dicom_ctx, identity.id) == ["reconcile_images"]  # one check, however many instances
    clock.advance(seconds=DELAY + 1)
    assert notify_stable_studies(dicom_ctx, clock.now(), DELAY).notified == []  # held: the case is not told
    assert open_tasks(dicom_ctx, case_id) == ["acquire_images"]

    task = identity_task(dicom_ctx, identity.id)
    complete_task(dicom_ctx, TECHNOLOGIST, task.id, {"decision": decision,
                                                     "comment": "Vérifié avec la console du scanner."})
    report = notify_stable_studies(dicom_ctx, clock.now(), DELAY)
    if decision == "attach":
        assert report.released == [uid] and report.notified == [uid]
        assert open_tasks(dicom_ctx, case_id) == ["acquire_images"]  # the technologist still attests it
        assert case_data(dicom_ctx, case_id)["images"]["study_uid"] == uid
    else:
        assert report.rejected == [uid] and report.notified == []
        assert study(dicom_ctx, uid).status == "rejected"
        assert open_tasks(dicom_ctx, case_id) == ["acquire_images"]


# The service (SCP and stability thread together)

def test_the_service_starts_ticks_and_stops(dicom_ctx, storage):
    service = DicomService(dicom_ctx, "TELERAD", "127.0.0.1", 0, storage, stable_seconds=1, tick_seconds=0.05)
    service.start()
    try:
        assert echoscu(service.port).returncode == 0
        service.tick()
    finally:
        service.stop()
    assert service.scp.server is None


def test_settings_come_from_the_environment_and_bad_values_are_named(tmp_path):
    settings = DicomSettings.from_env({"TELERAD_DICOM_AE_TITLE": "PACS_TELE", "TELERAD_DICOM_PORT": "0",
                                       "TELERAD_DICOM_STABLE_SECONDS": "5", "TELERAD_INSTANCE_PATH": str(tmp_path)})
    assert (settings.ae_title, settings.port, settings.stable_seconds) == ("PACS_TELE", 0, 5.0)
    assert settings.storage_dir == tmp_path / "dicom"
    assert DicomSettings.from_env({}) == DicomSettings(storage_dir=DicomSettings.from_env({}).storage_dir)
    assert DicomSettings.from_env({}).port == 11112 and DicomSettings.from_env({}).ae_title == "TELERAD"
    for name, value in (("TELERAD_DICOM_PORT", "dicom"), ("TELERAD_DICOM_PORT", "70000"),
                        ("TELERAD_DICOM_STABLE_SECONDS", "-1"), ("TELERAD_DICOM_AE_TITLE", "A_TITLE_FAR_TOO_LONG")):
        with pytest.raises(ValueError, match=name):
            DicomSettings.from_env({name: value})
