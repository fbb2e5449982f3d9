"""The released report as an ORU^R01 (2.5): OBR-25 F (C for a later release of the same case, or the report
again with its signed addenda), technique, findings and conclusion as OBX TX lines, each addendum after them
(LOINC 55107-7), the interpreting radiologist in OBR-32.

Built by hand: every value goes through codec.escape, which escapes ``| ^ ~ \\ &`` (hl7apy leaves ``^ &`` as they
are). MSH-5, MSH-6 and MSH-18 are filled in at delivery from the site's endpoint (see `address`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from integrations.hl7.codec import CHARSETS, escape, timestamp

SENDING_APPLICATION = "TELERAD"
SENDING_FACILITY = "TELERAD"
INS_AUTHORITY = "ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO"
RPPS_AUTHORITY = ("ASIP-SANTE-PS", "1.2.250.1.71.4.2.1", "ISO")
SECTIONS = (  # case data key, OBX-3 (LOINC code, label)
    ("technique", ("55111-9", "Technique")),
    ("findings", ("18782-3", "Résultats")),
    ("conclusion", ("19005-8", "Conclusion")),
)
ADDENDUM = ("55107-7", "Addendum")  # LOINC: Addendum
PARIS = ZoneInfo("Europe/Paris")


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _when(value: Any) -> str:
    try:
        return timestamp(datetime.fromisoformat(str(value)))
    except ValueError:
        return ""


def _patient(data: Mapping[str, Any]) -> str:
    patient = data.get("patient") if isinstance(data.get("patient"), dict) else {}
    assert isinstance(patient, dict)
    sender = data.get("hl7", {}).get("sender", "") if isinstance(data.get("hl7"), dict) else ""
    authority = escape(sender.split("@")[-1]) if sender else ""
    ids = []
    if _text(patient.get("site_patient_id")):
        ids.append(f"{escape(patient['site_patient_id'])}^^^{authority}^PI")
    if _text(patient.get("ins")):
        ids.append(f"{escape(patient['ins'].replace(' ', ''))}^^^{INS_AUTHORITY}^INS")
    first = escape(_text(patient.get("first_names")))
    names = [f"{escape(_text(patient.get('birth_name')))}^{first}^^^^^L"]
    if _text(patient.get("used_name")):
        names.append(f"{escape(patient['used_name'].strip())}^{first}^^^^^D")
    birth = _text(patient.get("birth_date")).replace("-", "")
    return "|".join(["PID", "1", "", "~".join(ids), "", "~".join(names), "", birth, _text(patient.get("sex"))])


def interpreter(radiologist: Any) -> str:
    """OBR-32 (NDL): the name as a CNN in subcomponents: RPPS & family & given &&& prefix &&& RPPS authority."""
    if not isinstance(radiologist, dict):
        return ""
    name = _text(radiologist.get("name"))
    prefix = ""
    if name.lower().startswith(("dr ", "dr. ", "pr ")):
        prefix, name = name.split(" ", 1)
    rpps = _text(radiologist.get("rpps"))
    parts = [rpps, name, "", "", "", prefix.rstrip("."), "", "", *(RPPS_AUTHORITY if rpps else ("", "", ""))]
    return "&".join(escape(p) for p in parts).rstrip("&")


def _requester(data: Mapping[str, Any]) -> str:
    physician = data.get("requesting_physician")
    if not isinstance(physician, dict):
        return ""
    return f"{escape(_text(physician.get('id')))}^{escape(_text(physician.get('name')))}"


def build_oru(data: Mapping[str, Any], *, control_id: str, now: datetime, corrected: bool = False,
              addenda: Sequence[Any] = ()) -> str:
    """``addenda`` (engine.services.report_addenda.Addendum, oldest first): the signed addenda after the
    report's sections, each headed by its date and author; their message is a correction (C) dated by the last."""
    release = data.get("release") if isinstance(data.get("release"), dict) else {}
    assert isinstance(release, dict)
    released = _when(release.get("released_at"))
    if addenda:
        corrected, released = True, timestamp(addenda[-1].signed_at)
    order = data.get("ris_order") if isinstance(data.get("ris_order"), dict) else {}
    assert isinstance(order, dict)
    placer = escape(_text(order.get("placer_order_number")))
    accession = escape(_text(data.get("accession_number")))
    service = "^".join((escape(_text(order.get("procedure_code"))), escape(_text(data.get("requested_exam"))),
                        escape(_text(order.get("procedure_coding_system"))))).rstrip("^")
    status = "C" if corrected else "F"
    msh = ["MSH", "^~\\&", SENDING_APPLICATION, SENDING_FACILITY, "", "", timestamp(now), "", "ORU^R01^ORU_R01",
           control_id, "P", "2.5", "", "", "", "", "FRA", "UNICODE UTF-8", "FR"]
    obr = segment("OBR", {1: "1", 2: placer, 3: accession, 4: service, 16: _requester(data), 18: accession,
                          22: released, 25: status, 32: interpreter(data.get("radiologist"))})
    segments = ["|".join(msh), _patient(data), segment("ORC", {1: "RE", 2: placer, 3: accession, 5: "CM"}), obr]
    # OBX-4 tells apart the observations of the same OBX-3: each addendum is its own (1, 2...)
    sections = [(code, label, 1, _text(data.get(key))) for key, (code, label) in SECTIONS]
    sections += [(*ADDENDUM, n, f"Addendum du {_paris(a.signed_at)}, signé par {a.author_name} :\n{a.text}")
                 for n, a in enumerate(addenda, start=1)]
    number = 0
    for code, label, sub_id, text in sections:
        for line in text.splitlines():
            number += 1
            segments.append(segment("OBX", {1: str(number), 2: "TX", 3: f"{code}^{escape(label)}^LN",
                                            4: str(sub_id), 5: escape(line), 11: status, 14: released}))
    return "\r".join(segments) + "\r"


def _paris(moment: datetime) -> str:
    return moment.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")


def segment(name: str, fields: dict[int, str]) -> str:
    """A segment from its non-empty fields by number (trailing empty fields left out)."""
    last = max((n for n, v in fields.items() if v), default=0)
    return "|".join([name, *(fields.get(n, "") for n in range(1, last + 1))])


def address(payload: str, receiving_application: str, receiving_facility: str, charset: str) -> str:
    """Fill MSH-5, MSH-6 and MSH-18 of a queued message for the endpoint it is delivered to."""
    first, _, rest = payload.partition("\r")
    fields = first.split("|")
    fields += [""] * (19 - len(fields))
    fields[4], fields[5] = escape(receiving_application), escape(receiving_facility)
    fields[17] = charset if charset in CHARSETS else "UNICODE UTF-8"
    return "|".join(fields) + "\r" + rest
