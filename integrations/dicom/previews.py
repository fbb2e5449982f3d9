"""The previews of stored files: rendered in a child process with CPU and memory limits, so that an image
built to exhaust a decoder costs the child, never the process that asked (which may run the scheduler and the
listeners), then cached on disk by the SHA-256 of the source file.

Only the worker's preview job renders (integrations.dicom.preview_queue); the pages only read the cache
(preview_state, cached_png): a preview is ready, pending (not rendered yet) or unavailable (rendering failed,
remembered by a `.none` file).

The child is this module run with `python -m`: it sets its own limits before decoding anything, renders
the preview (integrations.dicom.thumbnails.render_preview) and writes the PNG to its standard output. Anything
else (a limit reached, a crash, a timeout) means "no preview": the page says so and the instance stays stored.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import subprocess  # noqa: S404 - runs this very module, with arguments we build
import sys
import uuid
from pathlib import Path

from integrations.dicom.storage import path_of
from integrations.dicom.thumbnails import MAX_SIZE, render_preview

log = logging.getLogger(__name__)

MEMORY_BYTES = 1536 * 1024 * 1024  # address space of the child: decoders and numpy included
CPU_SECONDS = 20
WALL_SECONDS = 30
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VERSION = "v2"  # bump when the rendering changes: cached previews are keyed by it


READY, PENDING, UNAVAILABLE = "ready", "pending", "unavailable"


def cache_of(storage: Path) -> Path:
    """The preview cache beside the DICOM files: <instance>/dicom-previews for <instance>/dicom."""
    return storage.parent / "dicom-previews"


def _cached(cache: Path, sha256: str) -> tuple[Path, Path]:
    folder = cache / sha256[:2]
    return folder / f"{sha256}-{VERSION}.png", folder / f"{sha256}-{VERSION}.none"


def preview_state(cache: Path, sha256: str) -> str:
    """READY (the PNG is cached), UNAVAILABLE (rendering failed) or PENDING: reads the cache, never renders."""
    png, unavailable = _cached(cache, sha256)
    if png.exists():
        return READY
    return UNAVAILABLE if unavailable.exists() else PENDING


def cached_png(cache: Path, sha256: str) -> bytes | None:
    """The cached PNG preview of a stored file, None when it is not (or not yet) there."""
    try:
        return _cached(cache, sha256)[0].read_bytes()
    except FileNotFoundError:
        return None


def render_into_cache(storage: Path, cache: Path, sha256: str) -> bytes | None:
    """Render the preview of a stored file in a limited child process (render_isolated below) and cache the PNG,
    or remember that there is none. For the worker's preview job only: a web request never calls it."""
    png, unavailable = _cached(cache, sha256)
    content = render_isolated(path_of(storage, sha256), MAX_SIZE)
    png.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(png if content is not None else unavailable, content or b"")
    return content


def render_isolated(path: Path, max_size: int, *, memory_bytes: int = MEMORY_BYTES) -> bytes | None:
    """The PNG preview of a stored file, rendered in a limited child process; None when it could not be."""
    environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", __name__, str(path), str(max_size), str(memory_bytes)]
    try:
        child = subprocess.run(command, capture_output=True, timeout=WALL_SECONDS,  # noqa: S603 - this module
                               env=environment, check=False)
    except subprocess.TimeoutExpired:
        log.warning("preview of %s took over %s s: abandoned", path.name, WALL_SECONDS)
        return None
    if child.returncode != 0 or not child.stdout.startswith(PNG_MAGIC):
        log.info("no preview for %s (child status %s): %s", path.name, child.returncode,
                 child.stderr.decode("utf-8", "replace")[-300:].strip())
        return None
    return child.stdout


def _limit(memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def main(argv: list[str]) -> int:
    path, max_size, memory_bytes = Path(argv[0]), int(argv[1]), int(argv[2])
    _limit(memory_bytes)
    png = render_preview(path, max_size)
    if png is None:
        return 3
    sys.stdout.buffer.write(png)
    return 0


def _write_atomically(target: Path, content: bytes) -> None:
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    try:
        temporary.write_bytes(content)
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
