"""What an order or an ADT message says, read from the hl7apy tree into plain case data.

Tolerant of versions: priority from TQ1-9 (2.5+), ORC-7.6 or OBR-27.6 (timing/quantity), or OBR-5; accession
number from OBR-18 or IPC-1 (then the filler order number); study UID from IPC-3 or ZDS-1. Field values are
read with hl7apy (``find_groups=False`` keeps every segment, Z-segments included, at the top level) and split into
components here, so 2.3.1 composite types and 2.5 ones are read alike.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from datetime import date
from typing import Any

from integrations.hl7.codec import AckError, unescape

PRIORITIES = {"S": "vital", "A": "urgent", "R": "scheduled"}
SEX = {"F": "F", "M": "M", "U": "U", "O": "U", "A": "U", "N": "U"}
# PID-32 identity reliability (IHE PAM France / INS): provisional, recovered, validated, qualified
IDENTITY = {"PROV": "provisional", "VIDE": "provisional", "DOUTE": "provisional", "FICTI": "provisional",
            "RECUP": "recovered", "VALI": "validated", "QUAL": "qualified"}
INS_AUTHORITIES = ("1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11")
MODALITY_CODES = {"CT": "CT", "MR": "MR", "NMR": "MR", "US": "US", "MG": "MG", "RX": "XR", "XR": "XR", "CR": "XR",
                  "DX": "XR", "RG": "XR"}
MODALITY_WORDS = (  # order matters: "angio-IRM" is MR, "scanner" CT, "mammographie" MG before any "radio"
    ("MR", re.compile(r"\b(irm|irmn|arm|mr|resonance)\b|angio-?irm")),
    ("CT", re.compile(r"scanner|\b(tdm|ct)\b|tomodensitom")),
    ("MG", re.compile(r"mammo")),
    ("US", re.compile(r"echo|doppler|\bus\b|ultrason")),
    ("XR", re.compile(r"radio|\b(rx|xr)\b|cliche|panoramique")),
)
UID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
INS = re.compile(r"[0-9AB ]{1,21}")


class OrderRefused(Exception):
    """The message is readable but cannot be applied: answered AE with this error."""

    def __init__(self, error: AckError):
        super().__init__(error.text)
        self.error = error


class Fields:
    """Segments of a parsed message by name, and their fields as unescaped components."""

    def __init__(self, message: Any, delimiters: str):
        self.delimiters = delimiters
        self._segments: dict[str, list[Any]] = defaultdict(list)
        for segment in message.children:
            self._segments[segment.name.upper()].append(segment)
        self._fields: dict[str, dict[str, list[str]]] = {}  # ER7 of the fields of first segments, read once

    def has(self, name: str) -> bool:
        return bool(self._segments.get(name))

    def repetitions(self, segment: str, number: int) -> list[str]:
        """The ER7 text of each repetition of a field of the first such segment."""
        fields = self._fields.get(segment)
        if fields is None:
            found = self._segments.get(segment)
            fields = defaultdict(list)
            for field in found[0].children if found else ():
                fields[field.name.upper()].append(field.to_er7())
            self._fields[segment] = fields
        return fields.get(f"{segment}_{number}", [])

    def split(self, er7: str, component: int = 1, sub: int = 1) -> str:
        parts = er7.split(self.delimiters[1])
        if component > len(parts):
            return ""
        subs = parts[component - 1].split(self.delimiters[4])
        return unescape(subs[sub - 1], self.delimiters).strip() if sub <= len(subs) else ""

    def get(self, segment: str, number: int, component: int = 1, sub: int = 1) -> str:
        reps = self.repetitions(segment, number)
        return self.split(reps[0], component, sub) if reps else ""

    def text(self, segment: str, number: int) -> str:
        """A whole free-text field (ST/TX), escapes resolved."""
        reps = self.repetitions(segment, number)
        return "\n".join(unescape(r, self.delimiters).strip() for r in reps if r.strip())


def hl7_date(value: str, where: tuple[str, int]) -> str:
    digits = value[:8]
    try:
        if not re.fullmatch(r"\d{8}", digits):
            raise ValueError(value)
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])).isoformat()
    except ValueError:
        raise OrderRefused(AckError(102, f"Date illisible en {where[0]}-{where[1]} : « {value} » (attendu "
                                         "AAAAMMJJ).", where)) from None


def patient_traits(f: Fields, complete: bool) -> dict[str, Any]:
    """Patient traits from PID. `complete` (a new order) requires name, first names, birth date and sex."""
    traits: dict[str, Any] = {}
    names = f.repetitions("PID", 5)
    legal = next((n for n in names if f.split(n, 7) == "L"), names[0] if names else "")
    if legal:
        traits["birth_name"] = f.split(legal, 1)
        traits["first_names"] = " ".join(p for p in (f.split(legal, 2), f.split(legal, 3).replace(",", " ")) if p)
    used = next((n for n in names if f.split(n, 7) == "D"), "")
    if used and f.split(used, 1) and f.split(used, 1) != traits.get("birth_name"):
        traits["used_name"] = f.split(used, 1)
    birth = f.get("PID", 7)
    if birth:
        traits["birth_date"] = hl7_date(birth, ("PID", 7))
    sex = f.get("PID", 8).upper()
    if sex:
        traits["sex"] = SEX.get(sex, "U")
    reliability = f.get("PID", 32).upper()
    if reliability in IDENTITY:
        traits["identity_status"] = IDENTITY[reliability]
    elif complete:
        traits["identity_status"] = "provisional"  # an identity nobody here has checked yet
    for identifier in f.repetitions("PID", 3):
        value, kind = f.split(identifier, 1), f.split(identifier, 5).upper()
        authority = f.split(identifier, 4, 2)
        if (kind.startswith("INS") or authority in INS_AUTHORITIES) and INS.fullmatch(value):
            traits.setdefault("ins", value)
        elif value and kind in ("PI", "") and "site_patient_id" not in traits:
            traits["site_patient_id"] = value[:64]
    if complete:
        for key, where in (("birth_name", ("PID", 5)), ("first_names", ("PID", 5)), ("birth_date", ("PID", 7)),
                           ("sex", ("PID", 8))):
            if not traits.get(key):
                raise OrderRefused(AckError(101, f"Trait d'identité manquant en {where[0]}-{where[1]} : l'examen "
                                                 "ne peut pas être demandé sans identité complète.", where))
    return {k: v for k, v in traits.items() if v}


def accession_number(f: Fields) -> str:
    return (f.get("OBR", 18) or f.get("IPC", 1) or f.get("OBR", 3) or f.get("ORC", 3))[:64]


def study_instance_uid(f: Fields) -> str | None:
    for candidate in (f.get("IPC", 3), f.get("ZDS", 1)):
        if candidate and len(candidate) <= 64 and UID.fullmatch(candidate):
            return candidate
    return None


def urgency(f: Fields) -> str | None:
    for value in (f.get("TQ1", 9), f.get("ORC", 7, 6), f.get("OBR", 27, 6), f.get("OBR", 5)):
        if value:
            return PRIORITIES.get(value.upper()[:1])
    return None


def modality(f: Fields) -> str | None:
    for code in (f.get("IPC", 5), f.get("OBR", 24)):
        if code.upper() in MODALITY_CODES:
            return MODALITY_CODES[code.upper()]
    words = " ".join((f.get("OBR", 4, 2), f.get("OBR", 4, 1), f.get("OBR", 4, 5))).lower()
    words = unicodedata.normalize("NFKD", words).encode("ascii", "ignore").decode("ascii")
    return next((code for code, pattern in MODALITY_WORDS if pattern.search(words)), None)


def physician(f: Fields) -> dict[str, str] | None:
    for segment, number in (("ORC", 12), ("OBR", 16)):
        reps = f.repetitions(segment, number)
        if reps and (f.split(reps[0], 2) or f.split(reps[0], 1)):
            xcn = reps[0]
            name = " ".join(p for p in (f.split(xcn, 6), f.split(xcn, 3), f.split(xcn, 2)) if p)
            return {"name": name or f.split(xcn, 1), "id": f.split(xcn, 1)}
    return None


def order_data(f: Fields) -> dict[str, Any]:
    """The case data an order gives (only what it says; absent fields are left out)."""
    exam = f.get("OBR", 4, 2) or f.get("OBR", 4, 1)
    questions = [f.split(r, 2) or f.split(r, 1) for r in f.repetitions("OBR", 31)]
    data: dict[str, Any] = {
        "requested_exam": exam[:300],
        "modality": modality(f),
        "urgency": urgency(f),
        "question": "; ".join(q for q in questions if q)[:4000],
        "clinical_context": f.text("OBR", 13)[:4000],
        "study_instance_uid": study_instance_uid(f),
        "requesting_physician": physician(f),
    }
    order = {"placer_order_number": f.get("ORC", 2) or f.get("OBR", 2),
             "filler_order_number": f.get("ORC", 3) or f.get("OBR", 3),
             "procedure_code": f.get("OBR", 4, 1), "procedure_coding_system": f.get("OBR", 4, 3)}
    data["ris_order"] = {k: v for k, v in order.items() if v} or None
    return {k: v for k, v in data.items() if v}
