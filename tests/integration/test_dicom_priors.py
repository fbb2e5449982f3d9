"""Prior exams from the site's PACS (issue 18, item 5) against a real PACS: Orthanc from Debian, started on free
loopback ports as CH de Brest's PACS (AE PACS_BREST), knowing Telerad's storage SCP as its move destination.

The demo case of Jean Quéré (accepted by dr.legall, a wrist radiograph, no IPP: queried by name and birth date)
gets the most relevant of his previous studies moved from Orthanc to Telerad by C-MOVE and attached as priors;
a study of another patient is never fetched, one of a namesake (same family name and birth date, another first
name) is held for the technologist. Skipped on a machine without Orthanc; under CI=true it must run."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
import requests
from sqlalchemy import select

from engine.store.models import AuditEvent
from integrations.dicom.pacs import case_priors, list_pacs, remove_pacs, set_pacs
from integrations.dicom.pacs_models import PriorFetch
from integrations.dicom.priors import PriorsSettings, fetch_priors
from integrations.dicom.stability import notify_stable_studies
from tests.demo_app import login
from tests.integration import dicom_support
from tests.integration.dicom_support import (
    DEMO_ACTORS,
    QUERE,
    check_identity,
    demo_case,
    justify_and_protocol,
    open_tasks,
    rewrite,
    study,
)
from tests.integration.test_dicomweb_orthanc import ORTHANC, START_SECONDS, _free_port

dicom_ctx, storage, scp, dicom_app = (dicom_support.dicom_ctx, dicom_support.storage, dicom_support.scp,
                                      dicom_support.dicom_app)  # fixtures
ADMIN = DEMO_ACTORS["admin"]
PACS_AE = "PACS_BREST"


@dataclass
class Pacs:
    rest: str
    dicom_port: int


@pytest.fixture
def pacs(tmp_path, scp) -> Iterator[Pacs]:
    """Orthanc as the site's PACS: C-FIND and C-MOVE SCP, Telerad's SCP declared as modality 'telerad'."""
    if not ORTHANC.exists():
        reason = "the prior exams tests need Debian's orthanc package (/usr/sbin/Orthanc)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run it: {reason}")
        pytest.skip(reason)
    folder = tmp_path / "orthanc"
    folder.mkdir()
    http_port, dicom_port = _free_port(), _free_port()
    config = {"Name": "pacs-brest", "HttpPort": http_port, "DicomPort": dicom_port, "DicomServerEnabled": True,
              "DicomAet": PACS_AE, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
              "StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "index"),
              "DicomModalities": {"telerad": ["TELERAD", "127.0.0.1", scp.port]}}
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = open(folder / "orthanc.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([str(ORTHANC), str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    rest = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        for _attempt in range(START_SECONDS * 10):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Orthanc did not start: {(folder / 'orthanc.log').read_text()[-2000:]}")
            try:
                if requests.get(f"{rest}/system", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield Pacs(rest, dicom_port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _upload(pacs: Pacs, folder: Path, name: str, **attributes: str) -> str:
    """One study of one instance stored in the PACS by its REST API; its Study Instance UID."""
    path = rewrite(folder, name, **attributes)
    answer = requests.post(f"{pacs.rest}/instances", data=path.read_bytes(), timeout=30)
    assert answer.ok, answer.text
    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)


def _chain(ctx, case_id: int) -> list[tuple[str, dict]]:
    with ctx.read() as session:
        return [(a, json.loads(d) if isinstance(d, str) else d) for a, d in session.execute(
            select(AuditEvent.action, AuditEvent.detail).where(AuditEvent.chain == case_id)
            .order_by(AuditEvent.seq)).all()]


def _global_actions(ctx) -> list[str]:
    with ctx.read() as session:
        return list(session.execute(select(AuditEvent.action).where(AuditEvent.chain == 0)
                                    .order_by(AuditEvent.seq)).scalars())


def _fetch_row(ctx, case_id: int) -> PriorFetch | None:
    with ctx.read() as session:
        return session.get(PriorFetch, case_id)


@pytest.mark.charter("CH-4.1.8")
def test_priors_are_fetched_from_the_site_pacs_attached_held_and_shown(dicom_ctx, pacs, tmp_path, dicom_app,
                                                                      clock):
    ctx = dicom_ctx
    case_id, accession = demo_case(ctx)
    files = tmp_path / "pacs-files"
    quere = dict(QUERE)
    recent_xr = _upload(pacs, files, "MR_small.dcm", Modality="CR", StudyDate="20240110",
                        StudyDescription="Poignet droit face profil", AccessionNumber="PACS-1", **quere)
    newest_ct = _upload(pacs, files, "CT_small.dcm", StudyDate="20250301", StudyDescription="Scanner thoracique",
                        AccessionNumber="PACS-2", **quere)
    old_xr = _upload(pacs, files, "MR_small.dcm", Modality="CR", StudyDate="20190601",
                     StudyDescription="Poignet droit", AccessionNumber="PACS-3", **quere)
    namesake = _upload(pacs, files, "MR_small.dcm", Modality="CR", StudyDate="20230415",
                       StudyDescription="Poignet gauche", AccessionNumber="PACS-4",
                       **{**quere, "PatientName": "QUERE^MARIE", "PatientSex": "F", "PatientID": "IPP-BREST-77"})
    other = _upload(pacs, files, "MR_small.dcm", Modality="CR", StudyDate="20240201", AccessionNumber="PACS-5",
                    PatientName="MARTIN^PAUL", PatientBirthDate="19700101", PatientID="IPP-BREST-9")
    # Nolwenn Le Bihan's case is accepted, her identity not checked yet: her prior waits for the check.
    unchecked_case, _accession = demo_case(ctx, "LE")
    unchecked = _upload(pacs, files, "CT_small.dcm", StudyDate="20220303", StudyDescription="Scanner abdominal",
                        AccessionNumber="PACS-6", PatientName="LE BIHAN^NOLWENN", PatientBirthDate="19790203",
                        PatientSex="F", PatientID="IPP-BREST-2")
    settings = PriorsSettings(max_studies=3)

    # No PACS declared for the site: nothing is queued, nothing is asked.
    report = fetch_priors(ctx, "TELERAD", settings)
    assert report.queued == [] and _fetch_row(ctx, case_id) is None

    # The PACS does not answer (nobody listens on its port): a retry is recorded, nothing crashes.
    set_pacs(ctx, ADMIN, "ch-brest", PACS_AE, "127.0.0.1", _free_port())
    report = fetch_priors(ctx, "TELERAD", settings)
    assert case_id in report.queued and case_id in report.retried
    row = _fetch_row(ctx, case_id)
    assert row.status == "pending" and row.attempts == 1 and "injoignable" in row.last_error
    assert fetch_priors(ctx, "TELERAD", settings).retried == []  # not due again before its delay

    # The PACS is declared with its real port; the next tick after the delay fetches.
    set_pacs(ctx, ADMIN, "ch-brest", PACS_AE, "127.0.0.1", pacs.dicom_port,
             dicomweb_url="http://127.0.0.1:8042/dicom-web")
    assert [(p.ae_title, p.port, p.dicomweb_url) for p in list_pacs(ctx)] \
        == [(PACS_AE, pacs.dicom_port, "http://127.0.0.1:8042/dicom-web")]
    clock.advance(minutes=2)
    report = fetch_priors(ctx, "TELERAD", settings)
    assert case_id in report.fetched
    assert _fetch_row(ctx, case_id).status == "done"

    # The case's modality (XR) first, then the newest: the two radiographs and the namesake's; the newer CT is left.
    priors = {p.study_uid: p for p in case_priors(ctx, case_id)}
    assert set(priors) == {recent_xr, old_xr, namesake}
    assert study(ctx, other) is None and study(ctx, newest_ct) is None  # never moved to Telerad
    for uid in (recent_xr, old_xr):
        received = study(ctx, uid)
        assert (received.case_id, received.status, priors[uid].status) == (case_id, "attached", "attached")
        assert received.notified_at is not None  # never sends images_received: the acquisition step still waits
    held = study(ctx, namesake)
    assert (held.case_id, held.status, priors[namesake].status) == (case_id, "held", "held")
    assert "prénom" in held.hold_reason and held.identity_case_id is not None
    assert priors[recent_xr].date == "2024-01-10" and priors[recent_xr].description == "Poignet droit face profil"
    assert open_tasks(ctx, case_id) == ["acquire_images"]

    chain = _chain(ctx, case_id)
    fetched = [d for a, d in chain if a == "dicom.priors_fetched"]
    assert len(fetched) == 1
    assert {s["study_uid"]: s["status"] for s in fetched[0]["studies"]} \
        == {recent_xr: "attached", old_xr: "attached", namesake: "held"}
    assert ("dicom.study_held", namesake) in [(a, d.get("study_uid")) for a, d in chain]
    assert "dicom.pacs_set" in _global_actions(ctx)

    # The prior of the case whose identity is not checked yet is held until the check (and, as for any image of
    # the case, until the radiologist's protocol), then attached by the stability tick, still without
    # images_received.
    waiting = study(ctx, unchecked)
    assert (waiting.case_id, waiting.status, waiting.identity_case_id) == (unchecked_case, "held", None)
    assert [p.status for p in case_priors(ctx, unchecked_case)] == ["held"]
    check_identity(ctx, unchecked_case)
    justify_and_protocol(ctx, unchecked_case)
    notify_stable_studies(ctx, clock.now(), 0)
    assert study(ctx, unchecked).status == "attached" and study(ctx, unchecked).notified_at is not None
    assert [p.status for p in case_priors(ctx, unchecked_case)] == ["attached"]

    # Fetched once: the next ticks do nothing for this case.
    clock.advance(hours=1)
    assert case_id not in fetch_priors(ctx, "TELERAD", settings).fetched

    # The case page lists them under "Examens antérieurs", apart from the case's own images.
    page = login(dicom_app, ctx, clock, "dr.legall").get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Examens antérieurs" in page
    assert "Poignet droit face profil" in page and "10/01/2024" in page and "01/06/2019" in page
    assert "Scanner thoracique" not in page
    assert accession  # the case's own accession number was excluded from the C-FIND answers


@pytest.mark.charter("CH-4.2.2")
def test_a_teleexpertise_gets_the_priors_of_the_requesting_site(dicom_ctx, pacs, tmp_path):
    from engine.services.instances import start_instance
    from tests.integration.dicom_support import complete_step

    ctx = dicom_ctx
    kermarrec = {"PatientName": "KERMARREC^YANN", "PatientBirthDate": "19500302", "PatientSex": "M",
                 "PatientID": "IPP-MORLAIX-7"}
    previous = _upload(pacs, tmp_path / "pacs-files", "CT_small.dcm", StudyDate="20230912",
                       StudyDescription="Scanner abdominal", AccessionNumber="MX-1", **kermarrec)
    set_pacs(ctx, ADMIN, "ch-morlaix", PACS_AE, "127.0.0.1", pacs.dicom_port)
    case_id = start_instance(ctx, DEMO_ACTORS["dr.kerbrat"], "teleexpertise", {}, site_id="ch-morlaix")
    assert case_id not in fetch_priors(ctx, "TELERAD").queued  # no request yet: no patient to look for
    complete_step(ctx, case_id, "te_request", "dr.kerbrat", {
        "patient": {"birth_name": "KERMARREC", "first_names": "Yann", "birth_date": "1950-03-02", "sex": "M",
                    "site_patient_id": "IPP-MORLAIX-7", "identity_status": "qualified"},
        "expert_id": "dr.legall", "question": "Lésion rénale gauche : kyste ou lésion tissulaire ?",
        "clinical_context": "Découverte fortuite.", "study_reference": "MX-2", "prior_imaging": "scanner 2023",
        "interventional_decision_possible": True})
    report = fetch_priors(ctx, "TELERAD")
    assert case_id in report.queued and case_id in report.fetched
    assert [(p.study_uid, p.status, p.modality) for p in case_priors(ctx, case_id)] == [(previous, "attached", "CT")]
    assert study(ctx, previous).case_id == case_id
    assert "dicom.priors_fetched" in [a for a, _d in _chain(ctx, case_id)]


def test_pacs_administration_is_for_administrators_and_audited(dicom_ctx):
    ctx = dicom_ctx
    from engine.errors import Forbidden, NotFound
    from integrations.dicom.callers import CallerError, caller_access

    with pytest.raises(Forbidden):
        set_pacs(ctx, DEMO_ACTORS["dr.legall"], "ch-brest", PACS_AE, "127.0.0.1", 4242)
    for host, port, url in (("", 4242, None), ("127.0.0.1", 0, None), ("127.0.0.1", "x", None),
                            ("127.0.0.1", 4242, "ftp://pacs")):
        with pytest.raises(CallerError):
            set_pacs(ctx, ADMIN, "ch-brest", PACS_AE, host, port, url)
    with pytest.raises(CallerError):
        set_pacs(ctx, ADMIN, "nowhere", PACS_AE, "127.0.0.1", 4242)
    with pytest.raises(CallerError):  # a calling AE title of Brest's may not be Morlaix's PACS
        set_pacs(ctx, ADMIN, "ch-morlaix", caller_of_brest(ctx), "127.0.0.1", 4242)
    set_pacs(ctx, ADMIN, "ch-brest", PACS_AE, "pacs.chu-brest.example", 104)
    assert caller_access(ctx, PACS_AE).site_id == "ch-brest"  # it may send the moved studies
    remove_pacs(ctx, ADMIN, "ch-brest")
    assert list_pacs(ctx) == []
    with pytest.raises(NotFound):
        remove_pacs(ctx, ADMIN, "ch-brest")
    assert [a for a in _global_actions(ctx) if a.startswith("dicom.pacs")] == ["dicom.pacs_set", "dicom.pacs_removed"]


def caller_of_brest(ctx) -> str:
    from integrations.dicom.callers import list_calling_aes

    return next(c.ae_title for c in list_calling_aes(ctx) if c.site_id == "ch-brest")


def test_priors_setting():
    assert PriorsSettings.from_env({}).max_studies == 3
    assert PriorsSettings.from_env({"TELERAD_PRIORS_MAX": "5"}).max_studies == 5
    for bad in ("-1", "21", "trois"):
        with pytest.raises(ValueError, match="TELERAD_PRIORS_MAX"):
            PriorsSettings.from_env({"TELERAD_PRIORS_MAX": bad})
