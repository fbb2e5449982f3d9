"""Non-diagnostic preview thumbnails: the middle image of a series, windowed with the file's own settings.

The window comes from the file (Window Center / Window Width, after the modality rescale), else the image's
minimum and maximum; MONOCHROME1 is inverted; colour images are shown as they are. 256 pixels at most,
centred on a black square, PNG (rendered in a limited child process and cached: integrations.dicom.previews).
When the pixel data cannot be decoded here (a codec is missing) or would be too large to decode
(integrations.dicom.pixel_limits), there is no preview: the instance is stored and indexed all the same.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydicom import dcmread
from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array

from integrations.dicom.pixel_limits import decoding_refusal

log = logging.getLogger(__name__)

MAX_SIZE = 256


def render_preview(path: Path, max_size: int = MAX_SIZE) -> bytes | None:
    try:
        dataset = dcmread(path)
        refusal = decoding_refusal(dataset)
        if refusal is not None:
            log.warning("no preview for %s: %s", path.name, refusal)
            return None
        frames = int(dataset.get("NumberOfFrames") or 1)
        # Only the middle frame is decoded: a long multi-frame series never sits whole in memory.
        pixels = pixel_array(dataset, index=frames // 2) if frames > 1 else pixel_array(dataset)
    except Exception as err:  # missing codec, damaged stream: no preview, the instance stays usable
        log.info("no preview for %s: %s", path.name, err)
        return None
    image = _to_image(dataset, pixels)
    image.thumbnail((max_size, max_size))
    side = max(image.size)  # square, black margins: previews line up whatever the image's shape
    square = Image.new(image.mode, (side, side))
    square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    buffer = io.BytesIO()
    square.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _to_image(dataset: Any, pixels: np.ndarray) -> Image.Image:
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, dataset)
    if pixels.ndim == 3:  # colour (pydicom gives RGB)
        if pixels.dtype != np.uint8:
            top = float(pixels.max()) or 1.0
            pixels = (pixels.astype(np.float64) / top * 255.0)
        return Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), mode="RGB")
    values = apply_modality_lut(pixels, dataset).astype(np.float64)
    low, high = _window(dataset, values)
    scaled = np.clip((values - low) / max(high - low, 1e-6), 0.0, 1.0)
    if photometric == "MONOCHROME1":
        scaled = 1.0 - scaled
    return Image.fromarray((scaled * 255.0).round().astype(np.uint8), mode="L")


def _first(value: Any) -> float | None:
    if value is None:
        return None
    with contextlib.suppress(TypeError, IndexError):
        value = value[0] if not isinstance(value, (int, float, str)) else value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _window(dataset: Any, values: np.ndarray) -> tuple[float, float]:
    """(low, high) of the file's first window (PS3.3 C.11.2.1.2 linear function), else min and max."""
    center, width = _first(dataset.get("WindowCenter")), _first(dataset.get("WindowWidth"))
    if center is not None and width is not None and width >= 1:
        return center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    return float(values.min()), float(values.max())
