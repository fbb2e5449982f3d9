"""De-identified research exports (CH-8.2): what a request may ask for, and how case data is de-identified.

A researcher names his study protocol, its approval reference (CPP, CNIL...) and the data he wants: case fields
from the fixed list below (never a direct identifier: no name, no identifier, no birth date, no phone), images or
not, a period and sites. An administrator approves or refuses; the export is produced afterwards, with a secret
of its own: the pseudonyms of patients and cases are stable within one export and unlinkable across exports,
every date of a patient is shifted by the same number of days (intervals kept), and free text is scrubbed of the
names the case holds."""

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


def scrub(text: str, names: Iterable[str]) -> str:
    """Free text with every given name (and each word of it, three letters or more) replaced, case- and
    accent-insensitively on the words as written."""
    words = {word for name in names if name for word in re.split(r"[\s^,'’-]+", name) if len(word) >= 3}
    if not words:
        return text
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + r")\b",
                         re.IGNORECASE)
    return pattern.sub(REDACTED, text)


def age_in_years(birth: date, at: date) -> int:
    return at.year - birth.year - ((at.month, at.day) < (birth.month, birth.day))


def deidentified_row(values: dict[str, object], *, patient_key: str, case_key: str, names: Iterable[str],
                     birth: date | None, fields: tuple[str, ...], secret: bytes,
                     retain_dates: bool = False) -> dict[str, object]:
    """One case's exported row: pseudonyms of the patient and case, and the asked fields de-identified. Dates are
    shifted by the patient's shift, or kept with Retain Longitudinal Temporal Information: the images then keep
    their real dates, and case dates shifted beside them would give the shift away (real study date minus shifted
    request date), hence the birth date of any output shifted by it."""
    shift = timedelta(0) if retain_dates else date_shift(patient_key, secret)
    names = tuple(names)
    row: dict[str, object] = {"patient": pseudonymise(patient_key, secret), "case": pseudonymise(case_key, secret)}
    for name in fields:
        value = values.get(name)
        if name == "age_years":
            at = values.get("requested_at")
            value = age_in_years(birth, at.date()) if birth and isinstance(at, datetime) else None
        elif name in DATE_FIELDS and isinstance(value, datetime):
            value = (value + shift).date().isoformat()
        elif name in FREE_TEXT_FIELDS and isinstance(value, str):
            value = scrub(value, names)
        row[name] = value
    return row


SECONDARY_CAPTURE_CLASSES = "1.2.840.10008.5.1.4.1.1.7"  # prefix of the Secondary Capture Image Storage classes
SCREEN_IMAGE_TYPES = frozenset({"SCREEN SAVE", "CSA REPORT"})  # dose screens and reports saved as images


def burned_in_risk(burned_in: str | None, modality: str | None, sop_class: str | None = None,
                   image_type: Iterable[str] = ()) -> str | None:
    """Why an image may carry burned-in text (its header says so, its modality usually does, or it is a copy of a
    screen: a secondary capture, or a CT dose screen saved as an image under the CT modality), or None."""
    if (burned_in or "").strip().upper() == "YES":
        return "Texte incrusté dans l'image (BurnedInAnnotation=YES)"
    if (modality or "").strip().upper() in BURNED_IN_MODALITIES:
        return f"Modalité {modality} susceptible de porter du texte incrusté"
    if str(sop_class or "").startswith(SECONDARY_CAPTURE_CLASSES) or \
            SCREEN_IMAGE_TYPES.intersection(str(value).strip().upper() for value in image_type):
        return "Copie d'écran (capture secondaire, écran de dose) susceptible de porter du texte incrusté"
    return None


def burned_in_reason(burned_in: str | None, modality: str | None, clean_pixels: bool, sop_class: str | None = None,
                     image_type: Iterable[str] = ()) -> str | None:
    """Why an image is left out of an export when its pixels are not cleaned, or None when it may go as it is.
    Without the Clean Pixel Data option an image that may carry burned-in text is always left out; with it, it
    is left out only when no rule of the pixel cleaner knows where the text of its device is."""
    risk = burned_in_risk(burned_in, modality, sop_class, image_type)
    if risk is None:
        return None
    if clean_pixels:
        return f"{risk} : aucune règle de nettoyage des pixels ne connaît cet appareil."
    return f"{risk} : option Clean Pixel Data non choisie."
