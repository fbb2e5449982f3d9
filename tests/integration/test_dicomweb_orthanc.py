"""Telerad's DICOMweb against a second implementation: Orthanc from Debian with its DICOMweb plugin, started on
free loopback ports, holding the same instances (stored through its REST API). The same queries with the same
client (dicomweb-client) give the same studies, series and instances with the same key attributes, and WADO-RS
gives the same instances and frames. Skipped on a machine without Orthanc; under CI=true it must run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from tests.integration import dicom_support
from tests.integration.test_dicomweb import STUDY_DATE, Served, served  # noqa: F401 (fixture)

dicom_ctx = dicom_support.dicom_ctx  # fixture
ORTHANC = Path("/usr/sbin/Orthanc")
PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
START_SECONDS = 30


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def orthanc(tmp_path) -> Iterator[str]:
    """Orthanc with its DICOMweb plugin on a free loopback port; its DICOMweb root URL."""
    if not (ORTHANC.exists() and PLUGIN.exists()):
        reason = "the Orthanc comparison needs Debian's orthanc and orthanc-dicomweb packages"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run it: {reason}")
        pytest.skip(reason)
    folder = tmp_path / "orthanc"
    folder.mkdir()
    http_port = _free_port()
    config = {"Name": "telerad-test", "HttpPort": http_port, "DicomPort": _free_port(), "DicomServerEnabled": False,
              "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
              "StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "index"),
              "Plugins": [str(PLUGIN)], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = open(folder / "orthanc.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([str(ORTHANC), str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        for _attempt in range(START_SECONDS * 10):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Orthanc did not start: {(folder / 'orthanc.log').read_text()[-2000:]}")
            try:
                if requests.get(f"{base}/system", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield f"{base}/dicom-web"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _store_in_orthanc(root: str, files: list[Path]) -> None:
    rest = root.removesuffix("/dicom-web")
    for path in files:
        answer = requests.post(f"{rest}/instances", data=path.read_bytes(), timeout=30)
        assert answer.ok, answer.text


def _values(answer: dict, *tags: str) -> tuple:
    """The values of these tags in a DICOM JSON object (None when absent or empty)."""
    return tuple(tuple(answer.get(tag, {}).get("Value") or ()) or None for tag in tags)


def _by(answers: list[dict], tag: str, *keys: str) -> dict:
    return {answer[tag]["Value"][0]: _values(answer, *keys) for answer in answers}


STUDY_KEYS = ("00100020", "00100010", "00080050", "00080020", "00201206", "00201208")
SERIES_KEYS = ("00080060", "0020000D", "00200011", "00201209")
INSTANCE_KEYS = ("00080016", "00200013", "0020000E", "0020000D")


@pytest.mark.charter("CH-4.1.11")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the database is compared in test_dicomweb
def test_the_same_answers_as_orthanc(served: Served, orthanc):  # noqa: F811
    _store_in_orthanc(orthanc, served.files)
    ours, theirs = served.client(served.token("merm.leroy")), DICOMwebClient(orthanc)
    fields = ["NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances", "ModalitiesInStudy"]
    for filters in ({}, {"PatientID": "IPP-BREST-1"}, {"AccessionNumber": served.accession},
                    {"StudyDate": "20240101-20240131"}, {"StudyDate": "20250101-"}, {"ModalitiesInStudy": "CT"},
                    {"ModalitiesInStudy": "MR"}, {"StudyInstanceUID": served.study_uid}):
        mine = ours.search_for_studies(search_filters=filters, fields=fields)
        other = theirs.search_for_studies(search_filters=filters, fields=fields)
        assert _by(mine, "0020000D", *STUDY_KEYS) == _by(other, "0020000D", *STUDY_KEYS), filters
        assert [sorted(a["00080061"]["Value"]) for a in mine] == [sorted(a["00080061"]["Value"]) for a in other]
    # Orthanc takes a wildcard only unencoded (dicomweb-client sends "*" as %2A, which Orthanc matches literally).
    for query in ("PatientName=QUER*", "PatientName=QU?RE*", "PatientID=IPP-*", "PatientName=MARTIN*"):
        mine = requests.get(f"{served.url}/studies?{query}", headers=ours._session.headers, timeout=30)
        other = requests.get(f"{orthanc}/studies?{query}", timeout=30)
        assert _by(mine.json() if mine.content else [], "0020000D", *STUDY_KEYS[:4]) \
            == _by(other.json() if other.content else [], "0020000D", *STUDY_KEYS[:4]), query
    series_fields = ["NumberOfSeriesRelatedInstances"]
    for filters in ({}, {"Modality": "CT"}, {"Modality": "OT"}):
        mine = ours.search_for_series(served.study_uid, search_filters=filters, fields=series_fields)
        other = theirs.search_for_series(served.study_uid, search_filters=filters, fields=series_fields)
        assert _by(mine, "0020000E", *SERIES_KEYS) == _by(other, "0020000E", *SERIES_KEYS), filters
    series_uids = [a["0020000E"]["Value"][0] for a in ours.search_for_series(served.study_uid)]
    for series_uid in series_uids:
        mine = ours.search_for_instances(served.study_uid, series_uid)
        other = theirs.search_for_instances(served.study_uid, series_uid)
        assert _by(mine, "00080018", *INSTANCE_KEYS) == _by(other, "00080018", *INSTANCE_KEYS)
    assert _by(ours.search_for_instances(served.study_uid), "00080018", *INSTANCE_KEYS) \
        == _by(theirs.search_for_instances(served.study_uid), "00080018", *INSTANCE_KEYS)
    # WADO-RS: the same instances, the same pixel data, the same native frames, the same metadata values. Telerad
    # does not transcode: both are asked for the stored transfer syntaxes (transfer-syntax=*).
    stored = (("application/dicom", "*"),)
    mine = {d.SOPInstanceUID: d for d in ours.retrieve_study(served.study_uid, media_types=stored)}
    other = {d.SOPInstanceUID: d for d in theirs.retrieve_study(served.study_uid, media_types=stored)}
    assert sorted(mine) == sorted(other) == sorted(pydicom.dcmread(p).SOPInstanceUID for p in served.files)
    for uid, dataset in mine.items():
        assert dataset.file_meta.TransferSyntaxUID == other[uid].file_meta.TransferSyntaxUID
        assert dataset.PixelData == other[uid].PixelData and dataset.SeriesInstanceUID == other[uid].SeriesInstanceUID
    # Without a transfer syntax named, both decode the compressed instance to explicit VR little endian.
    mine = {d.SOPInstanceUID: d for d in ours.retrieve_study(served.study_uid)}
    other = {d.SOPInstanceUID: d for d in theirs.retrieve_study(served.study_uid)}
    for uid, dataset in mine.items():
        assert dataset.file_meta.TransferSyntaxUID == other[uid].file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert (dataset.pixel_array == other[uid].pixel_array).all()
    multi = pydicom.dcmread(served.files[1])
    native = (("application/octet-stream", "1.2.840.10008.1.2.1"),)
    mine_frames, other_frames = (client.retrieve_instance_frames(served.study_uid, multi.SeriesInstanceUID,
                                                                 multi.SOPInstanceUID, [2, 3], media_types=native)
                                 for client in (ours, theirs))
    assert mine_frames == other_frames and len(mine_frames) == 2 and mine_frames[0] != mine_frames[1]
    compared = ("00080018", "00280010", "00280011", "00280008", "00180050", "00281050", "00100020")
    for series_uid in series_uids:
        mine_meta = ours.retrieve_series_metadata(served.study_uid, series_uid)
        other_meta = theirs.retrieve_series_metadata(served.study_uid, series_uid)
        assert _by(mine_meta, "00080018", *compared) == _by(other_meta, "00080018", *compared)
    assert STUDY_DATE in json.dumps(ours.search_for_studies())
