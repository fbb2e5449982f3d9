"""The query/retrieve SCP against DCMTK's findscu, getscu and movescu, with storescp as the viewing station a
C-MOVE sends to (issue 18, item 2; CH-4.1.11, CH-5.3, CH-8.1): the owner of a registered station finds and
retrieves the studies of the cases he may see, a radiologist of another site finds and moves nothing, a move to
an unknown station or to one whose owner may not see the case is refused, an unknown caller is rejected."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select

from engine.errors import Forbidden, NotFound
from engine.services.cases import ensure_visible
from engine.store.models import AuditEvent
from integrations.dicom.workstations import WorkstationError, add_workstation, list_workstations
from tests.integration import dicom_support
from tests.integration.dicom_support import (
    DEMO_ACTORS,
    audit_actions,
    demo_case,
    for_case,
    require_dcmtk,
    rewrite,
    storescu,
    study,
)

dicom_ctx = dicom_support.dicom_ctx  # fixture
scp = dicom_support.scp  # fixture
storage = dicom_support.storage  # fixture

FINDSCU, GETSCU, MOVESCU, STORESCP = "/usr/bin/findscu", "/usr/bin/getscu", "/usr/bin/movescu", "/usr/bin/storescp"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    require_dcmtk()
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def findscu(port: int, calling: str, keys: dict[str, str], folder: Path, *, model: str = "-S") -> list[pydicom.Dataset]:
    """The C-FIND responses, as extracted by findscu (rsp0001.dcm...)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = run([FINDSCU, model, "-aet", calling, "-aec", "TELERAD", "-X", "-od", str(folder),
                *[arg for key, value in keys.items() for arg in ("-k", f"{key}={value}")], "127.0.0.1", str(port)])
    assert done.returncode == 0, done.stderr
    return [pydicom.dcmread(path) for path in sorted(folder.glob("rsp*.dcm"))]


def getscu(port: int, calling: str, keys: dict[str, str], folder: Path) -> subprocess.CompletedProcess[str]:
    folder.mkdir(parents=True, exist_ok=True)
    return run([GETSCU, "-S", "-aet", calling, "-aec", "TELERAD", "-od", str(folder),
                *[arg for key, value in keys.items() for arg in ("-k", f"{key}={value}")], "127.0.0.1", str(port)])


def movescu(port: int, calling: str, destination: str, keys: dict[str, str]) -> dict[str, str]:
    """The final C-MOVE response as movescu prints it (debug): its DIMSE status and sub-operation counts."""
    done = run([MOVESCU, "-d", "-S", "-aet", calling, "-aec", "TELERAD", "-aem", destination,
                *[arg for key, value in keys.items() for arg in ("-k", f"{key}={value}")], "127.0.0.1", str(port)])
    final = done.stderr.rpartition("Received Final Move Response")[2]
    fields = dict(re.findall(r"D: (DIMSE Status|\w+ Suboperations)\s*: (\S+)", final))
    assert "DIMSE Status" in fields, done.stderr[-2000:]
    return fields


