"""De-identified research exports (CH-8.2): what a request may ask for, and how case data is de-identified.

A researcher names his study protocol, its approval reference (CPP, CNIL...) and the data he wants: case fields
from the fixed list below (never a direct identifier: no name, no identifier, no birth date, no phone), images or
not, a period and sites. An administrator approves or refuses; the export is produced afterwards, with a secret
of its own: the pseudonyms of patients and cases are stable within one export and unlinkable across exports,
every date of a patient is shifted by the same number of days (intervals kept), and free text is scrubbed of the
names and identifiers the case holds, of NIR/INS-shaped numbers and of phone numbers."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from engine.domain.privacy import pseudonymise

PENDING, APPROVED, REFUSED = "pending", "approved", "refused"
RUNNING, READY, FAILED, DOWNLOADED, EXPIRED = "running", "ready", "failed", "downloaded", "expired"
EXPORT_KEPT_DAYS = 7  # a produced export not downloaded within this many days is deleted
# A production whose heartbeat is older than this is taken to be interrupted (its process stopped): the worker
# takes it over and produces the export again (integrations.dicom.research_export).
STALE_PRODUCTION = timedelta(minutes=10)
MAX_TEXT = 300
MAX_SHIFT_DAYS = 365
# The case fields a request may ask for: each is safe once de-identified (free text scrubbed, dates shifted).
CASE_FIELDS = ("process", "site", "urgency", "status", "modality", "requested_exam", "sex", "age_years",
               "clinical_context", "question", "findings", "conclusion", "requested_at", "ended_at")
FREE_TEXT_FIELDS = frozenset({"requested_exam", "clinical_context", "question", "findings", "conclusion"})
DATE_FIELDS = frozenset({"requested_at", "ended_at"})
# Modalities whose images usually carry burned-in text (ultrasound, screen captures, endoscopy, photographs).
BURNED_IN_MODALITIES = frozenset({"US", "SC", "ES", "XC", "OT", "DOC"})
REDACTED = "[NOM]"


class ResearchError(ValueError):
    """A request that cannot be made or acted on; the message (French) says why."""


@dataclass(frozen=True)
class RequestSpec:
    protocol: str
    approval_ref: str
    fields: tuple[str, ...]
    images: bool
    retain_dates: bool  # DICOM PS3.15 Retain Longitudinal Temporal Information (full dates)
    clean_pixels: bool  # DICOM PS3.15 Clean Pixel Data
    period_start: date
    period_end: date  # inclusive
    sites: tuple[str, ...]


def check_spec(spec: RequestSpec, known_sites: Iterable[str]) -> RequestSpec:
    protocol, approval = spec.protocol.strip(), spec.approval_ref.strip()
    if not protocol:
        raise ResearchError("Indiquez le protocole de l'étude.")
    if not approval:
        raise ResearchError("Indiquez la référence de l'autorisation de l'étude (CPP, CNIL...).")
    if len(protocol) > MAX_TEXT or len(approval) > MAX_TEXT:
        raise ResearchError(f"Le protocole et la référence d'autorisation ne dépassent pas {MAX_TEXT} caractères.")
    unknown = [name for name in spec.fields if name not in CASE_FIELDS]
    if unknown:
        raise ResearchError("Champ de dossier non exportable : " + ", ".join(unknown) + ".")
    if not spec.fields and not spec.images:
        raise ResearchError("Choisissez au moins un champ du dossier ou les images.")
    if spec.period_end < spec.period_start:
        raise ResearchError("La fin de la période précède son début.")
    if not spec.sites:
        raise ResearchError("Choisissez au moins un site.")
    sites = set(known_sites)
    strangers = [site for site in spec.sites if site not in sites]
    if strangers:
        raise ResearchError("Site inconnu : " + ", ".join(strangers) + ".")
    fields = tuple(name for name in CASE_FIELDS if name in spec.fields)
    return RequestSpec(protocol, approval, fields, spec.images, spec.retain_dates, spec.clean_pixels,
                       spec.period_start, spec.period_end, tuple(sorted(set(spec.sites))))


def date_shift(patient_key: str, secret: bytes) -> timedelta:
    """The same shift for every date of one patient in one export (between 1 and 365 days back)."""
    digest = hmac.new(secret, b"shift:" + patient_key.encode("utf-8"), hashlib.sha256).digest()
    return -timedelta(days=1 + int.from_bytes(digest[:4], "big") % MAX_SHIFT_DAYS)


# Identifiers typed into free text: NIR/INS-shaped numbers (13 digits and an optional 2-digit key, spaces allowed
# between digits; not dots: dotted numbers are versions and UIDs) and French phone numbers (0X XX XX XX XX,
# with or without separators, or +33 / 0033).
NIR_PATTERN = re.compile(r"(?<![0-9.])[0-9](?: ?[0-9]){12}(?: ?[0-9]{2})?(?![0-9.])")
PHONE_PATTERN = re.compile(r"(?<![0-9+])(?:(?:\+|00)33[ .-]?(?:\(0\)[ .-]?)?|0)[1-9](?:[ .-]?[0-9]{2}){4}(?![0-9])")
IDENTIFIER, PHONE = "[IDENTIFIANT]", "[TÉLÉPHONE]"
MIN_IDENTIFIER = 4  # shorter identifiers are not searched inside words (they would shred ordinary numbers)


def scrub(text: str, names: Iterable[str], identifiers: Iterable[str] = ()) -> str:
    """Free text with the patient's identifiers (IPP, INS, accession numbers: wherever written, even glued to a
    prefix as in "IPP123456"), NIR/INS-shaped numbers and French phone numbers replaced, then every given name (and
    each word of it, two letters or more, as a whole word: "Ly", "Vu") replaced, case-insensitively."""
    text = NIR_PATTERN.sub(IDENTIFIER, text)
    values = {value.strip() for value in identifiers if value and len(value.strip()) >= MIN_IDENTIFIER}
    if values:
        text = re.sub("|".join(sorted(map(re.escape, values), key=len, reverse=True)), IDENTIFIER, text,
                      flags=re.IGNORECASE)
    text = PHONE_PATTERN.sub(PHONE, text)
    words = {word for name in names if name for word in re.split(r"[\s^,'’-]+", name) if len(word) >= 2}
    if not words:
        return text
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + r")\b",
                         re.IGNORECASE)
    return pattern.sub(REDACTED, text)


def age_in_years(birth: date, at: date) -> int:
    return at.year - birth.year - ((at.month, at.day) < (birth.month, birth.day))


def deidentified_row(values: dict[str, object], *, patient_key: str, case_key: str, names: Iterable[str],
                     birth: date | None, fields: tuple[str, ...], secret: bytes,
                     retain_dates: bool = False, identifiers: Iterable[str] = ()) -> dict[str, object]:
    """One case's exported row: pseudonyms of the patient and case, and the asked fields de-identified. Dates are
    shifted by the patient's shift, or kept with Retain Longitudinal Temporal Information: the images then keep
    their real dates, and case dates shifted beside them would give the shift away (real study date minus shifted
    request date), hence the birth date of any output shifted by it."""
    shift = timedelta(0) if retain_dates else date_shift(patient_key, secret)
    names, identifiers = tuple(names), tuple(identifiers)
    row: dict[str, object] = {"patient": pseudonymise(patient_key, secret), "case": pseudonymise(case_key, secret)}
    for name in fields:
        value = values.get(name)
        if name == "age_years":
            at = values.get("requested_at")
            value = age_in_years(birth, at.date()) if birth and isinstance(at, datetime) else None
        elif name in DATE_FIELDS and isinstance(value, datetime):
            value = (value + shift).date().isoformat()
        elif name in FREE_TEXT_FIELDS and isinstance(value, str):
            value = scrub(value, names, identifiers)
        row[name] = value
    return row


# The Secondary Capture Image Storage classes (PS3.4 B.5), named one by one: a prefix would match other classes.
SECONDARY_CAPTURE_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.7.1",
                                       "1.2.840.10008.5.1.4.1.1.7.2", "1.2.840.10008.5.1.4.1.1.7.3",
                                       "1.2.840.10008.5.1.4.1.1.7.4"})
# Storage classes whose instances are documents, not images (encapsulated PDF, CDA, STL...; structured reports):
# their text is not in pixels any cleaner can blank.
DOCUMENT_CLASS_PREFIXES = ("1.2.840.10008.5.1.4.1.1.104.", "1.2.840.10008.5.1.4.1.1.88.")
# Dose screens and reports saved as images (ImageType values).
SCREEN_IMAGE_TYPES = frozenset({"SCREEN SAVE", "CSA REPORT", "DOSE_INFO", "DOSE INFO"})
SCREEN_DESCRIPTIONS = ("DOSE REPORT", "DOSE INFO", "PATIENT PROTOCOL", "DOSE SUMMARY", "SCREEN SAVE", "SCREEN CAPTURE")


def not_an_image(sop_class: str | None, encapsulated: bool, has_pixels: bool) -> str | None:
    """Why an instance is a document rather than an image (always left out of an export: its text, the patient's
    name inside a PDF, is not in pixels to clean), or None."""
    sop = str(sop_class or "").strip()
    if encapsulated or sop.startswith(DOCUMENT_CLASS_PREFIXES):
        return "Document encapsulé ou rapport (PDF, CDA, rapport structuré) : toujours exclu."
    if not has_pixels:
        return "Instance sans pixels (document, état de présentation) : toujours exclue."
    return None


def burned_in_risk(burned_in: str | None, modality: str | None, sop_class: str | None = None,
                   image_type: Iterable[str] = (), conversion_type: str | None = None,
                   series_description: str | None = None) -> str | None:
    """Why an image may carry burned-in text (its header says so, its modality usually does, or it is a copy of a
    screen: a secondary capture (ConversionType present, or its storage class), a CT dose screen or protocol page
    saved as an image under the CT modality), or None. A derived or secondary image (reformatted series) is not a
    risk by itself."""
    if (burned_in or "").strip().upper() == "YES":
        return "Texte incrusté dans l'image (BurnedInAnnotation=YES)"
    if (modality or "").strip().upper() in BURNED_IN_MODALITIES:
        return f"Modalité {modality} susceptible de porter du texte incrusté"
    description = (series_description or "").strip().upper()
    if str(sop_class or "").strip() in SECONDARY_CAPTURE_CLASSES or (conversion_type or "").strip() or \
            SCREEN_IMAGE_TYPES.intersection(str(value).strip().upper() for value in image_type) or \
            any(words in description for words in SCREEN_DESCRIPTIONS):
        return "Copie d'écran (capture secondaire, écran de dose) susceptible de porter du texte incrusté"
    return None


def burned_in_reason(burned_in: str | None, modality: str | None, clean_pixels: bool, sop_class: str | None = None,
                     image_type: Iterable[str] = (), conversion_type: str | None = None,
                     series_description: str | None = None) -> str | None:
    """Why an image is left out of an export when its pixels are not cleaned, or None when it may go as it is.
    Without the Clean Pixel Data option an image that may carry burned-in text is always left out; with it, it
    is left out only when no rule of the pixel cleaner knows where the text of its device is."""
    risk = burned_in_risk(burned_in, modality, sop_class, image_type, conversion_type, series_description)
    if risk is None:
        return None
    if clean_pixels:
        return f"{risk} : aucune règle de nettoyage des pixels ne connaît cet appareil."
    return f"{risk} : option Clean Pixel Data non choisie."
