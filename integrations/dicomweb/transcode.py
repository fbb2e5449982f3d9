"""Compressed instances in explicit VR little endian, for WADO-RS clients that ask for it (or name no transfer
syntax: PS3.18's default). Decoding runs in a child process with the preview renderer's limits (address space,
CPU, wall clock) after the pixel bounds of integrations.dicom.pixel_limits, never in the web process: a
decompression bomb costs the child. The result is cached beside the previews by the SHA-256 of the stored file
(the files never change), so an instance is transcoded once.

The child is this module run with `python -m`: it sets its limits, decodes, and writes the file given.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess  # noqa: S404 - runs this very module, with arguments we build
import sys
import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from integrations.dicom.previews import CPU_SECONDS, MEMORY_BYTES, WALL_SECONDS, cache_of
from integrations.dicom.storage import path_of
from integrations.dicomweb.media import DICOM, EXPLICIT_LITTLE, needs_transcoding
from integrations.dicomweb.query import InstanceFile

log = logging.getLogger(__name__)

MAX_DECODED_BYTES = 512 * 1024 * 1024  # the decoded pixel data of one instance
TRANSCODES_AT_ONCE = 2
_slots = threading.BoundedSemaphore(TRANSCODES_AT_ONCE)


def transcoded(storage: Path, source: Path, sha256: str) -> Path | None:
    """The stored file `source` in explicit VR little endian (cached); None when it cannot be decoded within the
    limits, or when no transcoding slot freed up within WALL_SECONDS."""
    target = cache_of(storage) / "transcoded" / sha256[:2] / f"{sha256}-{EXPLICIT_LITTLE}.dcm"
    failed = target.with_suffix(".none")
    if target.exists():
        return target
    if failed.exists():
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    if not _slots.acquire(timeout=WALL_SECONDS):
        return None
    try:
        command = [sys.executable, "-m", __name__, str(source), str(temporary)]
        environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        try:
            child = subprocess.run(command, capture_output=True, timeout=WALL_SECONDS,  # noqa: S603 - this module
                                   env=environment, check=False)
            if child.returncode == 0 and temporary.exists():
                os.replace(temporary, target)
                return target
            log.info("no transcoding of %s (child status %s): %s", sha256, child.returncode,
                     child.stderr.decode("utf-8", "replace")[-300:].strip())
        except subprocess.TimeoutExpired:
            log.warning("transcoding of %s took over %s s: abandoned", sha256, WALL_SECONDS)
        failed.touch()
        return None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        _slots.release()


def files_to_send(storage: Path, files: Iterable[InstanceFile], wanted: str) -> Iterator[tuple[Path, str]]:
    """(file, part content type) of each instance, in order, transcoded one at a time as the answer streams when
    `wanted` is EXPLICIT_LITTLE and the instance is compressed. One that cannot be transcoded within the limits
    is sent as stored, its part naming its own transfer syntax."""
    for found in files:
        path, syntax = path_of(storage, found.sha256), found.transfer_syntax
        if wanted == EXPLICIT_LITTLE and needs_transcoding(syntax):
            decoded = transcoded(storage, path, found.sha256)
            if decoded is not None:
                path, syntax = decoded, EXPLICIT_LITTLE
        yield path, f"{DICOM}; transfer-syntax={syntax}"


def main(argv: list[str]) -> int:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    from pydicom import dcmread

    from integrations.dicom.pixel_limits import decoding_refusal

    source, target = Path(argv[0]), Path(argv[1])
    dataset = dcmread(source)
    refusal = decoding_refusal(dataset)
    frames = int(dataset.get("NumberOfFrames") or 1)
    decoded = (int(dataset.Rows) * int(dataset.Columns) * int(dataset.get("SamplesPerPixel") or 1)
               * int(dataset.BitsAllocated) // 8 * frames)
    if refusal is not None or decoded > MAX_DECODED_BYTES:
        sys.stderr.write(refusal or f"{decoded} decoded bytes (at most {MAX_DECODED_BYTES})")
        return 3
    dataset.decompress(generate_instance_uid=False)
    dataset.save_as(target, enforce_file_format=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
