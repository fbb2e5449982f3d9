"""DICOMweb under /dicomweb with a real client (dicomweb-client from PyPI) against the Flask app served by
Werkzeug on a loopback port: QIDO-RS, WADO-RS (instances, frames, metadata, rendered), WADO-URI, STOW-RS, and
the refusals: another site's radiologist sees nothing, a held study is never served, no credentials get 401, a
read token cannot store, bad keys and UIDs get 400 (CH-5.3, CH-8.1, CH-4.1.11)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid
from werkzeug.serving import make_server

from engine.domain.actors import Actor
from engine.services.accounts import issue_api_token
from integrations.dicom.upload import upload_files
from integrations.dicomweb import audit as dicomweb_audit
from tests.demo_app import login
from tests.integration import dicom_support
from tests.integration.dicom_support import audit_actions, demo_case, for_case, rewrite, study

dicom_ctx = dicom_support.dicom_ctx  # fixture
TECHNOLOGIST = Actor("merm.leroy", frozenset({"technologist"}), frozenset({"ch-brest"}))
# The test files: a single-frame CT, a 3-frame CT made from it (native pixel data, each frame different) and a
# 2-frame RLE-compressed colour image.
FILES = ("CT_small.dcm", "CT_small.dcm", "SC_rgb_rle_2frame.dcm")
STUDY_DATE = "20240110"


def multi_frame(path: Path, frames: int = 3) -> Path:
    """Rewrite a single-frame native file as `frames` frames, frame n holding the pixels plus n."""
    dataset = pydicom.dcmread(path)
    pixels = dataset.pixel_array
    dataset.NumberOfFrames = frames
    dataset.PixelData = b"".join((pixels + n).astype(pixels.dtype).tobytes() for n in range(frames))
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dataset.InstanceNumber = 2
    dataset.save_as(path, enforce_file_format=True)
    return path


@dataclass
class Served:
    url: str
    ctx: object
    app: object
    case_id: int
    accession: str
    study_uid: str
    files: list[Path]
    storage: Path
    issued: int = 0

    def client(self, token: str) -> DICOMwebClient:
        return DICOMwebClient(self.url, headers={"Authorization": f"Bearer {token}"})

    def token(self, username: str, scope: str = "read") -> str:
        self.issued += 1
        return issue_api_token(self.ctx, username, f"dicomweb-{self.issued}", scope=scope)


@pytest.fixture
def served(dicom_ctx, database_url, tmp_path) -> Iterator[Served]:
    """A demo case (Jean Quéré, CH de Brest) with one attached study of three instances, and the app served on a
    free loopback port."""
    dicomweb_audit.forget()
    case_id, accession = demo_case(dicom_ctx)
    study_uid = generate_uid()
    ct_series = generate_uid()
    files = [rewrite(tmp_path / "src", name, study=study_uid, series=ct_series if name.startswith("CT") else None,
                     **for_case(accession, StudyDate=STUDY_DATE)) for name in FILES]
    multi_frame(files[1])
    storage = tmp_path / "instance" / "dicom"
    summary = upload_files(dicom_ctx, TECHNOLOGIST, case_id, [(p.name, io.BytesIO(p.read_bytes())) for p in files],
                           storage)
    assert summary.stored == len(FILES), summary.french()
    assert study(dicom_ctx, study_uid).status == "attached"
    app = dicom_support.web_app(dicom_ctx, database_url, tmp_path)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_port}/dicomweb", dicom_ctx, app, case_id, accession,
                     study_uid, files, storage)
    finally:
        server.shutdown()
        thread.join(timeout=10)


def _browser(served: Served, clock, username: str) -> requests.Session:
    """A requests session holding the session cookie of `username` signed in on the pages (both factors)."""
    signed_in = login(served.app, served.ctx, clock, username)
    browser = requests.Session()
    browser.cookies.set("telerad_session", signed_in.get_cookie("telerad_session").value, domain="127.0.0.1")
    return browser


def _frame_bytes(path: Path, number: int) -> bytes:
    dataset = pydicom.dcmread(path)
    size = dataset.Rows * dataset.Columns * dataset.BitsAllocated // 8
    return dataset.PixelData[(number - 1) * size:number * size]


@pytest.mark.charter("CH-4.1.11")
def test_qido_and_wado_with_a_real_client(served, clock):
    client = served.client(served.token("merm.leroy"))
    ct, multi, rle = (pydicom.dcmread(p) for p in served.files)
    # QIDO-RS, study level: the index and the files' headers.
    (found,) = client.search_for_studies()
    assert found["0020000D"]["Value"] == [served.study_uid]
    assert found["00100020"]["Value"] == ["IPP-BREST-1"] and found["00080050"]["Value"] == [served.accession]
    assert found["00100010"]["Value"] == [{"Alphabetic": "QUERE^JEAN"}]
    assert found["00080020"]["Value"] == [STUDY_DATE]
    assert sorted(found["00080061"]["Value"]) == ["CT", "OT"]
    assert (found["00201206"]["Value"], found["00201208"]["Value"]) == ([2], [3])
    assert found["00081190"]["Value"][0].endswith(f"/dicomweb/studies/{served.study_uid}")  # the client drops the port
    for filters in ({"PatientName": "QUER*"}, {"PatientName": "quere^jean"}, {"PatientID": "IPP-BREST-1"},
                    {"AccessionNumber": served.accession}, {"StudyDate": "20240101-20240131"},
                    {"StudyDate": "-20240110"}, {"ModalitiesInStudy": "CT"}, {"StudyInstanceUID": served.study_uid}):
        assert len(client.search_for_studies(search_filters=filters)) == 1, filters
    for filters in ({"PatientName": "MARTIN*"}, {"PatientID": "IPP-BREST-2"}, {"StudyDate": "20240111-"},
                    {"ModalitiesInStudy": "MR"}, {"AccessionNumber": "X" + served.accession}):
        assert client.search_for_studies(search_filters=filters) == [], filters
    assert client.search_for_studies(offset=1) == []
    # Series and instances, under the study and at the top level; includefield.
    series = client.search_for_series(served.study_uid)
    assert sorted((s["00080060"]["Value"], s["00201209"]["Value"]) for s in series) == [(["CT"], [2]), (["OT"], [1])]
    assert len(client.search_for_series(served.study_uid, search_filters={"Modality": "OT"})) == 1
    instances = client.search_for_instances(served.study_uid, ct.SeriesInstanceUID, fields=["00180050", "Rows"])
    assert [i["00080018"]["Value"] for i in instances] == [[ct.SOPInstanceUID], [multi.SOPInstanceUID]]
    assert instances[0]["00180050"]["Value"] == [float(ct.SliceThickness)]
    assert instances[1]["00280008"]["Value"] == [3]
    assert len(client.search_for_instances(served.study_uid)) == 3
    (top,) = client.search_for_instances(search_filters={"SOPInstanceUID": rle.SOPInstanceUID})
    assert top["0020000E"]["Value"] == [rle.SeriesInstanceUID]
    assert len(client.search_for_series(search_filters={"PatientID": "IPP-BREST-1"})) == 2
    # WADO-RS: the stored files, as they were received.
    retrieved = client.retrieve_instance(served.study_uid, ct.SeriesInstanceUID, ct.SOPInstanceUID)
    assert retrieved.SOPInstanceUID == ct.SOPInstanceUID and retrieved.PixelData == ct.PixelData
    as_stored = client.retrieve_study(served.study_uid, media_types=(("application/dicom", "*"),))
    assert sorted(d.SOPInstanceUID for d in as_stored) == sorted(d.SOPInstanceUID for d in (ct, multi, rle))
    assert {d.file_meta.TransferSyntaxUID for d in as_stored} == {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2.5"}
    # Without a transfer syntax named (PS3.18's default), the compressed instance is decoded in a limited child.
    whole = {d.SOPInstanceUID: d for d in client.retrieve_study(served.study_uid)}
    assert {d.file_meta.TransferSyntaxUID for d in whole.values()} == {"1.2.840.10008.1.2.1"}
    decoded = whole[rle.SOPInstanceUID]
    assert (decoded.pixel_array == rle.pixel_array).all() and decoded.SOPInstanceUID == rle.SOPInstanceUID
    frames = client.retrieve_instance_frames(served.study_uid, ct.SeriesInstanceUID, multi.SOPInstanceUID, [3, 1])
    assert frames == [_frame_bytes(served.files[1], 3), _frame_bytes(served.files[1], 1)]
    assert frames[0] != frames[1]
    compressed = client.retrieve_instance_frames(served.study_uid, rle.SeriesInstanceUID, rle.SOPInstanceUID, [2],
                                                 media_types=(("application/octet-stream", "*"),))
    assert compressed == [list(pydicom.encaps.generate_frames(rle.PixelData, number_of_frames=2))[1]]
    metadata = client.retrieve_series_metadata(served.study_uid, ct.SeriesInstanceUID)
    assert [m["00080018"]["Value"] for m in metadata] == [[ct.SOPInstanceUID], [multi.SOPInstanceUID]]
    assert metadata[0]["00180050"]["Value"] == [float(ct.SliceThickness)]
    assert "BulkDataURI" in metadata[0]["7FE00010"] and "InlineBinary" not in metadata[0]["7FE00010"]
    png = client.retrieve_instance_rendered(served.study_uid, ct.SeriesInstanceUID, ct.SOPInstanceUID,
                                            media_types=("image/png",))
    assert png.startswith(b"\x89PNG")
    # WADO-URI: the file itself.
    uri = requests.get(f"{served.url}/wado", params={
        "requestType": "WADO", "studyUID": served.study_uid, "seriesUID": ct.SeriesInstanceUID,
        "objectUID": ct.SOPInstanceUID, "contentType": "application/dicom"}, headers=client._session.headers,
        timeout=30)
    assert uri.status_code == 200 and uri.content == served.files[0].read_bytes()
    jpeg = requests.get(f"{served.url}/wado", params={
        "requestType": "WADO", "studyUID": served.study_uid, "seriesUID": ct.SeriesInstanceUID,
        "objectUID": ct.SOPInstanceUID}, headers=client._session.headers, timeout=30)
    assert jpeg.headers["Content-Type"] == "image/jpeg" and jpeg.content.startswith(b"\xff\xd8")
    # No transcoding but to explicit VR little endian for whole instances: a compressed instance asked for in
    # another syntax, or a compressed frame asked for as native pixel data, gets 406.
    rle_path = f"{served.url}/studies/{served.study_uid}/series/{rle.SeriesInstanceUID}/instances/{rle.SOPInstanceUID}"
    jpeg_baseline = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
    for path, accept in ((rle_path, jpeg_baseline),
                         (rle_path + "/frames/1", 'multipart/related; type="application/octet-stream"')):
        refused = requests.get(path, headers={**client._session.headers, "Accept": accept}, timeout=30)
        assert refused.status_code == 406 and refused.json()["error"] == "not_acceptable"
    empty = requests.get(f"{served.url}/studies?PatientID=NOBODY", headers=client._session.headers, timeout=30)
    assert empty.status_code == 204 and empty.content == b""
    # Audited on the case's chain, once per kind within the window whatever the number of requests.
    actions = audit_actions(served.ctx, served.case_id)
    assert actions.count("dicomweb.accessed") == 6  # query, instances, frames, metadata, rendered, wado-uri
    clock.advance(minutes=6)
    client.search_for_studies()
    assert audit_actions(served.ctx, served.case_id).count("dicomweb.accessed") == 7


@pytest.mark.charter("CH-4.1.11")
def test_stow_stores_through_the_upload_path(served, clock, tmp_path):
    act = served.client(served.token("merm.leroy", "act"))
    new_study = generate_uid()
    sent = pydicom.dcmread(rewrite(tmp_path / "stow", "CT_small.dcm", study=new_study,
                                   **for_case(served.accession, StudyDate=STUDY_DATE)))
    answer = act.store_instances([sent])
    (stored,) = answer.ReferencedSOPSequence
    assert stored.ReferencedSOPInstanceUID == sent.SOPInstanceUID and "FailedSOPSequence" not in answer
    assert study(served.ctx, new_study).status == "attached" and study(served.ctx, new_study).case_id \
        == served.case_id
    assert act.retrieve_instance(new_study, sent.SeriesInstanceUID, sent.SOPInstanceUID).PixelData \
        == sent.PixelData
    assert "dicom.uploaded" in audit_actions(served.ctx, served.case_id)
    # A read token cannot store; a part that is not DICOM fails (409: nothing stored).
    with pytest.raises(requests.HTTPError) as refused:
        served.client(served.token("merm.leroy", "read")).store_instances([sent])
    assert refused.value.response.status_code == 403
    garbage = requests.post(f"{served.url}/studies", data=b"--b\r\nContent-Type: application/dicom\r\n\r\n"
                            b"not dicom\r\n--b--\r\n", timeout=30, headers={
                                **act._session.headers, "Content-Type": 'multipart/related; type="application/dicom"; '
                                                                        "boundary=b"})
    assert garbage.status_code == 409
    assert garbage.json()["00081198"]["Value"][0]["00081197"]["Value"] == [0xC000]
    # Another patient's study sent to the case is stored but held for the identity check: never served.
    stranger_study = generate_uid()
    stranger = rewrite(tmp_path / "stow", "CT_small.dcm", study=stranger_study,
                       **for_case(served.accession, PatientName="AUTRE^PATIENT"))
    held = requests.post(f"{served.url}/studies", timeout=30, headers={
        **act._session.headers, "Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
        data=b"--b\r\nContent-Type: application/dicom\r\n\r\n" + stranger.read_bytes() + b"\r\n--b--\r\n")
    assert held.status_code == 200 and study(served.ctx, stranger_study).status == "held"
    assert act.search_for_studies(search_filters={"StudyInstanceUID": stranger_study}) == []
    # With the browser's session, a store needs the CSRF token.
    browser = _browser(served, clock, "merm.leroy")
    served.app.config["WTF_CSRF_ENABLED"] = True
    body = io.BytesIO()
    sent.SOPInstanceUID = sent.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    sent.save_as(body, enforce_file_format=True)
    part = b"--b\r\nContent-Type: application/dicom\r\n\r\n" + body.getvalue() + b"\r\n--b--\r\n"
    headers = {"Content-Type": 'multipart/related; type="application/dicom"; boundary=b',
               "Accept": "application/dicom+json"}
    no_token = browser.post(f"{served.url}/studies/{new_study}", data=part, headers=headers, timeout=30)
    assert no_token.status_code == 403 and no_token.json()["error"] == "csrf"
    page = browser.get(served.url.replace("/dicomweb", "/"), timeout=30).text
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    with_token = browser.post(f"{served.url}/studies/{new_study}", data=part, timeout=30,
                              headers={**headers, "X-CSRFToken": token})
    assert with_token.status_code == 200, with_token.text
    assert with_token.headers["Content-Type"].startswith("application/dicom+json")


@pytest.mark.charter("CH-8.1", negative=True)
@pytest.mark.charter("CH-5.3", negative=True)
def test_nothing_is_served_to_whom_may_not_see_it(served, clock, tmp_path):
    ct = pydicom.dcmread(served.files[0])
    series, sop = ct.SeriesInstanceUID, ct.SOPInstanceUID
    paths = [f"/studies/{served.study_uid}", f"/studies/{served.study_uid}/series/{series}",
             f"/studies/{served.study_uid}/series/{series}/instances/{sop}",
             f"/studies/{served.study_uid}/metadata", f"/studies/{served.study_uid}/series/{series}/metadata",
             f"/studies/{served.study_uid}/series/{series}/instances/{sop}/metadata",
             f"/studies/{served.study_uid}/series/{series}/instances/{sop}/frames/1",
             f"/studies/{served.study_uid}/series/{series}/instances/{sop}/rendered",
             f"/studies/{served.study_uid}/series", f"/studies/{served.study_uid}/instances",
             f"/studies/{served.study_uid}/series/{series}/instances",
             f"/wado?requestType=WADO&studyUID={served.study_uid}&seriesUID={series}&objectUID={sop}"]
    # Radiologists of another site (or territory): nothing listed, every resource 404 (as an unknown UID).
    for username in ("dr.kerbrat", "dr.morvan"):
        other = served.client(served.token(username))
        assert other.search_for_studies() == [] and other.search_for_series() == []
        assert other.search_for_instances() == [], username
    headers = {"Authorization": f"Bearer {served.token('dr.kerbrat')}"}
    unknown = generate_uid()
    for path in paths:
        answer = requests.get(served.url + path, headers=headers, timeout=30)
        assert answer.status_code == 404 and answer.json()["error"] == "not_found", path
        assert requests.get(served.url + path.replace(served.study_uid, unknown), headers=headers,
                            timeout=30).status_code == 404
    # No credentials: 401 (never the login page); a session for a person who may see it works.
    for path in paths[:3]:
        anonymous = requests.get(served.url + path, timeout=30, allow_redirects=False)
        assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    browser = _browser(served, clock, "dr.martin")
    assert browser.get(served.url + paths[2], timeout=30).status_code == 200
    clock.advance(hours=13)  # past the session's lifetime: 401 for a viewer, not the login page
    expired = browser.get(served.url + paths[2], timeout=30, allow_redirects=False)
    assert expired.status_code == 401 and expired.json()["error"] == "unauthorized"
    # A held study (another patient's traits sent to the case) is never served.
    held_uid = generate_uid()
    held = rewrite(tmp_path / "held", "CT_small.dcm", study=held_uid,
                   **for_case(served.accession, PatientName="AUTRE^PATIENT", StudyDate=STUDY_DATE))
    upload_files(served.ctx, TECHNOLOGIST, served.case_id, [(held.name, io.BytesIO(held.read_bytes()))],
                 served.storage)
    assert study(served.ctx, held_uid).status == "held"
    mine = served.client(served.token("merm.leroy"))
    assert mine.search_for_studies(search_filters={"StudyInstanceUID": held_uid}) == []
    assert requests.get(f"{served.url}/studies/{held_uid}", headers=mine._session.headers,
                        timeout=30).status_code == 404
    # Bad keys, values and UIDs: 400 with a JSON body; an Accept that cannot be met: 406.
    mine_headers = dict(mine._session.headers)
    for path in ("/studies?Foo=1", "/studies?SeriesInstanceUID=1.2", "/studies?StudyDate=2024", "/studies?limit=0",
                 "/studies?StudyInstanceUID=1..2", "/studies/abc/series", "/studies/1.2/series/x/instances",
                 f"/studies/{served.study_uid}/series/{series}/instances/{sop}/frames/0",
                 "/wado?requestType=WADO&studyUID=1.2", "/wado?requestType=X"):
        answer = requests.get(served.url + path, headers=mine_headers, timeout=30)
        assert answer.status_code == 400 and answer.json()["error"] == "bad_request", path
    assert requests.get(served.url + paths[2], headers={**mine_headers, "Accept": "text/html"},
                        timeout=30).status_code == 406
    assert requests.get(served.url + "/studies", headers={**mine_headers, "Accept": "image/png"},
                        timeout=30).status_code == 406
