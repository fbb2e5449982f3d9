"""Produce a de-identified research export (CH-8.2), off the request path: a thread started by the approval
(`start_in_background`), the command line (`produce_export`), or the worker taking over an interrupted production
(`restart_stale_productions`).

The zip holds `cases.json` (the asked case fields, pseudonymised by engine.services.research), `manifest.json`
(profile and options applied, images kept, images left out and why) and `images/<case>/<n>.dcm`. Images are
de-identified per DICOM PS3.15 Basic Application Level Confidentiality Profile by dicognito (no tag list of ours):
one anonymizer per patient, seeded by the export's secret, so that UIDs are remapped consistently across the
series and studies of a patient; private tags are removed. Dates and times are shifted by dicognito's own
DateTimeAnonymizer with the patient's shift of the case data (engine.domain.research.date_shift, whole days), so
that an image and its case in cases.json move by the same number of days. The Retain Longitudinal Temporal
Information option keeps the dates and times, in the images and in cases.json alike, and removes the birth date
(with real dates beside them, a shifted birth date would be recovered). Before dicognito, the text elements of
the profile it leaves (comments, PatientAge...) are removed (integrations.dicom.research_header); after it, the
text left is scrubbed of the case's and image's names and identifiers. Documents (encapsulated PDF...) are left
out; images that may carry burned-in text (BurnedInAnnotation=YES, a modality known to carry it, a screen copy)
are left out, with the reason in the manifest,
unless the Clean Pixel Data option is chosen and deid's rules know where the text of their device is: then they
are cleaned (integrations.dicom.research_pixels).

The export's secret is drawn for the export and never stored: pseudonyms are stable within the export and cannot
be linked to those of another export."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import threading
import time
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import dicognito
import pydicom
from dicognito.anonymizer import Anonymizer
from dicognito.datetimeanonymizer import DateTimeAnonymizer
from pydicom.dataset import Dataset
from sqlalchemy import select

from engine.domain.privacy import pseudonymise
from engine.domain.research import burned_in_reason, burned_in_risk, date_shift, not_an_image, scrub
from engine.services.context import EngineContext
from engine.services.research import RequestView, case_rows, case_sources, expire_exports
from engine.services.research_production import (
    claim_stale_production,
    fail_production,
    files_in_use,
    finish_production,
    set_progress,
    stale_productions,
    start_production,
)
from integrations.dicom.models import DicomInstance, DicomSeries, DicomStudy
from integrations.dicom.research_header import original_identifiers, profile_text_removed
from integrations.dicom.research_pixels import (
    CLEAN_PIXEL_DATA,
    Cleaned,
    clean_burned_in_text,
    clear_unused_high_bits,
    remove_icons_overlays_curves,
)
from integrations.dicom.storage import path_of

PROFILE = "DICOM PS3.15 E.1 Basic Application Level Confidentiality Profile (dicognito {version})"
HEARTBEAT_SECONDS = 30.0  # the heartbeat is written at most this often within a case (and after each case)
LOG = logging.getLogger(__name__)
RUNNING: list[threading.Thread] = []  # the background productions started (tests join them)


def research_dir(instance_path: Path) -> Path:
    return instance_path / "research"


def _case_files(ctx: EngineContext, case_id: int, dicom_root: Path) -> list[tuple[str, Path]]:
    with ctx.read() as session:
        rows = session.execute(
            select(DicomSeries.uid, DicomInstance.sha256).join(DicomStudy, DicomStudy.uid == DicomSeries.study_uid)
            .join(DicomInstance, DicomInstance.series_uid == DicomSeries.uid)
            .where(DicomStudy.case_id == case_id)
            .order_by(DicomSeries.study_uid, DicomSeries.uid, DicomInstance.instance_number,
                      DicomInstance.sop_instance_uid)).all()
    return [(row.uid, path_of(dicom_root, row.sha256)) for row in rows]


def _anonymizer(secret: bytes, patient_key: str, retain_dates: bool) -> Anonymizer:
    """dicognito's anonymizer for one patient: seeded by the export's secret (UIDs and names remapped the same way
    across his series and studies), dates and times shifted by his shift of the case data, or kept."""
    seed = hmac.new(secret, b"dicom:" + patient_key.encode("utf-8"), hashlib.sha256).hexdigest()
    anonymizer = Anonymizer(seed=seed)
    # Handlers added last run first: the patient's shift replaces dicognito's own offset (62 to 730 days), and
    # with Retain Longitudinal Temporal Information, every date is kept but the birth date, removed, before that.
    anonymizer.add_element_handler(DateTimeAnonymizer(int(date_shift(patient_key, secret).days) * 24))
    if retain_dates:
        anonymizer.add_element_handler(_KeepDates())
    return anonymizer


class _KeepDates:
    """Retain Longitudinal Temporal Information (full dates): dates and times are left as they are, except the
    patient's birth date, emptied (PS3.15 action Z, which the option does not change), and birth time, removed
    (X). Not shifted: beside real dates, the case data's shift would be known (the case dates are kept too), and
    not its year either: with the age at a real date, the year narrows the birth date further."""

    BIRTH_DATE = pydicom.datadict.tag_for_keyword("PatientBirthDate")
    BIRTH_TIME = pydicom.datadict.tag_for_keyword("PatientBirthTime")

    def __call__(self, dataset: Any, element: Any) -> bool:
        if element.tag == self.BIRTH_DATE:
            element.value = ""
            return True
        if element.tag == self.BIRTH_TIME:
            del dataset[element.tag]
            return True
        return element.VR in ("DA", "DT", "TM")

    def describe_actions(self) -> Any:
        yield "Keep dates and times, remove the patient's birth date and time (Retain Longitudinal Temporal Info)"


def _method_codes(retain_dates: bool, cleaned: bool) -> list[Dataset]:
    """PS3.16 CID 7050 codes of what was applied (De-identification Method Code Sequence)."""
    codes = [("113100", "Basic Application Confidentiality Profile")]
    if cleaned:
        codes.append(CLEAN_PIXEL_DATA)
    if retain_dates:
        codes.append(("113106", "Retain Longitudinal Temporal Information Full Dates Option"))
    items = []
    for value, meaning in codes:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        items.append(item)
    return items


TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "PN"})


def _scrub_names(dataset: Dataset, names: tuple[str, ...], identifiers: tuple[str, ...] = ()) -> None:
    """Beyond the profile's elements, the names and identifiers of the patient (and phone numbers) are scrubbed
    from whatever text element still holds them (descriptions typed at the modality): a check of values."""
    def visit(_ds: Dataset, element: Any) -> None:
        if element.VR in TEXT_VRS and isinstance(element.value, str) and element.value:
            cleaned = scrub(element.value, names, identifiers)
            if cleaned != element.value:
                element.value = cleaned
    dataset.walk(visit)


def _values(value: Any) -> tuple[str, ...]:
    """A multi-valued element's values (ImageType), whether pydicom gives a MultiValue, a str or nothing."""
    if value is None:
        return ()
    return (str(value),) if isinstance(value, str) else tuple(str(item) for item in value)


