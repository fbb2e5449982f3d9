"""Check a DICOM Part-10 file and store it content-addressed on disk (<root>/ab/abcdef..., written atomically).

pydicom reads a truncated file without complaint more often than not (a short Pixel Data, a missing trailing
element), so the checks here are explicit: the last element must hold as many bytes as its header
announces, undefined-length elements must end with their delimiter, the identifying UIDs must be present
and well-formed, and the pixel data must be complete for uncompressed transfer syntaxes (rows x columns x
samples x bits x frames) or hold at least one fragment per frame when encapsulated (JPEG, JPEG-LS,
JPEG 2000, RLE...).

A received file is checked where it lies (`parse_instance_file`): values over 64 kB (the pixel data) are not read,
only their headers, and the fragments of encapsulated pixel data are counted by walking their item headers, so
the memory needed is the same whatever the instance's size; `store_file` then moves (or copies, in 1 MB chunks)
the file into place under its SHA-256 (`file_sha256`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import struct
import uuid
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_fragments
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_file_meta_info
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID

UID_PATTERN = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
UNDEFINED_LENGTH = 0xFFFFFFFF
# (FFFE,E0DD) with a zero length, little and big endian
SEQUENCE_DELIMITERS = (b"\xfe\xff\xdd\xe0\x00\x00\x00\x00", b"\xff\xfe\xe0\xdd\x00\x00\x00\x00")
DEFLATED = "1.2.840.10008.1.2.1.99"
DEFER_SIZE = 64 * 1024  # values larger than this are not read when a file on disk is checked
CHUNK = 1024 * 1024
PIXEL_DATA = 0x7FE00010
ITEM, SEQUENCE_DELIMITER = (0xFFFE, 0xE000), (0xFFFE, 0xE0DD)


class InvalidDicom(ValueError):
    """The file is not a complete, usable DICOM instance; the message (French) says why."""


@dataclass(frozen=True)
class ParsedInstance:
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax: str
    accession_number: str | None
    patient_id: str | None
    patient_name: str | None
    patient_birth_date: str | None  # YYYY-MM-DD
    patient_sex: str | None
    study_description: str | None
    modality: str | None
    series_description: str | None
    series_number: int | None
    instance_number: int | None
    rows: int | None
    columns: int | None
    frames: int | None


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    path: Path
    size: int
    created: bool


def part10_bytes(file_meta: FileMetaDataset, encoded_dataset: bytes) -> bytes:
    """A Part-10 file from a received dataset as encoded by the sender (no decode/re-encode)."""
    buffer = DicomBytesIO()
    buffer.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buffer, file_meta, enforce_standard=True)
    buffer.write(encoded_dataset)
    return buffer.getvalue()


def parse_instance(data: bytes) -> ParsedInstance:
    """Read and check a Part-10 file; raise InvalidDicom with a French reason when it is unusable."""
    try:
        dataset = dcmread(BytesIO(data), force=False)
        _check_end(dataset, data)
        parsed = _describe(dataset)
        _check_pixel_data(dataset, UID(parsed.transfer_syntax))
    except InvalidDicom:
        raise
    except Exception as err:  # pydicom raises many kinds of errors on damaged input
        raise InvalidDicom(f"fichier DICOM illisible ({type(err).__name__})") from err
    return parsed


def parse_instance_file(path: Path) -> ParsedInstance:
    """`parse_instance` for a file on disk, without loading the values over 64 kB (the pixel data): the same
    checks, made on the elements' headers and the file's size. A deflated file is inflated whole by pydicom, so
    it is checked in memory (a rare transfer syntax)."""
    try:
        size = os.path.getsize(path)
        if str(read_file_meta_info(path).get("TransferSyntaxUID", "")) == DEFLATED:
            return parse_instance(Path(path).read_bytes())
        dataset = dcmread(path, force=False, defer_size=DEFER_SIZE)
        with open(path, "rb") as handle:
            _check_file_end(dataset, handle, size)
            parsed = _describe(dataset)
            _check_pixel_data(dataset, UID(parsed.transfer_syntax), handle, size)
    except InvalidDicom:
        raise
    except Exception as err:  # pydicom raises many kinds of errors on damaged input
        raise InvalidDicom(f"fichier DICOM illisible ({type(err).__name__})") from err
    return parsed


def _check_file_end(dataset: Dataset, handle: Any, size: int) -> None:
    """`_check_end` on a file: a deferred value (not read) must fit in the file."""
    tags = list(dataset.keys())
    if not tags:
        raise InvalidDicom("fichier tronqué ou vide (aucun élément lisible)")
    element = dataset.get_item(tags[-1], keep_deferred=True)
    if not isinstance(element, RawDataElement):
        return
    if element.length == UNDEFINED_LENGTH:
        handle.seek(max(0, size - 8))
        if handle.read(8) not in SEQUENCE_DELIMITERS:
            raise InvalidDicom("fichier tronqué (délimiteur de fin absent)")
        return
    present = size - element.value_tell if element.value is None else len(element.value)
    if present < element.length:
        raise InvalidDicom(f"fichier tronqué (élément {element.tag} incomplet)")


def _file_fragments(handle: Any, offset: int, size: int) -> int:
    """The non-empty fragments of encapsulated pixel data whose value starts at `offset` (after the basic
    offset table), by their item headers: each step moves on by 8 bytes at least, within the file."""
    handle.seek(offset)
    fragments, first = 0, True
    while handle.tell() + 8 <= size:
        group, element, length = struct.unpack("<HHL", handle.read(8))
        if (group, element) == SEQUENCE_DELIMITER:
            return fragments
        if (group, element) != ITEM or handle.tell() + length > size:
            raise InvalidDicom("données d'image compressées incomplètes")
        if length and not first:
            fragments += 1
        first = False
        handle.seek(length, os.SEEK_CUR)
    raise InvalidDicom("données d'image compressées incomplètes")


def _pixel_extent(dataset: Dataset, syntax: UID, handle: Any, size: int) -> tuple[int, int]:
    """(bytes, fragments) of the pixel data: read from its value when loaded, else from the file's headers."""
    element: Any = dataset.get_item(PIXEL_DATA, keep_deferred=True) if handle is not None else None
    if element is None or not isinstance(element, RawDataElement) or element.value is not None:
        pixels: Any = dataset.PixelData
        if syntax.is_encapsulated:
            return len(pixels), sum(1 for fragment in list(generate_fragments(pixels))[1:] if fragment)
        return len(pixels), 0
    if syntax.is_encapsulated:
        return element.length, _file_fragments(handle, element.value_tell, size)
    return min(element.length, max(0, size - element.value_tell)), 0


