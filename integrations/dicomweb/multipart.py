"""multipart/related bodies (RFC 2387, PS3.18 8.7.3.3): written as a stream of parts for WADO-RS, read for STOW-RS.

Retrieval streams each stored file from disk in chunks: a whole study is never held in memory. A stored body is
read from a file-like stream (Werkzeug spools a large request body to disk) part by part into spooled
temporary files.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CHUNK = 256 * 1024
SPOOL_BYTES = 8 * 1024 * 1024  # a part larger than this goes to a temporary file
MAX_PARTS = 5000


class BadBody(ValueError):
    """A STOW-RS body that is not a readable multipart/related message; the message (French) says why."""


def new_boundary() -> str:
    return f"telerad-{uuid.uuid4().hex}"


def content_type(boundary: str, part_type: str) -> str:
    return f'multipart/related; type="{part_type}"; boundary={boundary}'


def file_parts(boundary: str, files: Iterable[tuple[Path, str]]) -> Iterator[bytes]:
    """The body: each (path, part content type) read from disk in chunks, then the closing delimiter."""
    # Parts are gathered into writes of about CHUNK bytes: a series of small instances (a CT slice is ~0.5 MB,
    # often much less) would otherwise cost the server one write per part head, per file and per CRLF.
    pending = bytearray()
    for path, part_type in files:
        with open(path, "rb") as handle:
            pending += _part_head(boundary, part_type, _size(handle))
            while chunk := handle.read(CHUNK):
                pending += chunk
                if len(pending) >= CHUNK:  # at most two chunks held at once
                    yield bytes(pending)
                    pending.clear()
        pending += b"\r\n"
    pending += f"--{boundary}--\r\n".encode("ascii")
    yield bytes(pending)


def file_chunks(path: Path) -> Iterator[bytes]:
    """One stored file, read in chunks (WADO-URI: a single application/dicom body)."""
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def byte_parts(boundary: str, parts: Iterable[tuple[bytes, str]]) -> Iterator[bytes]:
    """The body of parts already in memory (frames, one at a time as the iterable yields them)."""
    for content, part_type in parts:
        yield _part_head(boundary, part_type, len(content))
        yield content
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode("ascii")


def _size(handle: IO[bytes]) -> int:
    handle.seek(0, 2)
    size = handle.tell()
    handle.seek(0)
    return size


def _part_head(boundary: str, part_type: str, length: int) -> bytes:
    return f"--{boundary}\r\nContent-Type: {part_type}\r\nContent-Length: {length}\r\n\r\n".encode("ascii")


def boundary_of(header: str) -> str:
    """The boundary parameter of a multipart/related Content-Type; BadBody when there is none."""
    found = re.search(r'boundary="?([^";]{1,70})"?', header, re.IGNORECASE)
    if not header.lower().startswith("multipart/related") or found is None:
        raise BadBody("corps multipart/related avec un paramètre boundary attendu")
    return found.group(1)


@dataclass
class Part:
    content_type: str
    content: IO[bytes]


def read_parts(stream: IO[bytes], boundary: str) -> Iterator[Part]:
    """The parts of a multipart/related body, each in a spooled temporary file (rewound), read from `stream`
    in chunks. The caller closes each part's file."""
    delimiter = b"\r\n--" + boundary.encode("ascii")
    buffer = b"\r\n"  # the first delimiter is not preceded by a line break
    ended = False
    count = 0
    # Skip the preamble up to the first delimiter.
    buffer, ended = _fill(stream, buffer, ended)
    start = buffer.find(delimiter)
    while start < 0 and not ended:
        buffer = buffer[-len(delimiter):]
        buffer, ended = _fill(stream, buffer, ended)
        start = buffer.find(delimiter)
    if start < 0:
        raise BadBody("aucune partie dans le corps multipart/related")
    buffer = buffer[start + len(delimiter):]
    while True:
        while len(buffer) < 2 and not ended:
            buffer, ended = _fill(stream, buffer, ended)
        if buffer.startswith(b"--"):
            return
        count += 1
        if count > MAX_PARTS:
            raise BadBody(f"plus de {MAX_PARTS} parties")
        while b"\r\n\r\n" not in buffer and not ended and len(buffer) < 16384:
            buffer, ended = _fill(stream, buffer, ended)
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0:
            raise BadBody("en-têtes de partie illisibles")
        headers = buffer[:head_end].decode("latin-1")
        found = re.search(r"^content-type:\s*(.+)$", headers, re.IGNORECASE | re.MULTILINE)
        part_type = found.group(1).strip() if found else "application/octet-stream"
        buffer = buffer[head_end + 4:]
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - handed to the caller
        while True:
            end = buffer.find(delimiter)
            if end >= 0:
                spool.write(buffer[:end])
                buffer = buffer[end + len(delimiter):]
                break
            if ended:
                spool.close()
                raise BadBody("corps multipart/related tronqué (délimiteur de fin absent)")
            keep = len(delimiter)
            spool.write(buffer[:-keep])
            buffer = buffer[-keep:]
            buffer, ended = _fill(stream, buffer, ended)
        spool.seek(0)
        yield Part(part_type, spool)  # type: ignore[arg-type]


def _fill(stream: IO[bytes], buffer: bytes, ended: bool) -> tuple[bytes, bool]:
    if ended:
        return buffer, True
    chunk = stream.read(CHUNK)
    return (buffer + chunk, False) if chunk else (buffer, True)
