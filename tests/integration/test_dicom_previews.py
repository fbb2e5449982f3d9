"""Previews decode only what is reasonable (issue 16: a 1 KB JPEG 2000 of 8192 x 8192 pixels made the first
case-page view allocate 2.35 GB): the dataset's size and the size each JPEG / JPEG 2000 codestream declares are
read from the headers and bounded before any decoding; a multi-frame image decodes its middle frame only; the
usual encodings still give a preview."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate, generate_fragments

from integrations.dicom import thumbnails
from integrations.dicom.pixel_limits import MAX_FRAME_PIXELS, codestream_pixels, decoding_refusal


def first_fragment(dataset) -> bytes:
    """The first fragment of the first frame (the first item of encapsulated data is the Basic Offset Table)."""
    return bytes(list(generate_fragments(dataset.PixelData))[1])


def sample(name: str) -> str:
    path = get_testdata_file(name, download=False)
    assert path, name
    return str(path)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "JPEG2000.dcm",
                                  "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_small_odd_jpeg.dcm"])
def test_the_usual_encodings_still_give_a_preview(name, tmp_path):
    png = thumbnails.render_preview(pydicom.dcmread(sample(name)).filename)
    assert png is not None and png.startswith(b"\x89PNG")


@pytest.mark.parametrize("name", ["MR_small_jp2klossless.dcm", "JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm"])
def test_the_codestream_size_is_read_from_its_header(name):
    dataset = pydicom.dcmread(sample(name))
    first = first_fragment(dataset)[:4096]
    assert codestream_pixels(first) == dataset.Rows * dataset.Columns * dataset.SamplesPerPixel
    assert decoding_refusal(dataset) is None


def inflated_j2k(tmp_path, width: int, height: int):
    """A real JPEG 2000 file whose codestream header now claims width x height (the dataset keeps its size)."""
    dataset = pydicom.dcmread(sample("MR_small_jp2klossless.dcm"))
    codestream = bytearray(first_fragment(dataset))
    codestream[8:12], codestream[12:16] = width.to_bytes(4, "big"), height.to_bytes(4, "big")
    dataset.PixelData = encapsulate([bytes(codestream)])
    path = tmp_path / "bomb.dcm"
    dataset.save_as(path)
    return path


@pytest.mark.charter("CH-5.1", negative=True)
def test_a_codestream_claiming_more_pixels_than_the_image_is_never_decoded(tmp_path, monkeypatch):
    decoded = []
    monkeypatch.setattr(thumbnails, "pixel_array", lambda *a, **k: decoded.append(1))
    assert thumbnails.render_preview(inflated_j2k(tmp_path, 8192, 8192)) is None
    assert decoded == []
    assert decoding_refusal(pydicom.dcmread(tmp_path / "bomb.dcm")).startswith(
        "flux compressé de 67108864 pixels")


@pytest.mark.charter("CH-5.1", negative=True)
def test_an_image_declaring_too_many_pixels_is_never_decoded(tmp_path, monkeypatch):
    dataset = pydicom.dcmread(sample("CT_small.dcm"))
    dataset.Rows = dataset.Columns = 8192  # 67 million pixels, above the bound
    path = tmp_path / "huge.dcm"
    dataset.save_as(path)
    decoded = []
    monkeypatch.setattr(thumbnails, "pixel_array", lambda *a, **k: decoded.append(1))
    assert MAX_FRAME_PIXELS < 8192 * 8192
    assert thumbnails.render_preview(path) is None and decoded == []


def test_a_multi_frame_image_decodes_its_middle_frame_only(tmp_path, monkeypatch):
    dataset = pydicom.dcmread(sample("MR_small_RLE.dcm"))
    frames = [first_fragment(dataset)] * 5
    dataset.PixelData = encapsulate(frames)
    dataset.NumberOfFrames = 5
    path = tmp_path / "multi.dcm"
    dataset.save_as(path)
    asked = []
    real = thumbnails.pixel_array
    monkeypatch.setattr(thumbnails, "pixel_array", lambda src, **kw: asked.append(kw) or real(src, **kw))
    assert thumbnails.render_preview(path).startswith(b"\x89PNG")
    assert asked == [{"index": 2}]
