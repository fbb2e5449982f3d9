"""Frames of a stored instance for WADO-RS, read from the stored pixel data without decoding anything.

Native (uncompressed) pixel data: each frame is a byte range of the file, read alone (a large multi-frame
instance is never read whole). Encapsulated pixel data: a frame is its compressed bitstream, served as stored
(the client asked for it with transfer-syntax=* or the stored syntax); decoding in the web process is never done
here, so that a decompression bomb costs nothing (see integrations.dicom.pixel_limits for the previews).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.encaps import generate_frames
from pydicom.uid import UID

PIXEL_DATA = 0x7FE00010


class FrameError(ValueError):
    """The frames cannot be served (no pixel data, a frame number out of range, bit-packed data)."""


def frame_numbers(text: str, limit: int = 10000) -> list[int]:
    """"1,3,5" as [1, 3, 5]; FrameError unless every item is an integer from 1."""
    parts = text.split(",")
    if not text or len(parts) > limit or any(not p.isdigit() or len(p) > 9 or int(p) < 1 for p in parts):
        raise FrameError("liste de numéros de trame (entiers à partir de 1, séparés par des virgules) attendue")
    return [int(p) for p in parts]


class _Window:
    """A read-only view of a byte range of a file (the pixel data value), for the encapsulation reader."""

    def __init__(self, handle: IO[bytes], start: int, length: int):
        self._handle, self._start, self._length, self._position = handle, start, length, 0

    def read(self, size: int = -1) -> bytes:
        left = self._length - self._position
        size = left if size is None or size < 0 else min(size, left)
        self._handle.seek(self._start + self._position)
        data = self._handle.read(size)
        self._position += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._position, 2: self._length}[whence]
        self._position = max(0, min(self._length, base + offset))
        return self._position

    def tell(self) -> int:
        return self._position


def read_frames(path: Path, numbers: list[int]) -> Iterator[bytes]:
    """The bytes of the frames asked, in the order asked. FrameError (before anything is yielded) when the
    instance has no pixel data or a number is over its frame count."""
    try:
        dataset = dcmread(path, defer_size=1024)
        element = dataset.get_item(PIXEL_DATA, keep_deferred=True)
    except OSError:
        raise
    except Exception as err:  # a damaged stored file (checked at reception, so unexpected): not served
        raise FrameError("données d'image illisibles") from err
    if not isinstance(element, RawDataElement) or element.value_tell is None:
        raise FrameError("cette instance n'a pas de données d'image")
    frames = int(dataset.get("NumberOfFrames") or 1)
    if any(n > frames for n in numbers):
        raise FrameError(f"numéro de trame au-delà du nombre de trames ({frames})")
    syntax = UID(str(dataset.file_meta.TransferSyntaxUID))
    if syntax.is_deflated:
        raise FrameError("données compressées par Deflate : récupérez l'instance entière")
    start = element.value_tell
    if not syntax.is_encapsulated:
        bits = int(dataset.BitsAllocated) * int(dataset.Rows) * int(dataset.Columns) \
            * int(dataset.get("SamplesPerPixel") or 1)
        if bits % 8:
            raise FrameError("trames non alignées sur l'octet (Bits Allocated 1) : récupérez l'instance entière")
        size = bits // 8
        return _native(path, start, size, numbers)
    return _encapsulated(path, start, element.length, frames, numbers)


def _native(path: Path, start: int, size: int, numbers: list[int]) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        for number in numbers:
            handle.seek(start + (number - 1) * size)
            yield handle.read(size)


def _encapsulated(path: Path, start: int, length: int, frames: int, numbers: list[int]) -> Iterator[bytes]:
    wanted = set(numbers)
    found: dict[int, bytes] = {}
    with open(path, "rb") as handle:
        size = handle.seek(0, 2) - start if length == 0xFFFFFFFF else length
        window = _Window(handle, start, size)
        for index, frame in enumerate(generate_frames(window, number_of_frames=frames), start=1):
            if index in wanted:
                found[index] = frame
            if len(found) == len(wanted):
                break
    for number in numbers:
        yield found[number]
