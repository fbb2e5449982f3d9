"""Web upload of DICOM files to a case, for sites without DICOM networking (single files or zip archives).

Archive members are read in memory and never written under their own names (no zip-slip possible); sizes are
capped per file, per archive and in number of files, whatever the archive's headers claim.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from engine.domain.actors import Actor
from engine.errors import Forbidden
from engine.services.case_lookup import case_site
from engine.services.cases import ensure_visible
from engine.services.context import EngineContext
from engine.services.images import record_image_event
from integrations.dicom.ingest import ingest_file

log = logging.getLogger(__name__)

UPLOAD_ROLES = frozenset({"technologist", "requester", "radiologist"})
MAX_FILE_BYTES = 128 * 1024 * 1024
MAX_EXPANDED_BYTES = 1024 * 1024 * 1024
MAX_FILES = 5000
SKIPPED_NAMES = {"DICOMDIR", "README", "README.TXT", "AUTORUN.INF"}


@dataclass
class UploadSummary:
    stored: int = 0
    duplicate: int = 0
    held: list[tuple[str, str]] = field(default_factory=list)  # (file name, French reason): kept out of a study
    refused: list[tuple[str, str]] = field(default_factory=list)  # (file name, French reason)

    @property
    def total(self) -> int:
        return self.stored + self.duplicate + len(self.held) + len(self.refused)

    def french(self) -> str:
        parts = [f"{self.stored} image(s) enregistrée(s)"]
        if self.duplicate:
            parts.append(f"{self.duplicate} déjà reçue(s)")
        if self.held:
            shown = "; ".join(f"{name} : {reason}" for name, reason in self.held[:10])
            more = f" (et {len(self.held) - 10} autre(s))" if len(self.held) > 10 else ""
            parts.append(f"{len(self.held)} retenue(s) pour vérification d'identité — {shown}{more}")
        if self.refused:
            shown = "; ".join(f"{name} : {reason}" for name, reason in self.refused[:10])
            more = f" (et {len(self.refused) - 10} autre(s))" if len(self.refused) > 10 else ""
            parts.append(f"{len(self.refused)} refusée(s) — {shown}{more}")
        return ", ".join(parts) + "."


def upload_files(ctx: EngineContext, actor: Actor, case_id: int, files: Iterable[tuple[str, IO[bytes]]],
                 storage: Path) -> UploadSummary:
    """Store and index the DICOM files sent by a person for a case they can see (CH-4.1.11, CH-5.1)."""
    ensure_visible(ctx, actor, case_id)
    if not actor.roles & UPLOAD_ROLES:
        raise Forbidden("Votre rôle ne permet pas d'envoyer des images.")
    site_id = case_site(ctx, case_id)
    summary = UploadSummary()
    for name, content in _expand(files, summary):
        result = ingest_file(ctx, content, site_id, "upload", storage=storage, case_id=case_id)
        if result.status == "stored":
            summary.stored += 1
        elif result.status == "duplicate":
            summary.duplicate += 1
        elif result.status == "held":
            summary.held.append((name, result.reason or "retenue"))
        else:
            summary.refused.append((name, result.reason or "refusé"))
    record_image_event(ctx, case_id, "dicom.uploaded", {
        "by": actor.user_id, "stored": summary.stored, "duplicate": summary.duplicate,
        "held": len(summary.held), "refused": len(summary.refused)}, actor=actor.user_id)
    log.info("DICOM upload to case %s by %s: %s", case_id, actor.user_id, summary.french())
    return summary


def _expand(files: Iterable[tuple[str, IO[bytes]]], summary: UploadSummary) -> Iterator[tuple[str, bytes]]:
    """(display name, content) of every file, archives opened; oversize or unreadable entries are refused."""
    count, expanded = 0, 0
    for raw_name, stream in files:
        name = _display(raw_name)
        if zipfile.is_zipfile(stream):
            stream.seek(0)
            try:
                archive = zipfile.ZipFile(stream)
            except (zipfile.BadZipFile, OSError):
                summary.refused.append((name, "archive ZIP illisible"))
                continue
            with archive:
                for info in archive.infolist():
                    member = f"{name}/{_display(info.filename)}"
                    if info.is_dir() or _skipped(info.filename):
                        continue
                    count += 1
                    if count > MAX_FILES:
                        summary.refused.append((member, f"plus de {MAX_FILES} fichiers : ignoré"))
                        continue
                    content = _read_member(archive, info)
                    if isinstance(content, str):
                        summary.refused.append((member, content))
                        continue
                    expanded += len(content)
                    if expanded > MAX_EXPANDED_BYTES:
                        summary.refused.append((member, "volume total décompressé dépassé (1 Go) : ignoré"))
                        continue
                    yield member, content
            continue
        stream.seek(0)
        content = stream.read(MAX_FILE_BYTES + 1)
        count += 1
        if len(content) > MAX_FILE_BYTES:
            summary.refused.append((name, "fichier trop volumineux (128 Mo au plus)"))
        elif count > MAX_FILES:
            summary.refused.append((name, f"plus de {MAX_FILES} fichiers : ignoré"))
        else:
            yield name, content


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | str:
    """The member's bytes, or a French reason; never trusts the declared size."""
    if info.file_size > MAX_FILE_BYTES:
        return "fichier trop volumineux (128 Mo au plus)"
    try:
        with archive.open(info) as member:
            content = member.read(MAX_FILE_BYTES + 1)
    except (RuntimeError, NotImplementedError, zipfile.BadZipFile, OSError, EOFError):
        return "entrée d'archive illisible (chiffrée ou endommagée)"
    if len(content) > MAX_FILE_BYTES:
        return "fichier trop volumineux (128 Mo au plus)"
    return content


def _display(name: str) -> str:
    cleaned = "".join(c for c in (name or "") if c.isprintable()).strip() or "(sans nom)"
    return cleaned[-120:]


def _skipped(name: str) -> bool:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return (base.upper() in SKIPPED_NAMES or base.startswith(".") or name.startswith("__MACOSX/")
            or not base)
