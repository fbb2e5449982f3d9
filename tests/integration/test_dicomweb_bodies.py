"""The pieces of DICOMweb that need no server: multipart/related bodies written and read back whatever the chunk
boundaries, the QIDO-RS parameters refused or read, the Accept negotiation, frame lists."""

from __future__ import annotations

import io

import pytest

from integrations.dicomweb import multipart
from integrations.dicomweb.frames import FrameError, frame_numbers
from integrations.dicomweb.keys import INSTANCE, SERIES, STUDY, BadQuery, parse_query
from integrations.dicomweb.media import (
    AS_STORED,
    negotiate_frame,
    negotiate_instances,
    negotiate_json,
    negotiate_rendered,
)

RLE, EXPLICIT, J2K = "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.90"


@pytest.mark.parametrize("chunk", [1, 7, 64, 4096])
def test_a_written_body_reads_back_part_by_part_whatever_the_chunk_size(monkeypatch, chunk):
    contents = [b"", b"\r\n--not-the-boundary\r\n", bytes(range(256)) * 9, b"last"]
    boundary = multipart.new_boundary()
    body = b"".join(multipart.byte_parts(boundary, [(c, "application/dicom") for c in contents]))
    monkeypatch.setattr(multipart, "CHUNK", chunk)
    parts = list(multipart.read_parts(io.BytesIO(b"preamble\r\n" + body), boundary))
    assert [p.content.read() for p in parts] == contents
    assert {p.content_type for p in parts} == {"application/dicom"}


def test_bodies_that_cannot_be_read_are_refused():
    with pytest.raises(multipart.BadBody):
        multipart.boundary_of("application/dicom")
    assert multipart.boundary_of('multipart/related; type="application/dicom"; boundary="a b"') == "a b"
    with pytest.raises(multipart.BadBody):  # no closing delimiter
        list(multipart.read_parts(io.BytesIO(b"--b\r\nContent-Type: application/dicom\r\n\r\nxx"), "b"))
    with pytest.raises(multipart.BadBody):  # no part at all
        list(multipart.read_parts(io.BytesIO(b"nothing here"), "b"))


def test_query_parameters_are_read_or_refused():
    query = parse_query(STUDY, [("PatientName", "QUER*"), ("00100020", "IPP-1"), ("StudyDate", "20240101-"),
                                ("ModalitiesInStudy", "CT\\MR"), ("limit", "5"), ("offset", "10"),
                                ("includefield", "00180050,StudyTime"), ("AccessionNumber", "")])
    assert query.matches == {"PatientName": "QUER*", "PatientID": "IPP-1", "StudyDate": ("20240101", None),
                             "ModalitiesInStudy": ["CT", "MR"]}
    assert (query.limit, query.offset, query.include) == (5, 10, ("SliceThickness", "StudyTime"))
    assert parse_query(INSTANCE, [("SeriesInstanceUID", "1.2,1.3"), ("InstanceNumber", "4")]).matches == {
        "SeriesInstanceUID": ["1.2", "1.3"], "InstanceNumber": 4}
    refused = [(STUDY, "Foo", "1"), (STUDY, "SeriesInstanceUID", "1.2"), (SERIES, "SOPInstanceUID", "1.2"),
               (STUDY, "StudyDate", "2024"), (STUDY, "StudyDate", "20241301"), (STUDY, "StudyDate", "-"),
               (STUDY, "limit", "0"), (STUDY, "limit", "1001"), (STUDY, "offset", "-1"),
               (STUDY, "StudyInstanceUID", "1.02"), (STUDY, "StudyInstanceUID", "1." + "2" * 70),
               (STUDY, "ModalitiesInStudy", "ct"), (SERIES, "SeriesNumber", "x"), (STUDY, "includefield", "Nope"),
               (STUDY, "fuzzymatching", "yes"), (STUDY, "PatientName", "A\x00")]
    for level, name, value in refused:
        with pytest.raises(BadQuery):
            parse_query(level, [(name, value)])


def test_accept_negotiation_gives_the_stored_syntax_or_explicit_little_endian():
    dicom = 'multipart/related; type="application/dicom"'
    assert negotiate_instances(dicom + "; transfer-syntax=*", {RLE, EXPLICIT}) == AS_STORED
    assert negotiate_instances(f"{dicom}; transfer-syntax={RLE}", {RLE}) == AS_STORED
    for default in (None, "*/*", dicom, f"{dicom}; transfer-syntax={EXPLICIT}"):
        assert negotiate_instances(default, {RLE}) == EXPLICIT, default
    assert negotiate_instances(f"{dicom}; transfer-syntax={J2K}", {RLE}) is None
    assert negotiate_instances(f"{dicom}; transfer-syntax={J2K}, {dicom}; transfer-syntax=*", {RLE}) == AS_STORED
    assert negotiate_instances("application/dicom+json", {EXPLICIT}) is None
    octet = 'multipart/related; type="application/octet-stream"'
    assert negotiate_frame(octet, EXPLICIT) == f"application/octet-stream; transfer-syntax={EXPLICIT}"
    assert negotiate_frame(octet, J2K) is None
    assert negotiate_frame(octet + "; transfer-syntax=*", J2K) == f"application/octet-stream; transfer-syntax={J2K}"
    assert negotiate_frame('multipart/related; type="image/jp2"', J2K) == f"image/jp2; transfer-syntax={J2K}"
    assert negotiate_frame(f'{octet}, multipart/related; type="image/jp2"', J2K) == f"image/jp2; transfer-syntax={J2K}"
    assert negotiate_frame('multipart/related; type="image/jpeg"', J2K) is None
    assert negotiate_json(None) and negotiate_json("application/json") and not negotiate_json("text/html")
    assert negotiate_rendered(None) == "image/jpeg" and negotiate_rendered("image/png") == "image/png"
    assert negotiate_rendered("text/html") is None and negotiate_rendered(None, "image/gif") is None


def test_frame_lists():
    assert frame_numbers("3,1,2") == [3, 1, 2]
    for bad in ("", "0", "1,,2", "a", "-1", "1;2", "1" * 10):
        with pytest.raises(FrameError):
            frame_numbers(bad)


def test_transcoding_decodes_in_a_child_and_refuses_what_the_pixel_bounds_refuse(tmp_path, caplog):
    import hashlib
    from pathlib import Path

    import pydicom
    from pydicom.data import get_testdata_file

    from integrations.dicomweb.transcode import transcoded

    storage = tmp_path / "instance" / "dicom"
    storage.mkdir(parents=True)
    source = Path(get_testdata_file("SC_rgb_rle_2frame.dcm", download=False))
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    decoded = transcoded(storage, source, sha)
    original, result = pydicom.dcmread(source), pydicom.dcmread(decoded)
    assert result.file_meta.TransferSyntaxUID == EXPLICIT and result.SOPInstanceUID == original.SOPInstanceUID
    assert (result.pixel_array == original.pixel_array).all()
    assert transcoded(storage, source, sha) == decoded  # cached: no second child
    # An image whose headers declare more pixels than the bound is never decoded: no transcoding (sent as stored).
    bomb = pydicom.dcmread(get_testdata_file("JPEG2000.dcm", download=False))
    bomb.Rows = bomb.Columns = 6000
    path = tmp_path / "bomb.dcm"
    bomb.save_as(path, enforce_file_format=True)
    caplog.set_level("INFO", logger="integrations.dicomweb.transcode")
    assert transcoded(storage, path, "0" * 64) is None
    assert "child status 3" in caplog.text and "image de 36000000 pixels par plan" in caplog.text
    assert not list((storage.parent / "dicom-previews" / "transcoded").rglob("0000*.dcm"))