def _check_end(dataset: Dataset, data: bytes) -> None:
    """A cut file ends inside its last element (every element before it was read whole): that element must
    hold the length its header announces, or, when its length is undefined (sequence, encapsulated pixel
    data), the file must end with its sequence delimiter. pydicom itself only warns in both cases."""
    tags = list(dataset.keys())
    if not tags:
        raise InvalidDicom("fichier tronqué ou vide (aucun élément lisible)")
    element = dataset.get_item(tags[-1])
    if not isinstance(element, RawDataElement):
        return
    if element.length == UNDEFINED_LENGTH:
        deflated = str(dataset.file_meta.get("TransferSyntaxUID", "")) == DEFLATED
        if not deflated and not data.endswith(SEQUENCE_DELIMITERS):
            raise InvalidDicom("fichier tronqué (délimiteur de fin absent)")
    elif element.value is not None and len(element.value) < element.length:
        raise InvalidDicom(f"fichier tronqué (élément {element.tag} incomplet)")


def _uid(dataset: Dataset, keyword: str, label: str) -> str:
    value = str(dataset.get(keyword) or "").strip().rstrip("\x00")
    if not value:
        raise InvalidDicom(f"{label} absent")
    if len(value) > 64 or not UID_PATTERN.match(value):
        raise InvalidDicom(f"{label} mal formé")
    return value


def _text(dataset: Dataset, keyword: str, limit: int) -> str | None:
    value = dataset.get(keyword)
    if value is None:
        return None
    text = str(value).strip()
    return text[:limit] or None


def _integer(dataset: Dataset, keyword: str) -> int | None:
    value = dataset.get(keyword)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _birth_date(dataset: Dataset) -> str | None:
    value = str(dataset.get("PatientBirthDate") or "").strip()
    if re.fullmatch(r"\d{8}", value):
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return None


