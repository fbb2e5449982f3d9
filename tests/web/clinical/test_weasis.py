"""« Ouvrir dans Weasis » through the Flask test client (issue 18, item 4): the weasis:// link carries a viewer
token that opens the one study it was made for, read-only, for ten minutes, and nothing else (another study 404,
the API 401, STOW 403, expired 401); who may not see the case or whose role may not open a viewer gets nothing;
the launch is on the case's audit chain (CH-5.3, CH-8.1)."""

from __future__ import annotations

import io
import re
import shlex
from urllib.parse import unquote_plus

import pydicom
import pytest
from pydicom.uid import generate_uid

from engine.domain.actors import Actor
from engine.services.accounts import revoke_api_token
from engine.services.accounts_tokens import list_api_tokens
from engine.services.token_access import renew_api_token
from integrations.dicom.upload import upload_files
from integrations.dicomweb import audit as dicomweb_audit
from tests.demo_app import login
from tests.integration import dicom_support
from tests.integration.dicom_support import audit_actions, demo_case, for_case, rewrite, study

dicom_ctx, app = dicom_support.dicom_ctx, dicom_support.dicom_app  # fixtures
TECHNOLOGIST = Actor("merm.leroy", frozenset({"technologist"}), frozenset({"ch-brest"}))
LINK = re.compile(r'id="weasis-link" href="([^"]+)"')


@pytest.fixture
def case(dicom_ctx, tmp_path):
    """The Brest demo case with two attached studies (A: two CT images, B: one), as (case id, A, B, files of A)."""
    dicomweb_audit.forget()
    case_id, accession = demo_case(dicom_ctx)
    uids = generate_uid(), generate_uid()
    files = [rewrite(tmp_path / "src", "CT_small.dcm", study=uids[0], **for_case(accession)) for _ in range(2)]
    files.append(rewrite(tmp_path / "src", "CT_small.dcm", study=uids[1], **for_case(accession)))
    summary = upload_files(dicom_ctx, TECHNOLOGIST, case_id, [(p.name, io.BytesIO(p.read_bytes())) for p in files],
                           tmp_path / "instance" / "dicom")
    assert summary.stored == 3, summary.french()
    assert {study(dicom_ctx, uid).status for uid in uids} == {"attached"}
    return case_id, uids[0], uids[1], files[:2]


def launch(client, case_id: int, study_uid: str):
    return client.post(f"/cases/{case_id}/weasis", data={"study": study_uid})


def link_arguments(html: str) -> list[str]:
    """The Weasis command line the page's weasis:// link carries."""
    match = LINK.search(html)
    assert match, "no weasis:// link on the page"
    link = match.group(1).replace("&amp;", "&")
    assert link.startswith("weasis://")
    return shlex.split(unquote_plus(link.removeprefix("weasis://")))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.charter("CH-4.1.11")
def test_the_case_page_offers_weasis_to_radiologists_only(app, dicom_ctx, clock, case):
    case_id, study_a, study_b, _files = case
    page = login(app, dicom_ctx, clock, "dr.legall").get(f"/cases/{case_id}").get_data(as_text=True)
    assert f'action="/cases/{case_id}/weasis"' in page
    assert f'name="study" value="{study_a}"' in page and f'name="study" value="{study_b}"' in page
    requester = login(app, dicom_ctx, clock, "dr.martin").get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Images" in requester and f"/cases/{case_id}/weasis" not in requester