def _read(path: Path, clean_pixels: bool) -> tuple[Dataset | None, str | None, Cleaned | None]:
    """The image to export (cleaned of its burned-in text when it needs and allows it), or None with the reason it
    is left out."""
    dataset = pydicom.dcmread(path)
    sop_class = str(dataset.get("SOPClassUID") or "")
    document = not_an_image(sop_class, "EncapsulatedDocument" in dataset, "PixelData" in dataset)
    if document is not None:
        return None, document, None
    burned_in, modality, image_type = dataset.get("BurnedInAnnotation"), dataset.get("Modality"), \
        _values(dataset.get("ImageType"))
    screen = (str(dataset.get("ConversionType") or ""), str(dataset.get("SeriesDescription") or ""))
    if burned_in_risk(burned_in, modality, sop_class, image_type, *screen) is None:
        return dataset, None, None
    cleaned = clean_burned_in_text(dataset) if clean_pixels else None
    if cleaned is None:
        return None, burned_in_reason(burned_in, modality, clean_pixels, sop_class, image_type, *screen), None
    return dataset, None, cleaned


def _deidentify(dataset: Dataset, anonymizer: Anonymizer, patient: str, retain_dates: bool,
                names: tuple[str, ...] = (), cleaned: bool = False, identifiers: tuple[str, ...] = ()) -> bytes:
    dataset.remove_private_tags()
    remove_icons_overlays_curves(dataset)  # may repeat burned-in text: X in PS3.15, left by dicognito
    clear_unused_high_bits(dataset)  # old-style overlays in the bits above HighBit
    original_name = str(dataset.get("PatientName") or "")
    identifiers = (*identifiers, *original_identifiers(dataset))
    profile_text_removed(dataset)  # comments, patient characteristics (PatientAge...): deid's recipe
    anonymizer.anonymize(dataset)
    _scrub_names(dataset, (*names, original_name), identifiers)
    dataset.PatientID = patient
    dataset.PatientName = patient[:16]
    # Images with burned-in text get here cleaned, or not at all: the identity is removed from the whole instance.
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethodCodeSequence = _method_codes(retain_dates, cleaned)
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


