"""Rendered instances (WADO-RS /rendered, WADO-URI image/jpeg): the preview renderer (integrations.dicom.previews),
run in its limited child process (CPU, memory, wall clock, the pixel bounds of integrations.dicom.pixel_limits),
never decoding in the web process. The image is the file's middle frame windowed with the file's own window, in a
square of `size` pixels at most, PNG as rendered or JPEG converted from that PNG (bounded by `size`).

At most RENDERS_AT_ONCE children per process: beyond, the request is answered "busy" (HTTP 503, retry later)
instead of queuing children on a shared machine. Results are cached on disk beside the previews, by the file's
SHA-256 and the size.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

from PIL import Image

from integrations.dicom.previews import VERSION, cache_of, render_isolated
from integrations.dicom.storage import path_of

MAX_VIEWPORT = 1024
DEFAULT_VIEWPORT = 512
RENDERS_AT_ONCE = 2
_slots = threading.BoundedSemaphore(RENDERS_AT_ONCE)


class Busy(RuntimeError):
    """Every rendering slot of this process is taken."""


def rendered_png(storage: Path, sha256: str, size: int) -> bytes | None:
    """The PNG rendering of a stored file (cached); None when it cannot be rendered; Busy when no slot is free."""
    cached = cache_of(storage) / "rendered" / sha256[:2] / f"{sha256}-{VERSION}-{size}.png"
    try:
        return cached.read_bytes()
    except FileNotFoundError:
        pass
    if not _slots.acquire(blocking=False):
        raise Busy()
    try:
        content = render_isolated(path_of(storage, sha256), size)
    finally:
        _slots.release()
    if content is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        temporary = cached.with_name(f".{cached.name}.{threading.get_ident()}")
        temporary.write_bytes(content)
        temporary.replace(cached)
    return content


def as_jpeg(png: bytes, quality: int = 90) -> bytes:
    """A rendered PNG (at most MAX_VIEWPORT pixels a side) as JPEG."""
    with Image.open(io.BytesIO(png)) as image:
        converted = image if image.mode in ("L", "RGB") else image.convert("RGB")
        buffer = io.BytesIO()
        converted.save(buffer, format="JPEG", quality=quality)
        return buffer.getvalue()


def viewport_size(text: str | None) -> int:
    """The square side asked with viewport=width,height (the larger), within MAX_VIEWPORT; ValueError if bad."""
    if not text:
        return DEFAULT_VIEWPORT
    parts = text.split(",")
    if len(parts) not in (2, 6) or not all(p.isdigit() and len(p) <= 5 for p in parts[:2]):
        raise ValueError(text)
    width, height = int(parts[0]), int(parts[1])
    if not 1 <= max(width, height) <= MAX_VIEWPORT or min(width, height) < 1:
        raise ValueError(text)
    return max(width, height)
