"""STOW-RS: instances posted in a multipart/related body go through the web upload path
(integrations.dicom.upload.upload_files: the same roles, checks, identity holds and audit), case by case, and the
answer is the PS3.18 store response (ReferencedSOPSequence, FailedSOPSequence).

The case an instance goes to: the `case` parameter when given; else the case of its study when the study is
already attached to a case the person may see; else the newest case with its Accession Number. upload_files then
checks that the person may see that case and may upload (a case he may not see is refused as if there were none).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydicom import dcmread
from pydicom.dataset import Dataset

from engine.domain.actors import Actor
from engine.errors import Forbidden, NotFound
from engine.services.case_lookup import latest_case_by_accession
from integrations.dicom.storage import UID_PATTERN
from integrations.dicom.upload import upload_files
from integrations.dicomweb.multipart import BadBody, Part
from integrations.dicomweb.query import study_case

log = logging.getLogger(__name__)

# Failure Reason (0008,1197) values (PS3.4 GG.4, PS3.18 10.5.3).
PROCESSING_FAILURE = 0x0110
CANNOT_UNDERSTAND = 0xC000
STUDY_MISMATCH = 0xC409
DICOM_TYPES = ("application/dicom",)


@dataclass
class _Item:
    index: int
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_uid: str = ""
    series_uid: str = ""
    accession: str = ""
    content: IO[bytes] | None = None
    failure: int | None = None
    reason: str = ""


@dataclass
class StoreResult:
    referenced: list[tuple[str, str, str, str]] = field(default_factory=list)  # SOP class, instance, study, series
    failed: list[tuple[str, str, int, str]] = field(default_factory=list)  # SOP class, instance, reason, French

    @property
    def status(self) -> int:
        """200 every instance stored, 202 some failed, 409 none stored (PS3.18 10.5.3)."""
        if not self.failed:
            return 200
        return 202 if self.referenced else 409


def _identify(item: _Item, part: Part) -> None:
    media = part.content_type.split(";")[0].strip().lower()
    if media not in DICOM_TYPES:
        item.failure, item.reason = CANNOT_UNDERSTAND, f"type de partie non pris en charge : {media[:60]}"
        return
    try:
        dataset = dcmread(part.content, stop_before_pixels=True,
                          specific_tags=["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
                                         "AccessionNumber"])
    except Exception:  # noqa: BLE001 - anything pydicom cannot read is not an instance
        item.failure, item.reason = CANNOT_UNDERSTAND, "fichier DICOM illisible"
        return
    finally:
        part.content.seek(0)
    item.sop_class_uid = _text(dataset, "SOPClassUID")
    item.sop_instance_uid = _text(dataset, "SOPInstanceUID")
    item.study_uid = _text(dataset, "StudyInstanceUID")
    item.series_uid = _text(dataset, "SeriesInstanceUID")
    item.accession = _text(dataset, "AccessionNumber")
    item.content = part.content
    if not all(UID_PATTERN.match(uid) and len(uid) <= 64 for uid in
               (item.sop_class_uid, item.sop_instance_uid, item.study_uid, item.series_uid)):
        item.failure, item.reason = CANNOT_UNDERSTAND, "UID absent ou mal formé"


def _text(dataset: Dataset, keyword: str) -> str:
    return str(dataset.get(keyword) or "").strip().rstrip("\x00")


def store(ctx: Any, actor: Actor, parts: Iterable[Part], storage: Path, *, study_uid: str | None = None,
          case_id: int | None = None) -> StoreResult:
    """Store the parts; the result lists each instance as referenced (stored, or already stored) or failed.
    Forbidden when the person's role may not upload at all (before anything is read)."""
    items: list[_Item] = []
    try:
        for index, part in enumerate(parts, start=1):
            item = _Item(index)
            _identify(item, part)
            if item.failure is None and study_uid is not None and item.study_uid != study_uid:
                item.failure, item.reason = STUDY_MISMATCH, "Study Instance UID différent de celui de l'adresse"
            if item.content is None:
                part.content.close()
            items.append(item)
        if not items:
            raise BadBody("aucune instance dans le corps multipart/related")
        by_case: dict[int, list[_Item]] = {}
        for item in items:
            if item.failure is not None:
                continue
            target = case_id or study_case(ctx, actor, item.study_uid) or _case_by_accession(ctx, item.accession)
            if target is None:
                item.failure, item.reason = PROCESSING_FAILURE, "aucun dossier trouvé (paramètre case, étude ou " \
                    "numéro d'accès)"
                continue
            by_case.setdefault(target, []).append(item)
        for target, group in by_case.items():
            _upload(ctx, actor, target, group, storage)
    finally:
        for item in items:
            if item.content is not None:
                item.content.close()
    result = StoreResult()
    for item in items:
        if item.failure is None:
            result.referenced.append((item.sop_class_uid, item.sop_instance_uid, item.study_uid, item.series_uid))
        else:
            result.failed.append((item.sop_class_uid, item.sop_instance_uid, item.failure, item.reason))
    return result


def _case_by_accession(ctx: Any, accession: str) -> int | None:
    found = latest_case_by_accession(ctx, accession) if accession else None
    return found.id if found is not None else None


def _upload(ctx: Any, actor: Actor, case_id: int, group: list[_Item], storage: Path) -> None:
    names = {f"part-{item.index}": item for item in group}
    try:
        summary = upload_files(ctx, actor, case_id, [(name, item.content) for name, item in names.items()
                                                     if item.content is not None], storage)
    except NotFound:
        for item in group:
            item.failure, item.reason = PROCESSING_FAILURE, "aucun dossier trouvé (paramètre case, étude ou " \
                "numéro d'accès)"
        return
    except Forbidden as err:
        for item in group:
            item.failure, item.reason = PROCESSING_FAILURE, str(err)
        return
    for name, reason in summary.held + summary.refused:
        kept_out = names.get(name)
        if kept_out is not None:
            kept_out.failure, kept_out.reason = PROCESSING_FAILURE, reason
    log.info("STOW-RS to case %s by %s: %s", case_id, actor.user_id, summary.french())


def response(result: StoreResult, base_url: str, study_uid: str | None) -> dict[str, Any]:
    """The store response (PS3.18 10.5.3, table 10.5.3-2) in the DICOM JSON model."""
    dataset = Dataset()
    if study_uid:
        dataset.RetrieveURL = f"{base_url}/studies/{study_uid}"
    if result.referenced:
        dataset.ReferencedSOPSequence = [
            _item(sop_class, sop_uid, RetrieveURL=f"{base_url}/studies/{study}/series/{series}/instances/{sop_uid}")
            for sop_class, sop_uid, study, series in result.referenced]
    if result.failed:
        dataset.FailedSOPSequence = [_item(sop_class, sop_uid, FailureReason=reason)
                                     for sop_class, sop_uid, reason, _text in result.failed]
    return dataset.to_json_dict()


def _item(sop_class: str, sop_uid: str, **extra: Any) -> Dataset:
    item = Dataset()
    if sop_class:
        item.ReferencedSOPClassUID = sop_class
    if sop_uid:
        item.ReferencedSOPInstanceUID = sop_uid
    for keyword, value in extra.items():
        setattr(item, keyword, value)
    return item