class _Beat:
    """The production's progress and heartbeat, written after each case and at most every HEARTBEAT_SECONDS
    within one; raises Conflict when the production was taken over (the producer stops)."""

    def __init__(self, ctx: EngineContext, view: RequestView):
        self.ctx, self.request_id, self.attempt, self.last = ctx, view.id, view.attempt, time.monotonic()

    def __call__(self, done: int | None = None, total: int | None = None) -> None:
        if done is None and time.monotonic() - self.last < HEARTBEAT_SECONDS:
            return
        set_progress(self.ctx, self.request_id, self.attempt, done, total)
        self.last = time.monotonic()


def _options(retain_dates: bool, clean_pixels: bool) -> list[str]:
    options = ["Retain Longitudinal Temporal Information with Full Dates"] if retain_dates else []
    if clean_pixels:
        from importlib.metadata import version

        options.append(f"Clean Pixel Data (règles CTP de deid {version('deid')} : texte incrusté effacé des "
                       "appareils connus, images des autres appareils exclues)")
    return options


def produce_export(ctx: EngineContext, request_id: int, dicom_root: Path, out_dir: Path) -> str:
    """Produce the export of an approved request into out_dir; returns its file name. Refused (Conflict) when the
    request is not approved or already produced."""
    return produce_claimed(ctx, start_production(ctx, request_id), dicom_root, out_dir)


def partial_files(out_dir: Path, request_id: int) -> list[Path]:
    """The files of a request's productions left by an interrupted one: partial, or finished but never recorded
    (its process died between the rename and the record). Only for a request still RUNNING: it has no file yet."""
    if not out_dir.is_dir():
        return []
    return sorted([*out_dir.glob(f".{request_id}-*.part"), *out_dir.glob(f"{request_id}-*.zip")])


def produce_claimed(ctx: EngineContext, view: RequestView, dicom_root: Path, out_dir: Path) -> str:
    """Produce the export of a request claimed for production (view.attempt), with a secret of its own."""
    spec, request_id = view.spec, view.id
    beat = _Beat(ctx, view)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"{request_id}-{uuid.uuid4().hex}.zip"  # named after its request: the purge knows whose it is
    partial = out_dir / f".{name}.part"  # .<request>-<random>.zip.part
    try:
        secret = os.urandom(32)
        sources = case_sources(ctx, spec)
        beat(0, len(sources))
        kept, left_out, cleaned = 0, [], []
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for done, source in enumerate(sources, start=1):
                if spec.images:
                    case = pseudonymise(str(source.case_id), secret)
                    patient = pseudonymise(source.patient_key, secret)
                    anonymizer = _anonymizer(secret, source.patient_key, spec.retain_dates)
                    series_numbers: dict[str, int] = {}
                    for series_uid, path in _case_files(ctx, source.case_id, dicom_root):
                        beat()
                        number = series_numbers.setdefault(series_uid, len(series_numbers) + 1)
                        dataset, reason, cleaning = _read(path, spec.clean_pixels)
                        if dataset is None:
                            left_out.append({"case": case, "series": number, "reason": reason})
                            continue
                        kept += 1
                        if cleaning is not None:
                            cleaned.append({"case": case, "series": number, "rule": cleaning.rule,
                                            "regions": list(cleaning.regions)})
                        archive.writestr(f"images/{case}/{number}/{kept:06d}.dcm",
                                         _deidentify(dataset, anonymizer, patient, spec.retain_dates,
                                                     source.names, cleaning is not None, source.identifiers))
                beat(done, len(sources))
            archive.writestr("cases.json", json.dumps(case_rows(sources, spec, secret), ensure_ascii=False,
                                                      indent=1, default=str))
            options = _options(spec.retain_dates, spec.clean_pixels)
            archive.writestr("manifest.json", json.dumps({
                "request": request_id, "protocol": spec.protocol, "approval": spec.approval_ref,
                "fields": list(spec.fields), "case_count": len(sources), "image_count": kept,
                "profile": PROFILE.format(version=dicognito.__version__) if spec.images else None,
                "dates": "conservées dans les images et dans cases.json ; date de naissance retirée des images"
                if spec.retain_dates else "décalées par patient du même nombre de jours que dans cases.json",
                "options": options, "cleaned": cleaned, "left_out": left_out}, ensure_ascii=False, indent=1))
        digest = hashlib.sha256(partial.read_bytes()).hexdigest()
        os.replace(partial, out_dir / name)
        finish_production(ctx, request_id, view.attempt, name, digest, {
            "case_ids": [source.case_id for source in sources], "image_count": kept, "left_out": left_out,
            "cleaned": cleaned, "options": options})  # Conflict when taken over: the new producer's file counts
        return name
    except Exception as err:
        partial.unlink(missing_ok=True)
        (out_dir / name).unlink(missing_ok=True)  # renamed but not recorded: no request references it
        fail_production(ctx, request_id, view.attempt, f"{type(err).__name__}: {err}")
        raise


