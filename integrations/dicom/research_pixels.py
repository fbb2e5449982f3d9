"""The Clean Pixel Data option (DICOM PS3.15) of research exports: the burned-in text of an image blanked where
pydicom's `deid` knows it, by its rules and its cleaner, no region list of ours.

deid's default "dicom" recipe carries the rules of CTP's DicomPixelAnonymizer: for a manufacturer, a model, a
size (and sometimes an image type or series description), the rectangles where that device burns text into its
images. The rules are run down in the recipe's order (whitelist, graylist, blacklist) and, as in CTP, the first
one that matches decides: the image is cleaned only when that is a graylist rule with regions to blank. Anything
else (no rule matches, a rule that only flags, a blacklisted kind of image) leaves the image out of the export.

The cleaned pixels are written back uncompressed (Explicit VR Little Endian) with their photometric
interpretation (RGB when the original was YCbCr, which pydicom converts when decoding), BurnedInAnnotation set
to NO, and the caller adds code 113101 (Clean Pixel Data Option) to the De-identification Method Code Sequence.

Whatever the option, every exported image loses its Icon Image Sequence (0088,0200), anywhere in the dataset, its
overlay groups (60xx, even groups 6000 to 601E: Overlay Data and Comments) and curve groups (50xx, 5000 to 501E):
action X of PS3.15 Table E.1-1, which dicognito does not apply; the icon and overlays may repeat the burned-in
text deid blanks in the pixel data only (`remove_icons_overlays_curves`).

deid is imported on first use only: its pixel module imports matplotlib (used by deid for figures we never make,
and it selects matplotlib's "pdf" backend), which the web pages need not load."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

CLEAN_PIXEL_DATA = ("113101", "Clean Pixel Data Option")  # PS3.16 CID 7050
ICON_IMAGE_SEQUENCE = 0x00880200
REPEATING_GROUPS = (range(0x5000, 0x501F, 2), range(0x6000, 0x601F, 2))  # curves (50xx), overlays (60xx)
_LOCK = threading.Lock()
_RECIPE: list[Any] = []  # deid's parsed default recipe, loaded once


@dataclass(frozen=True)
class Cleaned:
    rule: str  # the label of deid's rule that gave the regions
    regions: tuple[str, ...]  # as deid gives them: "xmin,ymin,xmax,ymax"


def _recipe() -> Any:
    """A fresh copy of deid's default recipe for each image: deid writes the coordinates it reads from an image's
    header ("from:" regions) into the recipe it is given, which must not leak into the next image."""
    with _LOCK:
        if not _RECIPE:
            from deid.config import DeidRecipe

            _RECIPE.append(DeidRecipe("dicom"))
        return copy.deepcopy(_RECIPE[0])


def _regions(coordinates: list[Any]) -> tuple[str, ...]:
    """The regions to blank (mask value 0) of a rule's coordinates."""
    found: list[str] = []
    for value, region in coordinates:
        if value != 0:
            continue
        found.extend(str(item) for item in (region if isinstance(region, list) else [region]) if str(item).strip())
    return tuple(found)


def clean_burned_in_text(dataset: Dataset) -> Cleaned | None:
    """Blank the burned-in text of the (still identified) dataset in place when deid's first matching rule gives
    its regions; None (dataset untouched) when no rule knows where the text of this device is."""
    from deid.dicom.pixels import clean_pixel_data, has_burned_pixels

    recipe = _recipe()
    labels = {id(item["coordinates"]): str(item.get("name") or "").removeprefix("LABEL ").strip()
              for items in (recipe.get_filters() or {}).values() for item in items}
    found = has_burned_pixels(dataset, force=True, deid=recipe)
    results = found.get("results") or []
    if not results or results[0].get("group") != "graylist":
        return None
    first = results[0]
    regions = _regions(first.get("coordinates") or [])
    if not regions:
        return None
    cleaned = clean_pixel_data(dataset, {"results": [first]})
    if cleaned is None:
        return None
    photometric = str(dataset.PhotometricInterpretation)
    if int(dataset.get("SamplesPerPixel", 1)) == 3 and photometric.startswith("YBR"):
        photometric = "RGB"  # pydicom decoded the YCbCr pixels to RGB
    dataset.set_pixel_data(cleaned.astype(dataset.pixel_array.dtype, copy=False), photometric,
                           int(dataset.BitsStored), generate_instance_uid=False)
    dataset.BurnedInAnnotation = "NO"
    return Cleaned(labels.get(id(first["coordinates"]), "") or str(first.get("reason") or ""), regions)


def remove_icons_overlays_curves(dataset: Dataset) -> int:
    """Delete the Icon Image Sequence (in the dataset and in every sequence item) and every element of the curve
    and overlay repeating groups, by group range; returns how many elements were deleted."""
    removed = 0
    for tag in list(dataset.keys()):
        group = tag >> 16
        if tag == ICON_IMAGE_SEQUENCE or any(group in groups for groups in REPEATING_GROUPS):
            del dataset[tag]
            removed += 1
            continue
        element = dataset[tag]
        if element.VR == "SQ" and element.value:
            removed += sum(remove_icons_overlays_curves(item) for item in element.value)
    return removed


def clear_unused_high_bits(dataset: Dataset) -> bool:
    """Old-style overlays (retired, PS3.5 before 2004) live in the unused high bits of native pixel data: when
    BitsStored < BitsAllocated, the bits above HighBit of each stored word are cleared (unsigned pixels only:
    the high bits of signed pixels may carry their sign extension). Compressed pixel data is left as it is: its
    codestream holds BitsStored bits a sample (pydicom masks the rest when decoding), with no room for them.
    Returns whether the pixel data was rewritten."""
    import numpy as np

    allocated, stored = int(dataset.get("BitsAllocated") or 0), int(dataset.get("BitsStored") or 0)
    meta = getattr(dataset, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if "PixelData" not in dataset or allocated not in (16, 32) or not 0 < stored < allocated \
            or int(dataset.get("PixelRepresentation", 0)) or (syntax is not None and syntax.is_compressed):
        return False
    high_bit = int(dataset.get("HighBit", stored - 1))
    dtype = np.dtype("<u2" if allocated == 16 else "<u4")
    if syntax is not None and not syntax.is_little_endian:
        dtype = dtype.newbyteorder(">")
    raw = bytes(dataset.PixelData)
    words = np.frombuffer(raw[:len(raw) - len(raw) % dtype.itemsize], dtype=dtype)
    mask = (1 << (high_bit + 1)) - 1
    if not (words & ~np.array(mask, dtype=dtype)).any():
        return False
    dataset.PixelData = (words & np.array(mask, dtype=dtype)).tobytes() + raw[len(raw) - len(raw) % dtype.itemsize:]
    return True
