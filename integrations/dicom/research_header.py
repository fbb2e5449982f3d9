"""The text elements of an image that the research export (CH-8.2) removes before dicognito: the REMOVE/BLANK
actions of the header section of pydicom's deid default "dicom" recipe (its version of the DICOM PS3.15 Basic
Application Level Confidentiality Profile), applied to every element of the dataset and of its sequence items.

dicognito keeps its part: UIDs, person names, IDs, dates and times (replaced consistently within a patient, dates
shifted by the patient's shift or kept), so the recipe's actions on those (endswith:Date, contains:UID,
endswith:ID, PN elements...) are not applied here. deid's recipe lacks some elements that PS3.15 Table E.1-1 has
removed (action X) by the basic profile; they are listed in PROFILE_X_NOT_IN_DEID and removed as well.

The patient's identifiers as the image holds them (PatientID, AccessionNumber, OtherPatientIDs...) are read
before anonymising (`original_identifiers`): the export scrubs them from whatever text the image still holds."""

from __future__ import annotations

import threading
from typing import Any

from pydicom.dataset import Dataset

# Fields of deid's recipe left to dicognito (dates, times, UIDs, IDs: replaced or shifted, not removed).
LEFT_TO_DICOGNITO = frozenset({"endswith:Time", "endswith:Date", "endswith:time", "startswith:IssueDate",
                               "contains:UID", "endswith:ID", "endswith:IDs", "PatientID", "AccessionNumber"})
# Action X of PS3.15 Table E.1-1 (basic profile, no Retain Patient Characteristics nor Retain Descriptors option
# offered for the text below) on elements deid's default recipe does not list. PatientAge: with a real or shifted
# study date, an age in days, weeks or months gives the birth date to the day, week or month.
PROFILE_X_NOT_IN_DEID = frozenset({
    "PatientAge", "PatientSize", "PatientWeight", "PatientSexNeutered", "PatientBirthDateInAlternativeCalendar",
    "PatientAlternativeCalendar", "PatientReligiousPreference", "EthnicGroup", "Occupation", "MilitaryRank",
    "BranchOfService", "MedicalAlerts", "Allergies", "SmokingStatus", "PregnancyStatus", "PatientState",
    "SpecialNeeds", "AdmittingDiagnosesDescription", "ImageComments", "StudyComments", "VisitComments",
    "RequestedProcedureComments", "ImagingServiceRequestComments", "InterpretationText", "AcquisitionComments",
    "FrameComments", "TextComments", "ServiceEpisodeDescription", "DerivationDescription", "ResponsibleOrganization",
    "ResponsiblePerson", "MedicalRecordLocator", "PatientInsurancePlanCodeSequence", "RequestAttributesSequence",
    "ReasonForTheRequestedProcedure", "PatientTelecomInformation", "PersonTelecomInformation",
    "DataSetTrailingPadding",
})
IDENTIFIER_ELEMENTS = ("PatientID", "AccessionNumber", "OtherPatientIDs")
_LOCK = threading.Lock()
_ACTIONS: list[tuple[str, str]] = []  # (action, field) of deid's recipe header, loaded once


def _actions() -> list[tuple[str, str]]:
    with _LOCK:
        if not _ACTIONS:
            from deid.config import DeidRecipe

            _ACTIONS.extend((str(item["action"]), str(item["field"])) for item in DeidRecipe("dicom").get_actions()
                            if item.get("action") in ("REMOVE", "BLANK")
                            and str(item.get("field")) not in LEFT_TO_DICOGNITO)
        return list(_ACTIONS)


def _matches(field: str, keyword: str) -> bool:
    expander, _, value = field.partition(":")
    if not value:
        return keyword == field
    if expander == "startswith":
        return keyword.startswith(value)
    if expander == "endswith":
        return keyword.endswith(value)
    if expander == "contains":
        return value in keyword
    return False


def profile_text_removed(dataset: Dataset) -> int:
    """Remove (or blank) in place, in the dataset and its sequence items, every element that deid's recipe removes
    or blanks (dicognito's part aside) and the profile's X elements deid lacks; returns how many."""
    actions = _actions()
    changed = 0
    for tag in list(dataset.keys()):
        element = dataset[tag]
        keyword = element.keyword or ""
        action = "REMOVE" if keyword in PROFILE_X_NOT_IN_DEID else next(
            (act for act, field in actions if keyword and element.VR != "PN" and _matches(field, keyword)), None)
        if action == "REMOVE":
            del dataset[tag]
            changed += 1
            continue
        if action == "BLANK":
            element.value = None
            changed += 1
        if element.VR == "SQ" and element.value:
            changed += sum(profile_text_removed(item) for item in element.value)
    return changed


def original_identifiers(dataset: Dataset) -> tuple[str, ...]:
    """The identifiers of the patient and study as the image holds them, to scrub from its remaining text."""
    found: list[str] = []

    def add(value: Any) -> None:
        values = [] if value is None else [value] if isinstance(value, str | bytes) else \
            list(value) if hasattr(value, "__iter__") else [value]
        found.extend(text for text in (str(item).strip() for item in values) if text)

    for keyword in IDENTIFIER_ELEMENTS:
        add(dataset.get(keyword))
    for item in dataset.get("OtherPatientIDsSequence") or []:
        add(item.get("PatientID"))
    return tuple(dict.fromkeys(found))
