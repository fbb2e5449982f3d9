"""Hostile archives in the DICOM web upload are refused before they cost anything (issue 16: a 385 KB zip of
overlapping entries pointing at one 128 MB deflate stream cost about 17 minutes of CPU): overlapping members,
too many entries, an archive inside the archive, and the upload's total of inflated bytes counted while it
streams. Each refusal is a French reason in the upload summary, and nothing of a refused archive is stored."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest
from pydicom.uid import generate_uid

from engine.domain.actors import Actor
from integrations.dicom import upload
from integrations.dicom.upload import upload_files
from tests.integration import dicom_support
from tests.integration.dicom_support import counts, demo_case, for_case, rewrite, stored_files

dicom_ctx = dicom_support.dicom_ctx  # fixture
TECHNOLOGIST = Actor("merm.leroy", frozenset({"technologist"}), frozenset({"ch-brest"}))


def zip_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def overlapping_bomb(inflated_bytes: int, copies: int) -> bytes:
    """One deflated stream of zeros, and a central directory that lists it `copies` times (all at offset 0)."""
    single = zip_of({"IM0001": b"\0" * inflated_bytes})
    eocd = single.rindex(b"PK\x05\x06")
    _sig, _disk, _cd_disk, _on_disk, _total, size, offset, comment = struct.unpack("<IHHHHIIH", single[eocd:eocd + 22])
    record = single[offset:offset + size]
    directory = record * copies
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, copies, copies, len(directory), offset, 0)
    return single[:offset] + directory + end


def send(ctx, case_id, storage, *files: tuple[str, bytes]):
    return upload_files(ctx, TECHNOLOGIST, case_id, [(name, io.BytesIO(content)) for name, content in files],
                        storage)


@pytest.mark.charter("CH-5.1", negative=True)
def test_an_archive_of_overlapping_members_is_refused_before_anything_is_inflated(dicom_ctx, tmp_path,
                                                                                  monkeypatch):
    case_id, _accession = demo_case(dicom_ctx)
    bomb = overlapping_bomb(8 * 1024 * 1024, 400)  # 3.2 GB if every listed member were inflated
    assert len(bomb) < 100_000
    inflated = []
    real_read = upload.read_member
    monkeypatch.setattr(upload, "read_member", lambda *args: inflated.append(1) or real_read(*args))
    summary = send(dicom_ctx, case_id, tmp_path / "store", ("bombe.zip", bomb))
    assert summary.stored == 0 and inflated == []
    assert summary.refused == [("bombe.zip", "archive ZIP invalide (entrées qui se chevauchent) : refusée")]
    assert counts(dicom_ctx) == (0, 0, 0) and stored_files(tmp_path / "store") == []


@pytest.mark.charter("CH-5.1", negative=True)
def test_too_many_entries_and_an_archive_inside_the_archive_are_refused(dicom_ctx, tmp_path, monkeypatch):
    case_id, accession = demo_case(dicom_ctx)
    ct = rewrite(tmp_path / "src", "CT_small.dcm", study=generate_uid(), **for_case(accession)).read_bytes()
    monkeypatch.setattr(upload, "MAX_FILES", 3)
    crowded = zip_of({f"IM{i}": ct for i in range(5)})
    nested = zip_of({"inner.zip": zip_of({"IM0001": ct}), "IM0002": ct})
    summary = send(dicom_ctx, case_id, tmp_path / "store", ("plein.zip", crowded), ("gigogne.zip", nested))
    assert ("plein.zip", "archive de plus de 3 entrées : refusée") in summary.refused
    assert ("gigogne.zip/inner.zip", "archive dans l'archive : refusée (envoyez les fichiers eux-mêmes)") \
        in summary.refused
    assert summary.stored == 1  # gigogne.zip/IM0002, the plain member beside the nested archive


@pytest.mark.charter("CH-5.1", negative=True)
def test_the_uploads_total_is_counted_while_inflating_and_the_rest_is_not_read(dicom_ctx, tmp_path, monkeypatch):
    case_id, accession = demo_case(dicom_ctx)
    uid = generate_uid()
    images = [rewrite(tmp_path / f"src{i}", "CT_small.dcm", study=uid, **for_case(accession)).read_bytes()
              for i in range(6)]
    monkeypatch.setattr(upload, "MAX_EXPANDED_BYTES", len(images[0]) * 2 + 10)
    inflated = []
    real_read = upload.read_member
    monkeypatch.setattr(upload, "read_member", lambda *args: inflated.append(1) or real_read(*args))
    archive = zip_of({f"IM{i}": image for i, image in enumerate(images)})
    summary = send(dicom_ctx, case_id, tmp_path / "store", ("examen.zip", archive), ("seul.dcm", images[0]))
    assert summary.stored == 2
    refused = dict(summary.refused)
    assert refused["examen.zip/IM2"].startswith("volume total décompressé dépassé")
    assert refused["seul.dcm"].startswith("volume total décompressé dépassé")
    assert len(inflated) == 3  # the third member went over while streaming; the other three were never opened
    assert len(stored_files(tmp_path / "store")) == 2