def _describe(dataset: Dataset) -> ParsedInstance:
    meta = getattr(dataset, "file_meta", None)
    if meta is None or not meta.get("TransferSyntaxUID"):
        raise InvalidDicom("syntaxe de transfert absente de l'en-tête")
    return ParsedInstance(
        study_uid=_uid(dataset, "StudyInstanceUID", "Study Instance UID"),
        series_uid=_uid(dataset, "SeriesInstanceUID", "Series Instance UID"),
        sop_instance_uid=_uid(dataset, "SOPInstanceUID", "SOP Instance UID"),
        sop_class_uid=_uid(dataset, "SOPClassUID", "SOP Class UID"),
        transfer_syntax=str(meta.TransferSyntaxUID),
        accession_number=_text(dataset, "AccessionNumber", 64),
        patient_id=_text(dataset, "PatientID", 64),
        patient_name=_text(dataset, "PatientName", 324),
        patient_birth_date=_birth_date(dataset),
        patient_sex=_text(dataset, "PatientSex", 16),
        study_description=_text(dataset, "StudyDescription", 200),
        modality=_text(dataset, "Modality", 16),
        series_description=_text(dataset, "SeriesDescription", 200),
        series_number=_integer(dataset, "SeriesNumber"),
        instance_number=_integer(dataset, "InstanceNumber"),
        rows=_integer(dataset, "Rows"),
        columns=_integer(dataset, "Columns"),
        frames=_integer(dataset, "NumberOfFrames") or (1 if "PixelData" in dataset else None),
    )


def _check_pixel_data(dataset: Dataset, syntax: UID, handle: Any = None, size: int = 0) -> None:
    if "PixelData" not in dataset:
        if "Rows" in dataset and "Columns" in dataset and "FloatPixelData" not in dataset \
                and "DoubleFloatPixelData" not in dataset:
            raise InvalidDicom("données d'image (Pixel Data) absentes")
        return
    length, fragments = _pixel_extent(dataset, syntax, handle, size)  # fragments: after the offset table
    frames = _integer(dataset, "NumberOfFrames") or 1
    if syntax.is_encapsulated:
        if fragments < max(frames, 1):
            raise InvalidDicom("données d'image compressées incomplètes")
        return
    rows, columns = _integer(dataset, "Rows"), _integer(dataset, "Columns")
    bits = _integer(dataset, "BitsAllocated")
    if not rows or not columns or not bits:
        raise InvalidDicom("dimensions de l'image absentes (Rows, Columns, Bits Allocated)")
    samples = _integer(dataset, "SamplesPerPixel") or 1
    if str(dataset.get("PhotometricInterpretation", "")) == "YBR_FULL_422":
        samples = 2  # two samples per pixel on average when stored uncompressed
    expected = (rows * columns * samples * frames * bits + 7) // 8
    if length < expected:
        raise InvalidDicom(f"fichier tronqué (données d'image : {length} octets sur {expected})")


def store_bytes(root: Path, data: bytes, *, fsync: bool = True) -> StoredFile:
    """Write the file under its SHA-256 (once: the same content is never written twice), through a temporary
    file renamed into place, so a reader never sees a partial file. With `fsync` the content is on disk
    before the caller acknowledges the instance."""
    digest = hashlib.sha256(data).hexdigest()
    folder = os.path.join(root, digest[:2])
    target = os.path.join(folder, digest)
    if os.path.exists(target):
        return StoredFile(digest, Path(target), len(data), created=False)
    temporary = os.path.join(folder, f".{digest}.{uuid.uuid4().hex}.part")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return StoredFile(digest, Path(target), len(data), created=True)


def path_of(root: Path, sha256: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError("not a SHA-256 digest")
    return root / sha256[:2] / sha256


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def store_file(root: Path, source: Path, sha256: str, *, fsync: bool = True, move: bool = False) -> StoredFile:
    """`store_bytes` for a file on disk whose SHA-256 is known: moved into place when `move` (and on the same
    file system), copied in 1 MB chunks otherwise (the source is then left as it is)."""
    size = os.path.getsize(source)
    folder = os.path.join(root, sha256[:2])
    target = os.path.join(folder, sha256)
    if os.path.exists(target):
        return StoredFile(sha256, Path(target), size, created=False)
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{sha256}.{uuid.uuid4().hex}.part")
    try:
        moved = False
        if move:
            try:
                os.rename(source, temporary)
                moved = True
            except OSError as err:
                if err.errno != errno.EXDEV:
                    raise
        if moved:
            os.chmod(temporary, 0o640)
        else:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            with os.fdopen(descriptor, "wb") as output, open(source, "rb") as data:
                shutil.copyfileobj(data, output, CHUNK)
        if fsync:
            descriptor = os.open(temporary, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return StoredFile(sha256, Path(target), size, created=True)