def start_in_background(ctx: EngineContext, request_id: int, dicom_root: Path, out_dir: Path) -> threading.Thread:
    """Produce the export in a thread (the approval returns at once; the request page shows the progress)."""
    def run() -> None:
        try:
            produce_export(ctx, request_id, dicom_root, out_dir)
        except Exception:  # recorded on the request by produce_export (status failed, with the error)
            LOG.exception("research export %s failed", request_id)

    thread = threading.Thread(target=run, name=f"research-export-{request_id}", daemon=True)
    RUNNING[:] = [started for started in RUNNING if started.is_alive()]
    RUNNING.append(thread)
    thread.start()
    return thread


def purge_exports(ctx: EngineContext, out_dir: Path) -> tuple[int, int]:
    """Exports not downloaded within their time limit marked expired and their files deleted, and the files left
    behind swept: (expired, files deleted). Run hourly by the worker, at each visit of the research pages and by
    `telerad research purge`."""
    names = expire_exports(ctx)
    return len(names), expired_files_removed(out_dir, names) + orphan_files_removed(ctx, out_dir)


ORPHAN_AGE = timedelta(hours=1)


def orphan_files_removed(ctx: EngineContext, out_dir: Path) -> int:
    """Delete the files of the research folder (finished `.zip` or partial `.part`) that no READY request
    references (nor one downloaded within the hour: being sent), that are not a RUNNING request's, and that were
    last written more than an hour ago (file times are the system's): an export whose process died between its
    rename and its record, or a partial file of an older naming. Logged."""
    if not out_dir.is_dir():
        return 0
    ready, running = files_in_use(ctx, ORPHAN_AGE)
    cutoff, removed = time.time() - ORPHAN_AGE.total_seconds(), 0
    for path in sorted(out_dir.iterdir()):
        name = path.name
        if not path.is_file() or not (name.endswith(".zip") or name.endswith(".part")) or name in ready:
            continue
        owner = name.lstrip(".").split("-", 1)[0]
        if owner.isdigit() and int(owner) in running:
            continue
        try:
            if path.stat().st_mtime >= cutoff:
                continue
            path.unlink()
        except FileNotFoundError:
            continue
        removed += 1
        LOG.warning("research exports: %s removed (no ready export references it, last written over an hour ago)",
                    name)
    return removed


def expired_files_removed(out_dir: Path, names: list[str]) -> int:
    removed = 0
    for name in names:
        try:
            (out_dir / name).unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def restart_stale_productions(ctx: EngineContext, dicom_root: Path, out_dir: Path) -> list[int]:
    """The worker's job: every production interrupted (RUNNING, heartbeat older than STALE_PRODUCTION) claimed by
    one conditional UPDATE (another worker claiming it at once gets nothing), its partial and unrecorded files
    removed, and produced again with a fresh secret. Returns the requests produced again (ready or failed: recorded)."""
    restarted = []
    for request_id in stale_productions(ctx):
        view = claim_stale_production(ctx, request_id)
        if view is None:
            continue
        for partial in partial_files(out_dir, request_id):
            partial.unlink(missing_ok=True)
        LOG.warning("research export %s: interrupted production taken over (attempt %s)", request_id, view.attempt)
        restarted.append(request_id)
        try:
            produce_claimed(ctx, view, dicom_root, out_dir)
        except Exception:  # recorded on the request (status failed, with the error), or taken over again
            LOG.exception("research export %s failed", request_id)
    return restarted
