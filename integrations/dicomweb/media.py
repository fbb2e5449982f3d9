"""Media types of DICOMweb answers and the negotiation of the Accept header (PS3.18 8.7).

Stored files are served as they were received, except a compressed instance asked for in explicit VR little
endian (or with no transfer syntax named), which is transcoded (integrations.dicomweb.transcode). A frame is
served as its stored bytes (native pixel data as application/octet-stream, a compressed frame as its bitstream).
When the Accept header leaves no answer Telerad can give, the caller answers 406.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DICOM_JSON = "application/dicom+json"
DICOM = "application/dicom"
OCTET_STREAM = "application/octet-stream"
ANY_SYNTAX = "*"
AS_STORED = "stored"
# The bitstream media type of each encapsulated transfer syntax (PS3.18 table 8.7.3-4).
BITSTREAM_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg", "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg", "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls", "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2", "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.5": "image/x-dicom-rle",
}
EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
NATIVE_SYNTAXES = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"})


@dataclass(frozen=True)
class MediaRange:
    media_type: str
    parameters: dict[str, str]

    def matches(self, media_type: str) -> bool:
        major = media_type.split("/")[0]
        return self.media_type in ("*/*", media_type, f"{major}/*")


def parse_accept(header: str | None) -> list[MediaRange]:
    """The media ranges of an Accept header in their order (q values ignored: the first that fits is used)."""
    if not header or not header.strip():
        return [MediaRange("*/*", {})]
    ranges = []
    for text in re.split(r',(?=(?:[^"]*"[^"]*")*[^"]*$)', header):
        pieces = [p.strip() for p in re.split(r';(?=(?:[^"]*"[^"]*")*[^"]*$)', text) if p.strip()]
        if not pieces:
            continue
        parameters = {}
        for piece in pieces[1:]:
            name, _equals, value = piece.partition("=")
            parameters[name.strip().lower()] = value.strip().strip('"')
        ranges.append(MediaRange(pieces[0].lower(), parameters))
    return ranges or [MediaRange("*/*", {})]


def _multipart_type(accepted: MediaRange) -> str | None:
    """The part type a multipart range asks for ("" for any), None when it is not a multipart range."""
    if accepted.media_type == "*/*":
        return ""
    if accepted.media_type in ("multipart/related", "multipart/*"):
        return accepted.parameters.get("type", "").lower()
    return None


def negotiate_instances(header: str | None, stored: set[str]) -> str | None:
    """What the Accept header takes of instances (multipart/related; type="application/dicom") stored in the
    transfer syntaxes `stored`: AS_STORED (transfer-syntax=*, or the one syntax they all have), EXPLICIT_LITTLE
    (asked for, or no transfer-syntax named: PS3.18's default; compressed instances are then transcoded), or
    None when no range fits."""
    for accepted in parse_accept(header):
        part = _multipart_type(accepted)
        if part is None or part not in ("", DICOM, "*/*"):
            continue
        syntax = accepted.parameters.get("transfer-syntax")
        if syntax == ANY_SYNTAX or syntax is not None and stored == {syntax}:
            return AS_STORED
        if syntax in (None, EXPLICIT_LITTLE):
            return EXPLICIT_LITTLE
    return None


def needs_transcoding(stored: str) -> bool:
    """Whether an instance stored in this syntax is decoded to be sent in explicit VR little endian (compressed
    pixel data; native files are sent as stored, their syntax named in their part)."""
    return stored not in NATIVE_SYNTAXES


def negotiate_frame(header: str | None, stored: str) -> str | None:
    """The Content-Type of each frame part for the Accept header and the stored transfer syntax, None when
    none fits: native pixel data as application/octet-stream (little endian unless stored big endian and asked
    so), a compressed frame as application/octet-stream with transfer-syntax=* (or the stored one), or as its
    bitstream media type (image/jpeg, image/jls, image/jp2, image/x-dicom-rle)."""
    bitstream = BITSTREAM_TYPES.get(stored)
    little_endian = stored in NATIVE_SYNTAXES and stored != "1.2.840.10008.1.2.2"
    for accepted in parse_accept(header):
        part = _multipart_type(accepted)
        if part is None:
            continue
        syntax = accepted.parameters.get("transfer-syntax")
        if bitstream is None:
            usable = syntax in (ANY_SYNTAX, stored) or little_endian and syntax in (None, EXPLICIT_LITTLE)
            if part in ("", "*/*", OCTET_STREAM) and usable:
                return f"{OCTET_STREAM}; transfer-syntax={EXPLICIT_LITTLE if little_endian else stored}"
            continue
        if part == OCTET_STREAM and syntax in (ANY_SYNTAX, stored):
            return f"{OCTET_STREAM}; transfer-syntax={stored}"
        if part in ("", "*/*", bitstream, bitstream.split("/")[0] + "/*") and syntax in (None, ANY_SYNTAX, stored):
            return f"{bitstream}; transfer-syntax={stored}"
    return None


def negotiate_json(header: str | None) -> bool:
    return any(r.matches(DICOM_JSON) or r.media_type == "application/json" for r in parse_accept(header))


def negotiate_rendered(header: str | None, asked: str | None = None) -> str | None:
    """image/jpeg or image/png (`asked`: WADO-URI's contentType, which comes first), None when neither fits."""
    if asked:
        return asked if asked in ("image/jpeg", "image/png") else None
    for accepted in parse_accept(header):
        for candidate in ("image/jpeg", "image/png"):
            if accepted.matches(candidate):
                return candidate
    return None
