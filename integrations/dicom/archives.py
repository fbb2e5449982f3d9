"""Zip archives of a web upload, read so that a small hostile archive costs little: the central directory is
checked before any member is inflated (entry count, members that overlap or reuse each other's bytes: the
"quoted-overlap" zip bomb, where a 385 KB file inflates one 128 MB stream thousands of times), every byte
inflated is counted while it streams (per member and for the whole upload), and an archive inside the archive
is refused rather than opened.

Members are read in memory and never written under their own names (no zip-slip possible).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

CHUNK = 1024 * 1024
LOCAL_HEADER = 30  # fixed part of a local file header (APPNOTE 4.3.7)
ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int
    max_total_bytes: int
    max_entries: int


@dataclass
class Budget:
    """Bytes still allowed for the whole upload (every archive and plain file of one request)."""
    remaining: int


def archive_refusal(archive: zipfile.ZipFile, limits: Limits) -> str | None:
    """A French reason to refuse the whole archive without inflating anything, or None."""
    entries = archive.infolist()
    if len(entries) > limits.max_entries:
        return f"archive de plus de {limits.max_entries} entrées : refusée"
    end_of_previous = 0
    for info in sorted(entries, key=lambda i: i.header_offset):
        if info.header_offset < end_of_previous:
            return "archive ZIP invalide (entrées qui se chevauchent) : refusée"
        name_bytes = len(info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437", "replace"))
        end_of_previous = info.header_offset + LOCAL_HEADER + name_bytes + info.compress_size
    return None


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits, budget: Budget) -> bytes | str:
    """The member's bytes, or a French reason. Never trusts the declared sizes: inflation stops as soon as the
    member or the upload goes over its limit."""
    if info.file_size > limits.max_file_bytes:
        return too_big(limits)
    parts: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(CHUNK):
                size += len(chunk)
                if size > limits.max_file_bytes:
                    return too_big(limits)
                if size > budget.remaining:
                    budget.remaining = -1
                    return over_total(limits)
                if not parts and chunk.startswith(ZIP_MAGIC):
                    return "archive dans l'archive : refusée (envoyez les fichiers eux-mêmes)"
                parts.append(chunk)
    except (RuntimeError, NotImplementedError, zipfile.BadZipFile, OSError, EOFError, ValueError):
        return "entrée d'archive illisible (chiffrée ou endommagée)"
    budget.remaining -= size
    return b"".join(parts)


def members(archive: zipfile.ZipFile) -> Iterator[zipfile.ZipInfo]:
    """The members in archive order, directories left out."""
    return (info for info in archive.infolist() if not info.is_dir())


def too_big(limits: Limits) -> str:
    return f"fichier trop volumineux ({_size(limits.max_file_bytes)} au plus)"


def over_total(limits: Limits) -> str:
    return f"volume total décompressé dépassé ({_size(limits.max_total_bytes)}) : ignoré"


def _size(count: int) -> str:
    if count >= 1024 ** 3:
        return f"{count // 1024 ** 3} Go"
    return f"{max(1, count // 1024 ** 2)} Mo"
