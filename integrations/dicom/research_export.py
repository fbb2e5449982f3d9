"""Produce a de-identified research export (CH-8.2), off the request path: a thread started by the approval
(`start_in_background`) or the command line (`produce_export`).

The zip holds `cases.json` (the asked case fields, pseudonymised by engine.services.research), `manifest.json`
(profile and options applied, images kept, images left out and why) and `images/<case>/<n>.dcm`. Images are
de-identified per DICOM PS3.15 Basic Application Level Confidentiality Profile by dicognito (no tag list of ours):
one anonymizer per patient, seeded by the export's secret, so that UIDs are remapped consistently across the
series and studies of a patient; private tags are removed. The Retain Longitudinal Temporal Information option
keeps the acquisition dates and times (the birth date is still replaced). Images with burned-in text
(BurnedInAnnotation=YES, or a modality known to carry it) are left out, with the reason in the manifest: no pixel
cleaning is available here, so Clean Pixel Data, when asked, cannot be applied and does not let them in.

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
import uuid
import zipfile
from pathlib import Path
from typing import Any

import dicognito
import pydicom
from dicognito.anonymizer import Anonymizer
from pydicom.dataset import Dataset
from sqlalchemy import select

from engine.domain.privacy import pseudonymise
from engine.domain.research import burned_in_reason, scrub
from engine.services.context import EngineContext
from engine.services.research import (
    case_rows,
    case_sources,
    fail_production,
    finish_production,
    set_progress,
    start_production,
)
from integrations.dicom.models import DicomInstance, DicomSeries, DicomStudy
from integrations.dicom.storage import path_of

PROFILE = "DICOM PS3.15 E.1 Basic Application Level Confidentiality Profile (dicognito {version})"
CLEAN_PIXELS_AVAILABLE = False
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
    seed = hmac.new(secret, b"dicom:" + patient_key.encode("utf-8"), hashlib.sha256).hexdigest()
    anonymizer = Anonymizer(seed=seed)
    if retain_dates:
        anonymizer.add_element_handler(_KeepDates())
    return anonymizer


class _KeepDates:
    """Retain Longitudinal Temporal Information (full dates): dates and times are left as they are, except the
    patient's birth date and time (replaced by the profile as without the option)."""

    BIRTH = {pydicom.datadict.tag_for_keyword("PatientBirthDate"), pydicom.datadict.tag_for_keyword("PatientBirthTime")}

    def __call__(self, dataset: Any, element: Any) -> bool:
        return element.VR in ("DA", "DT", "TM") and element.tag not in self.BIRTH

    def describe_actions(self) -> Any:
        yield "Keep dates and times other than the patient's birth (Retain Longitudinal Temporal Information)"


def _method_codes(retain_dates: bool) -> list[Dataset]:
    """PS3.16 CID 7050 codes of what was applied (De-identification Method Code Sequence)."""
    codes = [("113100", "Basic Application Confidentiality Profile")]
    if retain_dates:
        codes.append(("113106", "Retain Longitudinal Temporal Information Full Dates Option"))
    items = []
    for value, meaning in codes:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        items.append(item)
    return items


TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "PN"})


def _scrub_names(dataset: Dataset, names: tuple[str, ...]) -> None:
    """Beyond the profile's elements (dicognito's), the names of the patient are scrubbed from whatever text
    element still holds them (descriptions, comments typed at the modality): a check of values, not a tag list."""
    def visit(_ds: Dataset, element: Any) -> None:
        if element.VR in TEXT_VRS and isinstance(element.value, str) and element.value:
            cleaned = scrub(element.value, names)
            if cleaned != element.value:
                element.value = cleaned
    dataset.walk(visit)


def _deidentify(path: Path, anonymizer: Anonymizer, patient: str, retain_dates: bool,
                names: tuple[str, ...] = ()) -> bytes:
    dataset = pydicom.dcmread(path)
    dataset.remove_private_tags()
    original_name = str(dataset.get("PatientName") or "")
    anonymizer.anonymize(dataset)
    _scrub_names(dataset, (*names, original_name))
    dataset.PatientID = patient
    dataset.PatientName = patient[:16]
    # Images with burned-in text never get here (left out): the identity is removed from the whole instance.
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethodCodeSequence = _method_codes(retain_dates)
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _left_out_reason(path: Path, clean_pixels: bool) -> str | None:
    header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["BurnedInAnnotation", "Modality"])
    return burned_in_reason(header.get("BurnedInAnnotation"), header.get("Modality"),
                            clean_pixels and CLEAN_PIXELS_AVAILABLE)


def produce_export(ctx: EngineContext, request_id: int, dicom_root: Path, out_dir: Path) -> str:
    """Produce the export of an approved request into out_dir; returns its file name. Refused (Conflict) when the
    request is not approved or already produced."""
    view = start_production(ctx, request_id)
    spec = view.spec
    try:
        secret = os.urandom(32)
        sources = case_sources(ctx, spec)
        set_progress(ctx, request_id, 0, len(sources))
        out_dir.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid4().hex}.zip"
        partial = out_dir / f".{name}.part"
        kept, left_out = 0, []
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for done, source in enumerate(sources, start=1):
                if spec.images:
                    case = pseudonymise(str(source.case_id), secret)
                    patient = pseudonymise(source.patient_key, secret)
                    anonymizer = _anonymizer(secret, source.patient_key, spec.retain_dates)
                    series_numbers: dict[str, int] = {}
                    for series_uid, path in _case_files(ctx, source.case_id, dicom_root):
                        number = series_numbers.setdefault(series_uid, len(series_numbers) + 1)
                        reason = _left_out_reason(path, spec.clean_pixels)
                        if reason:
                            left_out.append({"case": case, "series": number, "reason": reason})
                            continue
                        kept += 1
                        archive.writestr(f"images/{case}/{number}/{kept:06d}.dcm",
                                         _deidentify(path, anonymizer, patient, spec.retain_dates,
                                                     source.names))
                set_progress(ctx, request_id, done, len(sources))
            archive.writestr("cases.json", json.dumps(case_rows(sources, spec, secret), ensure_ascii=False,
                                                      indent=1, default=str))
            options = (["Retain Longitudinal Temporal Information with Full Dates"] if spec.retain_dates else []) + \
                (["Clean Pixel Data (demandé, non disponible : images à texte incrusté exclues)"]
                 if spec.clean_pixels else [])
            archive.writestr("manifest.json", json.dumps({
                "request": request_id, "protocol": spec.protocol, "approval": spec.approval_ref,
                "fields": list(spec.fields), "case_count": len(sources), "image_count": kept,
                "profile": PROFILE.format(version=dicognito.__version__) if spec.images else None,
                "options": options, "left_out": left_out}, ensure_ascii=False, indent=1))
        digest = hashlib.sha256(partial.read_bytes()).hexdigest()
        os.replace(partial, out_dir / name)
        finish_production(ctx, request_id, name, digest, {
            "case_ids": [source.case_id for source in sources], "image_count": kept, "left_out": left_out,
            "options": options})
        return name
    except Exception as err:
        fail_production(ctx, request_id, f"{type(err).__name__}: {err}")
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


def expired_files_removed(out_dir: Path, names: list[str]) -> int:
    removed = 0
    for name in names:
        try:
            (out_dir / name).unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed
