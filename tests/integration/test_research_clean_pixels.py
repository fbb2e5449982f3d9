"""The Clean Pixel Data option of research exports (CH-8.2, DICOM PS3.15) on SQLite and PostgreSQL: an ultrasound
image of a device deid's CTP rules know (Philips iU22, 480 rows: text band 0,0 to 640,47) is exported with that
band blanked and the rest of its pixels unchanged, BurnedInAnnotation NO and code 113101 in its De-identification
Method Code Sequence; the same image without the option, and the image of a device no rule knows, stay out. Every
exported image, cleaned or taken as it is, has lost its icon, overlays and curves (PS3.15 X), anywhere."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from engine.services.research import create_request, decide
from integrations.dicom.ingest import ingest_file
from integrations.dicom.research_export import produce_export
from tests.integration import dicom_support
from tests.integration.dicom_support import demo_case, for_case, rewrite
from tests.integration.test_research_exports import ADMIN, RESEARCHER, spec

dicom_ctx = dicom_support.dicom_ctx
ROWS, COLUMNS, BAND = 480, 640, 47  # deid's "Philips IU22" rule for 480 rows: ctpcoordinates 0,0,640,47
ULTRASOUND = "1.2.840.10008.5.1.4.1.1.6.1"


def _pixels(samples: int) -> np.ndarray:
    """Text-like strokes in the rule's band and elsewhere, on a textured background."""
    rng = np.random.default_rng(7)
    image = rng.integers(1, 60, size=(ROWS, COLUMNS), dtype=np.uint8)
    for x in range(12, 600, 24):  # "letters" in the band (patient name, date, hospital)
        image[8:38, x:x + 14] = 250
    image[200:260, 100:500:3] = 230  # a caliper and its measure, outside the band
    return np.repeat(image[:, :, None], 3, axis=2) if samples == 3 else image


def _ultrasound(folder: Path, accession: str, study: str, manufacturer: str, model: str, samples: int) -> Path:
    path = rewrite(folder, "CT_small.dcm", study=study, series=generate_uid(), **for_case(
        accession, Modality="US", Manufacturer=manufacturer, ManufacturerModelName=model, BurnedInAnnotation="YES",
        ImageType=["ORIGINAL", "PRIMARY"], SOPClassUID=ULTRASOUND))
    dataset = pydicom.dcmread(path)
    dataset.file_meta.MediaStorageSOPClassUID = ULTRASOUND
    dataset.set_pixel_data(_pixels(samples), "RGB" if samples == 3 else "MONOCHROME2", 8,
                           generate_instance_uid=False)
    for keyword in ("RescaleIntercept", "RescaleSlope", "WindowCenter", "WindowWidth"):
        if keyword in dataset:
            delattr(dataset, keyword)
    dataset.save_as(path, enforce_file_format=True)
    return path


def _icon() -> Dataset:
    icon = Dataset()
    icon.Rows = icon.Columns = 8
    icon.SamplesPerPixel, icon.PhotometricInterpretation = 1, "MONOCHROME2"
    icon.BitsAllocated, icon.BitsStored, icon.HighBit, icon.PixelRepresentation = 8, 8, 7, 0
    icon.add_new(0x7FE00010, "OB", bytes(range(64)))  # a thumbnail, burned-in text and all
    return icon


def _with_icon_overlays_curves(path: Path) -> Path:
    """The image with an Icon Image Sequence (at the top and in a sequence item), two overlay groups with data and
    comments, and curve data: all may repeat the burned-in text."""
    dataset = pydicom.dcmread(path)
    dataset.IconImageSequence = [_icon()]
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = ULTRASOUND, generate_uid()
    item.IconImageSequence = [_icon()]
    dataset.ReferencedImageSequence = [item]
    for group in (0x6000, 0x6002):
        for element, vr, value in ((0x0010, "US", 16), (0x0011, "US", 16), (0x0040, "CS", "G"),
                                   (0x0050, "SS", [1, 1]), (0x0100, "US", 1), (0x0102, "US", 0),
                                   (0x3000, "OW", b"\xff" * 32), (0x4000, "LT", "QUERE JEAN 21/09/1960")):
            dataset.add_new((group << 16) | element, vr, value)
    for group in (0x5000, 0x501E):
        dataset.add_new((group << 16) | 0x0005, "US", 2)
        dataset.add_new((group << 16) | 0x3000, "OB", b"JEAN QUERE")
    dataset.save_as(path, enforce_file_format=True)
    return path


def _icons_overlays_curves(dataset: Dataset) -> list[str]:
    found: list[str] = []

    def visit(_ds, element) -> None:
        group = element.tag.group
        if element.tag == 0x00880200 or (group % 2 == 0 and (0x5000 <= group <= 0x501E or 0x6000 <= group <= 0x601E)):
            found.append(str(element.tag))
    dataset.walk(visit)
    return found