@pytest.mark.charter("CH-8.1")
@pytest.mark.charter("CH-5.3")
def test_the_link_opens_its_study_read_only_for_ten_minutes_and_nothing_else(app, dicom_ctx, clock, case):
    case_id, study_a, study_b, files = case
    answer = launch(login(app, dicom_ctx, clock, "dr.legall"), case_id, study_a)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    arguments = link_arguments(answer.get_data(as_text=True))
    assert arguments[:5] == ["$dicom:rs", "-u", "http://localhost/dicomweb", "-r", f"studyUID={study_a}"]
    assert arguments[5] == "-H" and arguments[6].startswith("Authorization: Bearer ") and len(arguments) == 7
    token = arguments[6].removeprefix("Authorization: Bearer ")
    assert "viewer.launched" in audit_actions(dicom_ctx, case_id)

    weasis = app.test_client()  # no session: the token alone
    ct = pydicom.dcmread(files[0])
    series, sop = ct.SeriesInstanceUID, ct.SOPInstanceUID
    found = weasis.get(f"/dicomweb/studies?StudyInstanceUID={study_a}", headers=bearer(token))
    assert found.status_code == 200 and found.json[0]["0020000D"]["Value"] == [study_a]
    assert len(weasis.get(f"/dicomweb/studies/{study_a}/instances", headers=bearer(token)).json) == 2
    assert len(weasis.get(f"/dicomweb/studies/{study_a}/series/{series}/instances", headers=bearer(token)).json) == 1
    assert weasis.get(f"/dicomweb/studies/{study_a}/metadata", headers=bearer(token)).status_code == 200
    instance = weasis.get(f"/dicomweb/studies/{study_a}/series/{series}/instances/{sop}", headers=bearer(token))
    assert instance.status_code == 200 and instance.mimetype == "multipart/related"
    assert weasis.get(f"/dicomweb/wado?requestType=WADO&studyUID={study_a}&seriesUID={series}&objectUID={sop}"
                      "&contentType=application/dicom", headers=bearer(token)).status_code == 200
    # Another study of the same case (which dr.legall may see with his session), any search not about this
    # study alone: 404. Writing: 403. The rest of the API does not know the token: 401.
    for path in (f"/dicomweb/studies/{study_b}", f"/dicomweb/studies/{study_b}/metadata", "/dicomweb/studies",
                 f"/dicomweb/studies?StudyInstanceUID={study_b}", "/dicomweb/series", "/dicomweb/instances",
                 f"/dicomweb/studies?StudyInstanceUID={study_a}&StudyInstanceUID={study_b}",
                 f"/dicomweb/wado?requestType=WADO&studyUID={study_b}&seriesUID={series}&objectUID={sop}"):
        refused = weasis.get(path, headers=bearer(token))
        assert refused.status_code == 404 and refused.json["error"] == "not_found", path
    stow = weasis.post(f"/dicomweb/studies/{study_a}", headers=bearer(token), data=b"",
                       content_type="multipart/related; type=\"application/dicom\"; boundary=x")
    assert stow.status_code == 403 and stow.json["error"] == "read_only_token"
    assert weasis.get("/api/v1/cases", headers=bearer(token)).status_code == 401
    # Renewing it on the account page gives it nothing: it ends ten minutes after its issue.
    (viewer,) = [t for t in list_api_tokens(dicom_ctx, "dr.legall") if t.name.startswith("Weasis ")]
    assert viewer.scope == "read" and (viewer.expires_at - viewer.created_at).total_seconds() == 600
    renew_api_token(dicom_ctx, Actor("dr.legall"), "dr.legall", viewer.name, days=30)
    clock.advance(minutes=9)
    assert weasis.get(f"/dicomweb/studies/{study_a}/metadata", headers=bearer(token)).status_code == 200
    clock.advance(minutes=1)
    expired = weasis.get(f"/dicomweb/studies/{study_a}/metadata", headers=bearer(token))
    assert expired.status_code == 401 and expired.json["error"] == "token_expired"


def test_the_token_opens_the_study_the_way_weasis_asks_for_it(app, dicom_ctx, clock, case):
    """Weasis's $dicom:rs (org.weasis.dicom.explorer.rs.RsQueryResult): the study by tag, its series, each
    series' instances at the RetrieveURL the answers give, then each instance as stored."""
    case_id, study_a, study_b, _files = case
    answer = launch(login(app, dicom_ctx, clock, "dr.legall"), case_id, study_a)
    headers = bearer(link_arguments(answer.get_data(as_text=True))[6].removeprefix("Authorization: Bearer "))
    weasis = app.test_client()
    studies = weasis.get(f"/dicomweb/studies?0020000D={study_a}&includefield=00080020,00080030,00080050,00080061,"
                         "00080090,00081030,00100010,00100020,00100021,00100030,00100040,0020000D,00200010",
                         headers=headers)
    assert studies.status_code == 200 and [s["0020000D"]["Value"] for s in studies.json] == [[study_a]]
    series = weasis.get(f"/dicomweb/studies/{study_a}/series?includefield=0008103E,00080060,0020000E,00200011,"
                        "00081190", headers=headers)
    assert series.status_code == 200 and len(series.json) == 2
    retrieved = 0
    for answer in series.json:
        retrieve_url = answer["00081190"]["Value"][0].removeprefix("http://localhost")
        instances = weasis.get(f"{retrieve_url}/instances?includefield=00080018,00200013,00081190", headers=headers)
        assert instances.status_code == 200
        for instance in instances.json:
            url = instance["00081190"]["Value"][0].removeprefix("http://localhost")
            got = weasis.get(url, headers={**headers, "Accept": 'multipart/related;type="application/dicom";'
                                                                 "transfer-syntax=*"})
            assert got.status_code == 200 and got.mimetype == "multipart/related"
            retrieved += 1
    assert retrieved == 2
    assert weasis.get(f"/dicomweb/studies?0020000d={study_b}", headers=headers).status_code == 404


