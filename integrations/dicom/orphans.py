"""Stored DICOM files and the rows that point at them.

Files are stored once under the SHA-256 of their content (integrations.dicom.storage) and referenced by the
index (dicom_instance) or by the instances held out of a study (dicom_held_instance). An instance sent again
under the same SOP Instance UID with other content is refused before anything is written, so it leaves no
file behind; what can still be left (two different contents of one instance racing, a crash between the
write and the index, files of an index restored from an older backup) is found and removed by
`telerad dicom orphans`.

Files derived from a stored file are cached beside the storage (integrations.dicom.previews.cache_of): the
previews (`dicom-previews/<aa>/<sha256>-<version>.png` or `.none`), the rendered images of DICOMweb
(`dicom-previews/rendered/`) and the transcoded copies (`dicom-previews/transcoded/`). They are decoded copies of
patient data, so one whose source file is gone (or found orphan in the same run) is an orphan too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from engine.services.context import EngineContext
from integrations.dicom.models import HELD, INSTANCE
from integrations.dicom.previews import cache_of

_STORED_NAME = re.compile(r"[0-9a-f]{64}")
_PART_NAME = re.compile(r"\.[0-9a-f]{64}\.[0-9a-f]{32}\.part")
_DERIVED_NAME = re.compile(r"\.?([0-9a-f]{64})-[^/]+")  # <sha256>-<variant>, or the temporary .<name>.<thread>
_DERIVED_FOLDERS = ("", "rendered", "transcoded")  # under the cache: previews, rendered, transcoded


def content_conflict(ctx: EngineContext, sop_instance_uid: str, data: bytes | None = None, *,
                     sha256: str | None = None) -> str | None:
    """A French reason when this instance was already received with other content (the first one is kept); the
    content is given as bytes or by its SHA-256."""
    with ctx.read() as session:
        known = session.execute(select(INSTANCE.c.sha256).where(
            INSTANCE.c.sop_instance_uid == sop_instance_uid)).scalar_one_or_none()
    if known is None or known == (sha256 or hashlib.sha256(data or b"").hexdigest()):
        return None
    return "instance déjà reçue avec un autre contenu (même identifiant SOP) : la première est gardée"


@dataclass(frozen=True)
class Orphan:
    path: Path
    size: int
    modified: datetime


def find_orphans(ctx: EngineContext, storage: Path, *, now: datetime, grace: timedelta) -> list[Orphan]:
    """Files of the storage no row points at, and interrupted writes, older than `grace` (a file being indexed
    right now is younger)."""
    with ctx.read() as session:
        referenced = set(session.execute(select(INSTANCE.c.sha256)).scalars())
        referenced.update(session.execute(select(HELD.c.sha256)).scalars())
    cutoff = now - grace
    found = []
    for path in _files(storage):
        stat = path.stat()
        modified = datetime.fromtimestamp(stat.st_mtime, tz=now.tzinfo)
        if modified <= cutoff and (path.name not in referenced or _PART_NAME.fullmatch(path.name)):
            found.append(Orphan(path, stat.st_size, modified))
    gone = {orphan.path.name for orphan in found}
    for path, source in _derived_files(cache_of(storage)):
        if source in gone or not (storage / source[:2] / source).is_file():
            stat = path.stat()
            modified = datetime.fromtimestamp(stat.st_mtime, tz=now.tzinfo)
            if modified <= cutoff:
                found.append(Orphan(path, stat.st_size, modified))
    return found


def remove_orphans(orphans: list[Orphan]) -> int:
    """Remove the files found; the number removed (a file already gone is not counted)."""
    removed = 0
    for orphan in orphans:
        try:
            orphan.path.unlink()
        except FileNotFoundError:
            continue
        removed += 1
    return removed


def _files(storage: Path) -> Iterator[Path]:
    if not storage.is_dir():
        return
    for folder in sorted(storage.iterdir()):
        if not (folder.is_dir() and re.fullmatch(r"[0-9a-f]{2}", folder.name)):
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and (_STORED_NAME.fullmatch(path.name) or _PART_NAME.fullmatch(path.name)):
                yield path


def _derived_files(cache: Path) -> Iterator[tuple[Path, str]]:
    """(cached file, SHA-256 of the stored file it was made from) of the previews, rendered and transcoded."""
    for kind in _DERIVED_FOLDERS:
        root = cache / kind if kind else cache
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if not (folder.is_dir() and re.fullmatch(r"[0-9a-f]{2}", folder.name)):
                continue
            for path in sorted(folder.iterdir()):
                match = _DERIVED_NAME.fullmatch(path.name)
                if match and path.is_file() and match.group(1).startswith(folder.name):
                    yield path, match.group(1)
