"""The images of a case through the Flask test client: web upload of files and zip archives, the series of a
case with non-diagnostic previews (rendered by the worker's job, never by the page), who may see them (CH-5.3)."""

from __future__ import annotations

import io
import re
import zipfile

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from integrations.dicom.ingest import ingest_file
from integrations.dicom.preview_queue import render_pending_previews
from tests.demo_app import login
from tests.integration import dicom_support
from tests.integration.dicom_support import counts, demo_case, for_case, rewrite, stored_files, study

dicom_ctx, app = dicom_support.dicom_ctx, dicom_support.dicom_app  # fixtures


def render_previews(ctx, tmp_path) -> None:
    """What the worker's scheduler does every few seconds (web.ops.scheduler.TimerScheduler.render_previews)."""
    render_pending_previews(ctx, tmp_path / "instance" / "dicom", settle_seconds=0)


def zip_of(entries: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    buffer.seek(0)
    return buffer


@pytest.mark.charter("CH-5.1")
@pytest.mark.charter("CH-4.1.11")
def test_a_zip_upload_is_stored_indexed_and_listed_with_previews(app, dicom_ctx, clock, tmp_path):
    case_id, accession = demo_case(dicom_ctx)
    uid = generate_uid()
    ct = rewrite(tmp_path / "zip", "CT_small.dcm", study=uid, **for_case(accession)).read_bytes()
    rle = rewrite(tmp_path / "zip", "MR_small_RLE.dcm", study=uid, **for_case(accession)).read_bytes()
    archive = zip_of({"CT/IM0001": ct, "../../escape.dcm": rle, "README.TXT": b"export", "CT/IM0002": ct[:5000],
                      "DICOMDIR": b"not used"})
    client = login(app, dicom_ctx, clock, "merm.leroy")
    response = client.post(f"/cases/{case_id}/dicom", data={"dicom_files": (archive, "examen.zip")},
                           content_type="multipart/form-data", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Images DICOM : 2 image(s) enregistrée(s), 1 refusée(s)" in page
    assert "examen.zip/CT/IM0002" in page and "fichier tronqué" in page
    assert counts(dicom_ctx) == (1, 2, 2)
    assert study(dicom_ctx, uid).status == "attached"
    files = stored_files(tmp_path / "instance" / "dicom")
    assert len(files) == 2 and not (tmp_path / "escape.dcm").exists()  # archive names are never paths
    # The case page: series, counts, previews in preparation until the worker renders them, then shown with
    # alternative text; the non-diagnostic notice.
    assert "Aperçu non diagnostique" in page
    assert page.count("aperçu en préparation") == 2 and "rechargez la page dans quelques secondes" in page
    assert "thumbnail.png" not in page
    render_previews(dicom_ctx, tmp_path)
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "aperçu en préparation" not in page and "rechargez la page" not in page
    previews = re.findall(rf'src="(/cases/{case_id}/series/[0-9.]+/thumbnail.png)" alt="([^"]+)"', page)
    assert len(previews) == 2 and all("Aperçu non diagnostique de la série" in alt for _, alt in previews)
    thumbnail = client.get(previews[0][0])
    assert thumbnail.status_code == 200 and thumbnail.mimetype == "image/png"
    assert thumbnail.data.startswith(b"\x89PNG")
    again = client.post(f"/cases/{case_id}/dicom", data={"dicom_files": (io.BytesIO(ct), "IM0001.dcm")},
                        content_type="multipart/form-data", follow_redirects=True)
    again_page = again.get_data(as_text=True)
    assert "0 image(s) enregistrée(s), 1 déjà reçue(s)" in again_page, re.findall(r'role="alert">([^<]*)<', again_page)
    assert counts(dicom_ctx) == (1, 2, 2)


@pytest.mark.charter("CH-5.3")
def test_previews_and_upload_only_for_people_who_see_the_case(app, dicom_ctx, clock, tmp_path):
    case_id, accession = demo_case(dicom_ctx)
    path = rewrite(tmp_path, "MR_small.dcm", **for_case(accession))
    series = str(pydicom.dcmread(path).SeriesInstanceUID)
    technologist = login(app, dicom_ctx, clock, "merm.leroy")
    technologist.post(f"/cases/{case_id}/dicom", data={"dicom_files": (io.BytesIO(path.read_bytes()), "mr.dcm")},
                      content_type="multipart/form-data")
    url = f"/cases/{case_id}/series/{series}/thumbnail.png"
    assert technologist.get(url).status_code == 202  # in preparation
    render_previews(dicom_ctx, tmp_path)
    assert technologist.get(url).status_code == 200
    outsider = login(app, dicom_ctx, clock, "dr.kerbrat")  # CH de Morlaix, never involved in this case
    assert outsider.get(url).status_code == 404
    refused = outsider.post(f"/cases/{case_id}/dicom",
                            data={"dicom_files": (io.BytesIO(path.read_bytes()), "mr.dcm")},
                            content_type="multipart/form-data")
    assert refused.status_code == 404
    assert technologist.get(f"/cases/{case_id}/series/1.2.3.4/thumbnail.png").status_code == 404


@pytest.mark.charter("CH-4.1.6")
def test_a_held_upload_is_flagged_on_the_case_and_shown_on_the_identity_check(app, dicom_ctx, clock, tmp_path):
    case_id, accession = demo_case(dicom_ctx)
    other = rewrite(tmp_path, "CT_small.dcm", **for_case(accession, PatientName="KERMARREC^YANN"))
    client = login(app, dicom_ctx, clock, "merm.leroy")
    client.post(f"/cases/{case_id}/dicom", data={"dicom_files": (io.BytesIO(other.read_bytes()), "ct.dcm")},
                content_type="multipart/form-data")
    held = study(dicom_ctx, str(pydicom.dcmread(other).StudyInstanceUID))
    assert held.status == "held"
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Des images reçues pour ce dossier sont retenues" in page and "thumbnail.png" not in page
    render_previews(dicom_ctx, tmp_path)
    check = client.get(f"/cases/{held.identity_case_id}").get_data(as_text=True)
    assert "thumbnail.png" in check and "retenue" in check
    assert "Identité des images à vérifier" in check and "identité différente : nom" in check
    assert "KERMARREC YANN" in check and "Quéré" in check  # images and case side by side
    assert f"/series/{pydicom.dcmread(other).SeriesInstanceUID}/thumbnail.png" in check


def test_preview_unavailable_when_the_pixel_data_cannot_be_decoded(app, dicom_ctx, clock, tmp_path):
    case_id, accession = demo_case(dicom_ctx)
    # JPEG lossy (process 2/4, 12 bit) that the installed decoders do not handle: stored, listed, no preview.
    lossy = rewrite(tmp_path, "JPEG-lossy.dcm", **for_case(accession))
    with pytest.raises(Exception):  # noqa: B017 - whichever decoder error: this is what the page must survive
        pydicom.dcmread(get_testdata_file("JPEG-lossy.dcm", download=False)).pixel_array  # noqa: B018
    client = login(app, dicom_ctx, clock, "merm.leroy")
    page = client.post(f"/cases/{case_id}/dicom", data={"dicom_files": (io.BytesIO(lossy.read_bytes()), "nm.dcm")},
                       content_type="multipart/form-data", follow_redirects=True).get_data(as_text=True)
    assert "1 image(s) enregistrée(s)" in page
    assert "aperçu en préparation" in page and "thumbnail.png" not in page
    render_previews(dicom_ctx, tmp_path)  # the worker's child fails to decode it: remembered as unavailable
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "aperçu indisponible" in page and "aperçu en préparation" not in page and "thumbnail.png" not in page


@pytest.mark.charter("CH-4.1.11")
def test_uploading_to_a_case_attaches_a_study_received_without_one(app, dicom_ctx, clock, tmp_path):
    case_id, _ = demo_case(dicom_ctx)
    path = rewrite(tmp_path, "CT_small.dcm", **for_case("INCONNU-42"))  # a number no case has
    uid = str(pydicom.dcmread(path).StudyInstanceUID)
    assert ingest_file(dicom_ctx, path, "ch-brest", "dicom", storage=tmp_path / "instance" / "dicom").status == \
        "stored"
    assert study(dicom_ctx, uid).status == "receiving"
    client = login(app, dicom_ctx, clock, "merm.leroy")
    page = client.post(f"/cases/{case_id}/dicom", data={"dicom_files": (io.BytesIO(path.read_bytes()), "ct.dcm")},
                       content_type="multipart/form-data", follow_redirects=True).get_data(as_text=True)
    assert "0 image(s) enregistrée(s), 1 déjà reçue(s)" in page
    assert (study(dicom_ctx, uid).status, study(dicom_ctx, uid).case_id) == ("attached", case_id)
    assert counts(dicom_ctx) == (1, 1, 1)
