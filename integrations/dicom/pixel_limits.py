"""How many pixels decoding an image would allocate, read from the headers before anything is decoded.

A 1 KB JPEG 2000 codestream can declare 8192 x 8192 pixels and make a decoder allocate gigabytes. The dataset's
Rows x Columns x Samples per Pixel and, for compressed images, the size each JPEG or JPEG 2000 codestream
declares (its own header, which the decoder trusts) are checked against a bound; a preview that would pass it
is not rendered (the instance stays stored and usable).
"""

from __future__ import annotations

from typing import Any

from pydicom.encaps import generate_fragments

# One frame, every sample: 5,000 x 5,000 grey (a 4,096 x 5,120 mammogram fits), 2,880 x 2,880 colour. The preview
# works in float64: about 400 MB at the bound, against gigabytes for what the headers of a bomb declare.
MAX_FRAME_PIXELS = 25_000_000
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  "
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}  # F7: JPEG-LS


def decoding_refusal(dataset: Any) -> str | None:
    """Why decoding one frame of this dataset would be unreasonable, or None."""
    declared = int(dataset.get("Rows") or 0) * int(dataset.get("Columns") or 0) * int(
        dataset.get("SamplesPerPixel") or 1)
    if not 0 < declared <= MAX_FRAME_PIXELS:
        return f"image de {declared} pixels par plan (au plus {MAX_FRAME_PIXELS})"
    if not dataset.file_meta.TransferSyntaxUID.is_encapsulated or "PixelData" not in dataset:
        return None
    for fragment in generate_fragments(dataset.PixelData):
        claimed = codestream_pixels(bytes(fragment[:4096]))
        if claimed is not None and claimed > declared:
            return f"flux compressé de {claimed} pixels pour une image de {declared}"
    return None


def codestream_pixels(head: bytes) -> int | None:
    """Width x height x components declared by a JPEG (SOF) or JPEG 2000 (SIZ) codestream starting `head`;
    None when `head` starts no such codestream (a continuation fragment, RLE)."""
    if head.startswith(_JP2_SIGNATURE):
        box = head.find(b"jp2c")
        head = head[box + 4:] if box >= 0 else b""
    if head.startswith(b"\xff\x4f\xff\x51") and len(head) >= 42:
        x, y, x_offset, y_offset = (int.from_bytes(head[i:i + 4], "big") for i in (8, 12, 16, 20))
        return max(x - x_offset, 0) * max(y - y_offset, 0) * int.from_bytes(head[40:42], "big")
    if head.startswith(b"\xff\xd8"):
        return _jpeg_frame_pixels(head)
    return None


def _jpeg_frame_pixels(head: bytes) -> int | None:
    offset = 2
    while offset + 4 <= len(head):
        if head[offset] != 0xFF:
            return None
        marker = head[offset + 1]
        if marker in _SOF_MARKERS and offset + 10 <= len(head):
            height = int.from_bytes(head[offset + 5:offset + 7], "big")
            width = int.from_bytes(head[offset + 7:offset + 9], "big")
            return height * width * head[offset + 9]
        if marker == 0xDA:  # start of scan: no frame header before it
            return None
        offset += 2 + int.from_bytes(head[offset + 2:offset + 4], "big")
    return None