@pytest.fixture
def station(tmp_path):
    """storescp listening on a free port as a viewing station: (AE title, port, the folder it writes to)."""
    require_dcmtk()
    processes = []

    def start(ae_title: str) -> tuple[int, Path]:
        port, folder = free_port(), tmp_path / f"station-{ae_title}"
        folder.mkdir()
        process = subprocess.Popen([STORESCP, "-aet", ae_title, "-od", str(folder), "+B", str(port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(process)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # bounded wait for the listener
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return port, folder
            time.sleep(0.05)
        raise AssertionError("storescp did not start")

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def received_study(scp, dicom_ctx, tmp_path):
    """The demo case of Jean Quéré (waiting for its images, identity checked) with a 2-image CT study attached:
    (case id, study UID)."""
    case_id, accession = demo_case(dicom_ctx)
    uid = generate_uid()
    series = generate_uid()
    files = [rewrite(tmp_path / "send", "CT_small.dcm", study=uid, series=series, InstanceNumber=number,
                     **for_case(accession)) for number in (1, 2)]
    sent = storescu(scp.port, *files)
    assert sent.returncode == 0, sent.stderr
    assert study(dicom_ctx, uid).status == "attached"
    return case_id, uid


def register(ctx, username: str, ae_title: str, port: int, host: str = "127.0.0.1") -> None:
    add_workstation(ctx, DEMO_ACTORS[username], username, ae_title, host, port)


@pytest.mark.charter("CH-4.1.11")
def test_the_owner_finds_and_retrieves_his_visible_study(scp, dicom_ctx, received_study, station, tmp_path):
    case_id, uid = received_study
    ensure_visible(dicom_ctx, DEMO_ACTORS["dr.legall"], case_id)  # offered the case's next step
    port, folder = station("LEGALL_WS")
    register(dicom_ctx, "dr.legall", "LEGALL_WS", port)

    studies = findscu(scp.port, "LEGALL_WS", {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "",
                                              "PatientName": "QUERE*", "PatientID": "", "AccessionNumber": "",
                                              "ModalitiesInStudy": "", "NumberOfStudyRelatedInstances": "",
                                              "StudyDate": ""}, tmp_path / "find-study")
    assert [(s.StudyInstanceUID, s.PatientID, s.ModalitiesInStudy, s.NumberOfStudyRelatedInstances, s.StudyDate)
            for s in studies] == [(uid, "IPP-BREST-1", "CT", 2, "")]
    assert studies[0].RetrieveAETitle == "TELERAD"
    assert findscu(scp.port, "LEGALL_WS", {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "",
                                           "PatientName": "DUPONT*"}, tmp_path / "find-none") == []
    series = findscu(scp.port, "LEGALL_WS", {"QueryRetrieveLevel": "SERIES", "StudyInstanceUID": uid,
                                             "SeriesInstanceUID": "", "Modality": "",
                                             "NumberOfSeriesRelatedInstances": ""}, tmp_path / "find-series")
    assert [(s.Modality, s.NumberOfSeriesRelatedInstances) for s in series] == [("CT", 2)]
    images = findscu(scp.port, "LEGALL_WS", {"QueryRetrieveLevel": "IMAGE", "StudyInstanceUID": uid,
                                             "SeriesInstanceUID": series[0].SeriesInstanceUID, "SOPInstanceUID": "",
                                             "InstanceNumber": ""}, tmp_path / "find-images")
    assert sorted(int(i.InstanceNumber) for i in images) == [1, 2]
    patients = findscu(scp.port, "LEGALL_WS", {"QueryRetrieveLevel": "PATIENT", "PatientID": "IPP-BREST-1",
                                               "PatientName": "", "NumberOfPatientRelatedStudies": ""},
                       tmp_path / "find-patient", model="-P")
    assert [(p.PatientName, p.NumberOfPatientRelatedStudies) for p in patients] == [("QUERE^JEAN", 1)]
    for key, status in (("QueryRetrieveLevel=FRAME", "DataSetDoesNotMatchSOPClass"),  # 0xA900
                        ("PatientBirthDate=1960", "UnableToProcess")):  # 0xC000
        bad = run([FINDSCU, "-v", "-S", "-aet", "LEGALL_WS", "-aec", "TELERAD", "-k", "QueryRetrieveLevel=STUDY",
                   "-k", key, "127.0.0.1", str(scp.port)])
        assert "Final Find Response (" in bad.stderr and status in bad.stderr, bad.stderr

    got = getscu(scp.port, "LEGALL_WS", {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": uid}, tmp_path / "get")
    assert got.returncode == 0, got.stderr
    received = sorted(pydicom.dcmread(p).SOPInstanceUID for p in (tmp_path / "get").iterdir())
    assert received == sorted(i.SOPInstanceUID for i in images)

    moved = movescu(scp.port, "LEGALL_WS", "LEGALL_WS", {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": uid})
    assert moved == {"DIMSE Status": "0x0000:", "Remaining Suboperations": "0", "Completed Suboperations": "2",
                     "Failed Suboperations": "0", "Warning Suboperations": "0"}
    assert sorted(pydicom.dcmread(p).SOPInstanceUID for p in folder.iterdir()) == received

    actions = audit_actions(dicom_ctx, case_id)
    assert actions.count("dicom.qr_find") == 4  # once per association and case (each findscu is one; DUPONT: none)
    assert actions.count("dicom.qr_get") == 1 and actions.count("dicom.qr_move") == 1
    with dicom_ctx.read() as session:
        actor, detail = session.execute(select(AuditEvent.actor, AuditEvent.detail).where(
            AuditEvent.chain == case_id, AuditEvent.action == "dicom.qr_move")).one()
    assert actor == "dr.legall"
    assert json.loads(detail) == {"calling_ae": "LEGALL_WS", "destination": "LEGALL_WS",
                                  "destination_owner": "dr.legall", "study_uids": [uid], "instances": 2}


@pytest.mark.charter("CH-5.3")
@pytest.mark.charter("CH-8.1")
def test_a_radiologist_of_another_site_finds_nothing_and_moves_nothing(scp, dicom_ctx, received_study, station,
                                                                       tmp_path):
    case_id, uid = received_study
    with pytest.raises(NotFound):
        ensure_visible(dicom_ctx, DEMO_ACTORS["dr.kerbrat"], case_id)  # local radiologist of CH de Morlaix
    port, folder = station("KERBRAT_WS")
    register(dicom_ctx, "dr.kerbrat", "KERBRAT_WS", port)
    assert findscu(scp.port, "KERBRAT_WS", {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "",
                                            "PatientName": ""}, tmp_path / "find") == []
    assert findscu(scp.port, "KERBRAT_WS", {"QueryRetrieveLevel": "PATIENT", "PatientID": "IPP-BREST-1"},
                   tmp_path / "find-patient", model="-P") == []
    got = getscu(scp.port, "KERBRAT_WS", {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": uid}, tmp_path / "get")
    assert got.returncode == 0, got.stderr
    assert list((tmp_path / "get").iterdir()) == []
    moved = movescu(scp.port, "KERBRAT_WS", "KERBRAT_WS", {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": uid})
    assert moved["DIMSE Status"] == "0x0000:" and moved.get("Completed Suboperations", "0") == "0"
    assert list(folder.iterdir()) == []
    assert not {"dicom.qr_find", "dicom.qr_get", "dicom.qr_move"} & set(audit_actions(dicom_ctx, case_id))


@pytest.mark.charter("CH-5.3")
@pytest.mark.charter("CH-8.1")
def test_moves_to_an_unknown_station_or_one_whose_owner_may_not_see_the_case_are_refused(
        scp, dicom_ctx, received_study, station):
    _case_id, uid = received_study
    legall_port, _legall_folder = station("LEGALL_WS")
    kerbrat_port, kerbrat_folder = station("KERBRAT_WS")
    register(dicom_ctx, "dr.legall", "LEGALL_WS", legall_port)
    register(dicom_ctx, "dr.kerbrat", "KERBRAT_WS", kerbrat_port)
    keys = {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": uid}
    for destination in ("NOBODY", "CT_BREST", "KERBRAT_WS"):
        moved = movescu(scp.port, "LEGALL_WS", destination, keys)
        assert moved["DIMSE Status"].lower() == "0xa801:", (destination, moved)
    assert list(kerbrat_folder.iterdir()) == []


@pytest.mark.charter("CH-5.3")
def test_unknown_callers_stations_elsewhere_and_modalities_are_kept_out(scp, dicom_ctx, received_study, tmp_path):
    _case_id, uid = received_study
    keys = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}"]
    intruder = run([FINDSCU, "-S", "-aet", "INTRUDER", "-aec", "TELERAD", *keys, "127.0.0.1", str(scp.port)])
    assert intruder.returncode != 0 and "Calling AE Title Not Recognized" in intruder.stderr
    register(dicom_ctx, "dr.legall", "FAR_WS", 104, host="192.0.2.7")  # registered for another host
    elsewhere = run([FINDSCU, "-S", "-aet", "FAR_WS", "-aec", "TELERAD", *keys, "127.0.0.1", str(scp.port)])
    assert elsewhere.returncode != 0 and "Calling AE Title Not Recognized" in elsewhere.stderr
    modality = run([FINDSCU, "-v", "-S", "-aet", "CT_BREST", "-aec", "TELERAD", "-X", "-od", str(tmp_path), *keys,
                    "127.0.0.1", str(scp.port)])
    assert "Final Find Response (Unknown Status: 0x124)" in modality.stderr, modality.stderr  # refused: not authorised
    assert not list(tmp_path.glob("rsp*.dcm"))
    got = run([GETSCU, "-v", "-S", "-aet", "CT_BREST", "-aec", "TELERAD", "-od", str(tmp_path), *keys, "127.0.0.1",
               str(scp.port)])
    assert "0x124" in got.stderr, got.stderr
    assert not list(tmp_path.glob("*.dcm")) and not list(tmp_path.glob("CT*"))


def test_who_may_register_a_station(dicom_ctx):
    register(dicom_ctx, "dr.legall", "LEGALL_WS", 11113)
    with pytest.raises(Forbidden):  # not for someone else
        add_workstation(dicom_ctx, DEMO_ACTORS["dr.legall"], "dr.morvan", "MORVAN_WS", "127.0.0.1", 11114)
    with pytest.raises(Forbidden):  # not a radiologist
        add_workstation(dicom_ctx, DEMO_ACTORS["merm.leroy"], "merm.leroy", "LEROY_WS", "127.0.0.1", 11114)
    with pytest.raises(WorkstationError):  # an administrator, but for an account that is no radiologist's
        add_workstation(dicom_ctx, DEMO_ACTORS["admin"], "merm.leroy", "LEROY_WS", "127.0.0.1", 11114)
    add_workstation(dicom_ctx, DEMO_ACTORS["admin"], "dr.morvan", "MORVAN_WS", "10.29.4.17", 11114)
    for title, host, port in (("LEGALL_WS", "127.0.0.1", 1), ("CT_BREST", "127.0.0.1", 1),
                              ("BAD\\TITLE", "127.0.0.1", 1), ("OK_WS", "not a host", 1), ("OK_WS", "::1", 0)):
        with pytest.raises(WorkstationError):
            add_workstation(dicom_ctx, DEMO_ACTORS["dr.legall"], "dr.legall", title, host, port)
    assert [w.ae_title for w in list_workstations(dicom_ctx, DEMO_ACTORS["dr.legall"])] == ["LEGALL_WS"]
    assert [w.ae_title for w in list_workstations(dicom_ctx, DEMO_ACTORS["admin"])] == ["LEGALL_WS", "MORVAN_WS"]
