"""The DICOM JSON model (PS3.18 F.2) of query answers and metadata, built with pydicom's Dataset.to_json_dict.

A query answer holds the level's default attributes (PS3.18 tables 6.7.1-2, -2a and -2b) present in the index or
in the header of one of its files, the counts, the RetrieveURL, and the attributes asked with includefield. Large
binary values of a header are left out of query answers; metadata gives the pixel data as a BulkDataURI (its
frames resource)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from integrations.dicomweb.headers import header
from integrations.dicomweb.keys import INSTANCE, SERIES, STUDY, Query
from integrations.dicomweb.query import Found

STUDY_ATTRIBUTES = ("StudyDate", "StudyTime", "AccessionNumber", "ReferringPhysicianName", "TimezoneOffsetFromUTC",
                    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID",
                    "StudyDescription")
SERIES_ATTRIBUTES = ("Modality", "SeriesDescription", "SeriesNumber", "SeriesInstanceUID",
                     "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime")
FROM_HEADER = {STUDY: STUDY_ATTRIBUTES, SERIES: STUDY_ATTRIBUTES + SERIES_ATTRIBUTES,
               INSTANCE: ("StudyInstanceUID", "SeriesInstanceUID")}
INLINE_BINARY_BYTES = 4096


def _set(dataset: Dataset, keyword: str, value: Any) -> None:
    if value is None or value == "" or value == []:
        return
    setattr(dataset, keyword, value)


def _copy(dataset: Dataset, source: Dataset | None, keywords: tuple[str, ...]) -> None:
    if source is None:
        return
    for keyword in keywords:
        if keyword in source and keyword not in dataset:
            element = source[keyword]
            if element.VR not in ("OB", "OW", "OF", "OD", "OL", "OV", "UN") \
                    or len(element.value or b"") <= INLINE_BINARY_BYTES:
                dataset.add(DataElement(element.tag, element.VR, element.value))


def answer(found: Found, query: Query, storage: Path, base_url: str) -> dict[str, Any]:
    """One QIDO-RS answer (a JSON object of the DICOM JSON model)."""
    dataset = Dataset()
    dataset.InstanceAvailability = "ONLINE"
    for keyword, value in found.values.items():
        _set(dataset, keyword, value)
    wanted_from_header = FROM_HEADER[found.level] + query.include
    needs_header = query.include_all or any(k not in dataset for k in wanted_from_header)
    source = header(storage, found.sha256) if needs_header and found.sha256 else None
    if found.level == INSTANCE and query.include_all and source is not None:
        _copy(dataset, source, tuple(element.keyword for element in source if element.keyword))
    _copy(dataset, source, wanted_from_header)
    if found.level == STUDY and query.include_all:
        _copy(dataset, source, STUDY_ATTRIBUTES)
    dataset.RetrieveURL = retrieve_url(base_url, found)
    return _json(dataset)


def retrieve_url(base_url: str, found: Found) -> str:
    url = f"{base_url}/studies/{found.study_uid}"
    if found.level in (SERIES, INSTANCE):
        url += f"/series/{found.series_uid}"
    if found.level == INSTANCE:
        url += f"/instances/{found.sop_instance_uid}"
    return url


def metadata(storage: Path, sha256: str, frames_url: str) -> dict[str, Any] | None:
    """The WADO-RS metadata of a stored instance: its whole header, and the pixel data as a BulkDataURI."""
    source = header(storage, sha256)
    if source is None:
        return None
    dataset = Dataset()
    for element in source:
        dataset.add(element)
    encoded = _json(dataset)
    if "Rows" in source:
        encoded["7FE00010"] = {"vr": "OB" if str(source.get("BitsAllocated", 16)) == "8" else "OW",
                               "BulkDataURI": frames_url}
    return encoded


def _json(dataset: Dataset) -> dict[str, Any]:
    """Binary values are inlined (the headers are read before the pixel data, whose frames have their own
    resource): no bulk data resource is needed for them."""
    return dataset.to_json_dict(bulk_data_threshold=2**31, suppress_invalid_tags=True)
