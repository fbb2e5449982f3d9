"""Bytes <-> HL7 text: decode by MSH-18, normalise segment ends, escape, read the header, build ACKs.

hl7apy has no ACK builder and escapes ``| ~ \\`` but not ``^ &`` when text is assigned, so ACKs and escaping are
written here by hand; hl7apy is used to parse (``parse_message(text, find_groups=False)``, which keeps Z-segments
such as ZDS and works for 2.3.1, 2.5 and 2.5.1 alike).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

STANDARD_DELIMITERS = "|^~\\&"  # field, component, repetition, escape, subcomponent
# MSH-18 (HL7 table 0211) -> Python codec. Empty means the default character set, ASCII.
CHARSETS = {"": "ascii", "ASCII": "ascii", "8859/1": "latin-1", "8859/15": "iso8859-15", "UNICODE UTF-8": "utf-8"}
ERROR_NAMES = {  # HL7 table 0357
    100: "Segment sequence error", 101: "Required field missing", 102: "Data type error",
    103: "Table value not found", 200: "Unsupported message type", 201: "Unsupported event code",
    203: "Unsupported version id", 204: "Unknown key identifier", 205: "Duplicate key identifier",
    207: "Application internal error",
}


@dataclass(frozen=True)
class Header:
    """The MSH segment split by hand, readable even when hl7apy cannot parse the message."""

    delimiters: str
    fields: tuple[str, ...]  # fields[n] is MSH-n (fields[0] unused, fields[1] the field separator)

    def field(self, number: int) -> str:
        return self.fields[number] if number < len(self.fields) else ""

    def component(self, number: int, index: int = 1) -> str:
        value = self.field(number).split(self.delimiters[2])[0]  # first repetition
        parts = value.split(self.delimiters[1])
        return unescape(parts[index - 1], self.delimiters) if index <= len(parts) else ""

    @property
    def sending_application(self) -> str:
        return self.component(3)

    @property
    def sending_facility(self) -> str:
        return self.component(4)

    @property
    def message_type(self) -> str:
        return f"{self.component(9, 1)}^{self.component(9, 2)}".strip("^")

    @property
    def control_id(self) -> str:
        return self.component(10)

    @property
    def version(self) -> str:
        return self.component(12)

    @property
    def charset(self) -> str:
        return self.component(18).strip().upper()


@dataclass(frozen=True)
class Incoming:
    """One received frame: its header, its text as received and normalised, and why it cannot be read."""

    header: Header | None
    text: str  # decoded, line endings as received (what is stored)
    normalised: str  # segments separated by CR, no empty segment (what is parsed)
    charset: str  # MSH-18 as sent
    decoded: bool  # False: text is a lossy rendering, keep the bytes
    problem: str | None = None  # set: the message is rejected (AR) with this reason


@dataclass(frozen=True)
class AckError:
    code: int  # HL7 table 0357
    text: str  # French, for the people reading the RIS log
    location: tuple[str, int] | None = None  # segment and field, e.g. ("PID", 7)


def read_header(text: str) -> Header | None:
    text = text.lstrip("\ufeff \t\r\n")
    if not text.startswith("MSH") or len(text) < 8:
        return None
    delimiters = text[3:8]
    if len(set(delimiters)) != 5 or any(c.isalnum() or c in "\r\n" for c in delimiters):
        return None
    first = re.split(r"[\r\n]", text, maxsplit=1)[0]
    parts = first.split(delimiters[0])
    return Header(delimiters, ("", delimiters[0], *parts[1:]))


def read(payload: bytes) -> Incoming:
    """Decode a frame by its MSH-18 and normalise it; `problem` says why it must be refused (AR)."""
    payload = payload.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark some interface engines add
    raw_header = read_header(payload.decode("latin-1"))  # ASCII-compatible view, enough to find MSH-18
    if raw_header is None:
        text = payload.decode("utf-8", errors="replace")
        return Incoming(None, text, normalise(text), "", False, "Message illisible : il ne commence pas par un "
                        "segment MSH valide.")
    charset = raw_header.charset
    codec = CHARSETS.get(charset)
    problem = None
    try:
        text = payload.decode(codec or "utf-8")
        decoded = codec is not None
    except UnicodeDecodeError:
        text, decoded = payload.decode(codec or "utf-8", errors="replace"), False
        problem = (f"Octets invalides pour le jeu de caractères déclaré en MSH-18 ({charset or 'ASCII'}) : "
                   "déclarez 8859/1 ou UNICODE UTF-8.")
    if codec is None:
        problem = f"Jeu de caractères MSH-18 non pris en charge : {charset!r} (ASCII, 8859/1, UNICODE UTF-8)."
    text = text.lstrip("\ufeff")
    return Incoming(read_header(text) or raw_header, text, normalise(text), charset, decoded, problem)


def normalise(text: str) -> str:
    """LF and CRLF segment ends become CR; empty segments (blank lines, trailing newlines) go."""
    segments = text.replace("\r\n", "\r").replace("\n", "\r").split("\r")
    return "\r".join(s for s in segments if s.strip())


def encode(text: str, charset: str) -> bytes:
    """Text -> bytes in an MSH-18 character set, degrading gracefully (œ -> oe in 8859/1, accents dropped in ASCII)."""
    codec = CHARSETS.get(charset.strip().upper(), "utf-8")
    if codec == "utf-8":
        return text.encode("utf-8")
    if codec != "iso8859-15":  # 8859/1 and ASCII lack œ, Œ and €, frequent in French text
        text = text.translate(_LATIN1_FALLBACK)
    if codec == "ascii":
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return text.encode(codec, errors="replace")


_LATIN1_FALLBACK = str.maketrans({"œ": "oe", "Œ": "OE", "€": "EUR", "’": "'", "‘": "'", "“": '"', "”": '"',
                                  "–": "-", "—": "-", "…": "..."})


def escape(text: str, delimiters: str = STANDARD_DELIMITERS) -> str:
    """Escape text for a field: ``| ^ ~ \\ &`` become ``\\F\\ \\S\\ \\R\\ \\E\\ \\T\\``; line breaks become spaces."""
    field, component, repetition, esc, sub = delimiters
    names = {esc: "E", field: "F", component: "S", sub: "T", repetition: "R"}
    out = []
    for char in text:
        if char in names:
            out.append(f"{esc}{names[char]}{esc}")
        elif char in "\r\n":
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def unescape(text: str, delimiters: str = STANDARD_DELIMITERS) -> str:
    """The reverse of escape, plus ``\\.br\\`` as a line break; other formatting sequences are dropped."""
    field, component, repetition, esc, sub = delimiters
    if esc not in text:
        return text
    # hl7apy re-escapes the escape character of formatting sequences (\.br\ comes back as \E\.br\E\).
    text = text.replace(f"{esc}E{esc}.br{esc}E{esc}", f"{esc}.br{esc}")
    values = {"F": field, "S": component, "T": sub, "R": repetition, "E": esc, ".br": "\n"}

    def swap(match: re.Match[str]) -> str:
        code = match.group(1)
        if code in values:
            return values[code]
        if code.startswith("X") and len(code) > 1:
            try:
                return bytes.fromhex(code[1:]).decode("latin-1")
            except ValueError:
                return ""
        return ""

    return re.sub(re.escape(esc) + r"([^" + re.escape(esc) + r"]*)" + re.escape(esc), swap, text)


def version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return (2, 5)


def new_control_id() -> str:
    return uuid.uuid4().hex[:20].upper()


def timestamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")


def build_ack(header: Header | None, code: str, error: AckError | None = None, *, control_id: str | None = None,
              now: datetime | None = None) -> str:
    """An ACK echoing MSH-10 in MSA-2, sender and receiver swapped, same version, delimiters and MSH-18."""
    d = header.delimiters if header is not None else STANDARD_DELIMITERS
    field = header.field if header is not None else (lambda number: "")
    version = header.version if header is not None else ""
    version = version if re.fullmatch(r"2(\.\d+){1,2}", version) else "2.5"
    modern = version_tuple(version) >= (2, 5)
    trigger = header.component(9, 2) if header is not None else ""
    structure = d[1] + "ACK" if version_tuple(version) >= (2, 3, 1) else ""
    message_type = f"ACK{d[1]}{escape(trigger, d)}{structure}" if trigger else "ACK"
    msh = ["MSH", d[1:], field(5), field(6), field(3), field(4), timestamp(now), "", message_type,
           control_id or new_control_id(), field(11) or "P", version, "", "", "", "", "", field(18)]
    segments = [d[0].join(msh).rstrip(d[0])]
    text = escape(error.text, d) if error is not None else ""
    msa = ["MSA", code, escape(header.control_id, d) if header is not None else ""]
    if error is not None and not modern:
        msa.append(text[:80])  # MSA-3, the text message of versions before 2.5
    segments.append(d[0].join(msa))
    if error is not None:
        name = ERROR_NAMES.get(error.code, "Application internal error")
        where = d[1].join((error.location[0], "1", str(error.location[1]))) if error.location else ""
        if modern:  # ERR-2 location, ERR-3 code, ERR-4 severity, ERR-8 user message
            segments.append(d[0].join(["ERR", "", where, d[1].join((str(error.code), name, "HL70357")), "E",
                                       "", "", "", text]))
        else:  # ERR-1: segment^sequence^field^code&text&table
            segments.append(d[0].join(["ERR", d[1].join((where or d[1] * 2, d[4].join((str(error.code), name,
                                                                                          "HL70357"))))]))
    return "\r".join(segments) + "\r"


def ack_bytes(header: Header | None, code: str, error: AckError | None = None, **options: Any) -> bytes:
    return encode(build_ack(header, code, error, **options), header.charset if header is not None else "")


def fallback_ack(payload: bytes, code: str, text: str) -> bytes:
    """An ACK for a frame nothing else could answer (used by the listener when a handler fails)."""
    try:
        header = read(payload).header
    except Exception:  # noqa: BLE001 - the last resort must answer whatever happens
        header = None
    return ack_bytes(header, code, AckError(207, text))


def ack_code_of(ack: bytes) -> str | None:
    """MSA-1 of an acknowledgement (None if there is none)."""
    text = normalise(ack.decode("latin-1"))
    header = read_header(text)
    sep = header.delimiters[0] if header is not None else "|"
    for segment in text.split("\r"):
        if segment.startswith("MSA"):
            parts = segment.split(sep)
            return parts[1] if len(parts) > 1 else None
    return None