def _export(ctx, tmp_path, clean_pixels: bool, *devices: tuple[str, str, int], decorate: bool = False,
            plain: bool = False) -> dict:
    _case_id, accession = demo_case(ctx, "QU")
    study = generate_uid()
    paths = [_ultrasound(tmp_path / "in", accession, study, manufacturer, model, samples)
             for manufacturer, model, samples in devices]
    if plain:  # an image that needs no cleaning (CT, BurnedInAnnotation NO), taken as it is
        paths.append(rewrite(tmp_path / "in", "CT_small.dcm", study=study, series=generate_uid(),
                             **for_case(accession, BurnedInAnnotation="NO")))
    for path in paths:
        if decorate:
            assert len(_icons_overlays_curves(pydicom.dcmread(_with_icon_overlays_curves(path)))) == 22
        result = ingest_file(ctx, path, "ch-brest", "dicom", storage=tmp_path / "dicom", calling_ae="CT_BREST")
        assert result.status == "stored", result
    request_id = create_request(ctx, RESEARCHER, spec(clean_pixels=clean_pixels, fields=()))
    decide(ctx, ADMIN, request_id, True)
    name = produce_export(ctx, request_id, tmp_path / "dicom", tmp_path / "research")
    with zipfile.ZipFile(tmp_path / "research" / name) as archive:
        images = [pydicom.dcmread(archive.open(n)) for n in archive.namelist() if n.endswith(".dcm")]
        manifest = json.loads(archive.read("manifest.json"))
    return {"images": images, "manifest": manifest}


@pytest.mark.charter("CH-8.2")
@pytest.mark.parametrize("samples", [1, 3])
def test_burned_in_text_of_a_known_device_is_blanked_with_the_option(dicom_ctx, tmp_path, samples):
    exported = _export(dicom_ctx, tmp_path, True, ("Philips Medical Systems", "iU22", samples))
    [image] = exported["images"]
    original = _pixels(samples)
    pixels = image.pixel_array
    assert pixels.shape == original.shape
    assert not pixels[:BAND].any()  # the band of burned-in text is blank
    assert original[:BAND].any()
    assert np.array_equal(pixels[BAND:], original[BAND:])  # the rest unchanged, the caliper included
    assert image.BurnedInAnnotation == "NO" and image.PatientIdentityRemoved == "YES"
    assert image.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"  # re-encoded, Explicit VR Little Endian
    codes = [(item.CodeValue, item.CodeMeaning) for item in image.DeidentificationMethodCodeSequence]
    assert ("113101", "Clean Pixel Data Option") in codes and codes[0][0] == "113100"
    manifest = exported["manifest"]
    assert manifest["left_out"] == [] and manifest["image_count"] == 1
    assert [(item["rule"], item["regions"]) for item in manifest["cleaned"]] == [("Philips IU22", ["0,0,640,47"])]


@pytest.mark.charter("CH-8.2", negative=True)
def test_without_the_option_or_for_an_unknown_device_the_image_stays_out(dicom_ctx, tmp_path):
    exported = _export(dicom_ctx, tmp_path, True, ("Acme Echo", "Nowhere 1", 1), ("Philips Medical Systems", "iU22",
                                                                                  1))
    assert len(exported["images"]) == 1 and len(exported["manifest"]["cleaned"]) == 1
    [left_out] = exported["manifest"]["left_out"]
    assert left_out["reason"] == ("Texte incrusté dans l'image (BurnedInAnnotation=YES) : aucune règle de nettoyage "
                                  "des pixels ne connaît cet appareil.")


@pytest.mark.charter("CH-8.2", negative=True)
def test_without_the_option_a_known_device_stays_out_too(dicom_ctx, tmp_path):
    exported = _export(dicom_ctx, tmp_path, False, ("Philips Medical Systems", "iU22", 1))
    assert exported["images"] == [] and exported["manifest"]["cleaned"] == []
    [left_out] = exported["manifest"]["left_out"]
    assert left_out["reason"].endswith("option Clean Pixel Data non choisie.")
    assert not any("Clean Pixel Data" in option for option in exported["manifest"]["options"])


@pytest.mark.charter("CH-8.2", negative=True)
@pytest.mark.parametrize("clean_pixels", [True, False])
def test_icons_overlays_and_curves_never_leave(dicom_ctx, tmp_path, clean_pixels):
    """With the option, the cleaned ultrasound image and the plain CT image; without it, the CT image (the
    ultrasound stays out): none keeps an icon (top level or in a sequence), an overlay group or a curve group."""
    exported = _export(dicom_ctx, tmp_path, clean_pixels, ("Philips Medical Systems", "iU22", 1), decorate=True,
                       plain=True)
    assert len(exported["images"]) == (2 if clean_pixels else 1)
    assert len(exported["manifest"]["cleaned"]) == (1 if clean_pixels else 0)
    for image in exported["images"]:
        assert _icons_overlays_curves(image) == []
        assert "ReferencedImageSequence" in image  # the sequence stays, without its icon
