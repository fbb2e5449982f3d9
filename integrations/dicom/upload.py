"""Web upload of DICOM files to a case, for sites without DICOM networking (single files or zip archives).

Archives are read by integrations.dicom.archives: checked before anything is inflated (entry count, overlapping
members), inflated bytes counted while they stream, per file and for the whole upload, whatever the headers
claim; an archive inside an archive is refused.
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
from integrations.dicom.archives import Budget, Limits, archive_refusal, members, over_total, read_member, too_big
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
    """(display name, content) of every file, archives opened; what goes over a limit is refused, and once the
    upload's total is spent nothing more is inflated."""
    limits = Limits(MAX_FILE_BYTES, MAX_EXPANDED_BYTES, MAX_FILES)
    budget = Budget(MAX_EXPANDED_BYTES)
    count = 0
    for raw_name, stream in files:
        name = _display(raw_name)
        if budget.remaining < 0:
            summary.refused.append((name, over_total(limits)))
            continue
        if zipfile.is_zipfile(stream):
            stream.seek(0)
            try:
                archive = zipfile.ZipFile(stream)
            except (zipfile.BadZipFile, OSError, ValueError):
                summary.refused.append((name, "archive ZIP illisible"))
                continue
            with archive:
                refusal = archive_refusal(archive, limits)
                if refusal is not None:
                    summary.refused.append((name, refusal))
                    continue
                for info in members(archive):
                    if _skipped(info.filename):
                        continue
                    member = f"{name}/{_display(info.filename)}"
                    count += 1
                    if count > MAX_FILES:
                        summary.refused.append((member, f"plus de {MAX_FILES} fichiers : ignoré"))
                        break
                    if budget.remaining < 0:
                        summary.refused.append((member, over_total(limits)))
                        break
                    content = read_member(archive, info, limits, budget)
                    if isinstance(content, str):
                        summary.refused.append((member, content))
                        continue
                    yield member, content
            continue
        stream.seek(0)
        content = stream.read(MAX_FILE_BYTES + 1)
        count += 1
        if len(content) > MAX_FILE_BYTES:
            summary.refused.append((name, too_big(limits)))
        elif count > MAX_FILES:
            summary.refused.append((name, f"plus de {MAX_FILES} fichiers : ignoré"))
        elif len(content) > budget.remaining:
            budget.remaining = -1
            summary.refused.append((name, over_total(limits)))
        else:
            budget.remaining -= len(content)
            yield name, content


def _display(name: str) -> str:
    cleaned = "".join(c for c in (name or "") if c.isprintable()).strip() or "(sans nom)"
    return cleaned[-120:]


def _skipped(name: str) -> bool:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return (base.upper() in SKIPPED_NAMES or base.startswith(".") or name.startswith("__MACOSX/")
            or not base)