def test_a_new_launch_clears_the_expired_viewer_tokens(app, dicom_ctx, clock, case):
    case_id, study_a, study_b, _files = case
    radiologist = login(app, dicom_ctx, clock, "dr.legall")
    first = link_arguments(launch(radiologist, case_id, study_a).get_data(as_text=True))[6]
    clock.advance(minutes=11)
    second = launch(radiologist, case_id, study_b)
    assert second.status_code == 200
    names = [t.name for t in list_api_tokens(dicom_ctx, "dr.legall")]
    assert len(names) == 1 and f" {case_id} {study_b} " in names[0]
    token = first.removeprefix("Authorization: Bearer ")
    assert app.test_client().get(f"/dicomweb/studies/{study_a}", headers=bearer(token)).status_code == 401
    sessions = radiologist.get("/account/sessions")
    assert sessions.status_code == 200 and names[0] in sessions.get_data(as_text=True)  # listed while it lives
    # A live one revoked (telerad users token --revoke): refused at once.
    live = link_arguments(second.get_data(as_text=True))[6].removeprefix("Authorization: Bearer ")
    assert app.test_client().get(f"/dicomweb/studies/{study_b}", headers=bearer(live)).status_code == 200
    revoke_api_token(dicom_ctx, "dr.legall", names[0])
    assert app.test_client().get(f"/dicomweb/studies/{study_b}", headers=bearer(live)).status_code == 401


@pytest.mark.charter("CH-8.1", negative=True)
def test_who_may_not_see_the_case_or_whose_role_may_not_view_gets_no_token(app, dicom_ctx, clock, case):
    case_id, study_a, _study_b, _files = case
    for username, status in (("dr.morvan", 404), ("dr.kerbrat", 404), ("dr.martin", 403), ("merm.leroy", 403)):
        assert launch(login(app, dicom_ctx, clock, username), case_id, study_a).status_code == status, username
    radiologist = login(app, dicom_ctx, clock, "dr.legall")
    assert launch(radiologist, case_id, generate_uid()).status_code == 404  # not a study of this case
    assert launch(radiologist, case_id + 1000, study_a).status_code == 404
    assert launch(radiologist, case_id, "1..2").status_code == 400
    assert launch(radiologist, case_id, "").status_code == 400
    assert radiologist.get(f"/cases/{case_id}/weasis").status_code == 405
    assert "viewer.launched" not in audit_actions(dicom_ctx, case_id)
    assert list_api_tokens(dicom_ctx, "dr.legall") == []


def test_the_launch_needs_the_csrf_token(app, dicom_ctx, clock, case):
    case_id, study_a, _study_b, _files = case
    radiologist = login(app, dicom_ctx, clock, "dr.legall")
    app.config["WTF_CSRF_ENABLED"] = True  # after the login (the helper posts without the token)
    assert launch(radiologist, case_id, study_a).status_code == 400
    assert "viewer.launched" not in audit_actions(dicom_ctx, case_id)
    page = radiologist.get(f"/cases/{case_id}").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = radiologist.post(f"/cases/{case_id}/weasis", data={"study": study_a, "csrf_token": csrf})
    assert answer.status_code == 200 and link_arguments(answer.get_data(as_text=True))[0] == "$dicom:rs"
