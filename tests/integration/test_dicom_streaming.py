"""Reception that streams (issue 18, item 6): a C-STORE instance is written to disk as its PDUs arrive and checked
there without its pixel data being read, so the receiver's memory does not grow with the instance's size; the
checks of a file on disk are those of an instance in memory (CH-5.1)."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from sqlalchemy import select

from integrations.dicom.models import DicomInstance
from integrations.dicom.storage import InvalidDicom, file_sha256, parse_instance, parse_instance_file, path_of
from tests.integration import dicom_support
from tests.integration.dicom_support import COMPRESSED, storescu

dicom_ctx = dicom_support.dicom_ctx  # fixture
scp = dicom_support.scp  # fixture
storage = dicom_support.storage  # fixture

MULTIFRAME_SC = "1.2.840.10008.5.1.4.1.1.7.3"  # Multi-frame Grayscale Word Secondary Capture Image Storage
ROWS = COLUMNS = 512
FRAMES = 960  # 512 x 512 x 2 bytes x 960 frames: 503 MB of pixel data (the issue: a 500 MB instance)
CHUNK = 4 * 1024 * 1024


def large_instance(path: Path) -> int:
    """A multi-frame instance of FRAMES frames written in 4 MB chunks (never whole in memory); its size."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MULTIFRAME_SC
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = MULTIFRAME_SC, meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
    dataset.PatientID, dataset.PatientName, dataset.Modality = "IPP-STREAM-1", "STREAM^TEST", "OT"
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.Rows, dataset.Columns, dataset.NumberOfFrames = ROWS, COLUMNS, FRAMES
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 12, 11, 0
    dataset.save_as(path, enforce_file_format=True)
    length = ROWS * COLUMNS * 2 * FRAMES
    chunk = bytes(range(256)) * (CHUNK // 256)
    with path.open("ab") as handle:
        handle.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, length))  # Pixel Data, OW, 32-bit length
        for start in range(0, length, CHUNK):
            handle.write(chunk[:min(CHUNK, length - start)])
    return path.stat().st_size


@pytest.mark.charter("CH-5.1")
def test_a_large_multiframe_instance_is_received_with_flat_memory(scp, dicom_ctx, storage, tmp_path):
    path = tmp_path / "large.dcm"
    try:
        size = large_instance(path)
        assert size > 500_000_000
        tracemalloc.start()
        try:
            sent = storescu(scp.port, path)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert sent.returncode == 0, sent.stderr
        # Held whole in memory, the instance would take its size at least (twice with the Part-10 copy).
        assert peak < size / 8, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.0f} MB instance"
        with dicom_ctx.read() as session:
            row = session.execute(select(DicomInstance)).scalar_one()
        assert (row.frames, row.rows, row.columns) == (FRAMES, ROWS, COLUMNS)
        stored = path_of(storage, row.sha256)
        assert file_sha256(stored) == row.sha256 and stored.stat().st_size == row.size
        assert row.size - size == stored.stat().st_size - size  # the dataset as sent, under our file meta
        assert pydicom.dcmread(stored, stop_before_pixels=True).SOPInstanceUID == row.sop_instance_uid
        assert not list(storage.rglob("*.part"))
    finally:
        path.unlink(missing_ok=True)
        for stored_file in storage.rglob("*"):
            if stored_file.is_file() and stored_file.stat().st_size > 1_000_000:
                stored_file.unlink()


@pytest.mark.charter("CH-5.1")
@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", *(c[0] for c in COMPRESSED)])
def test_a_file_on_disk_is_checked_as_an_instance_in_memory(tmp_path, name):
    source = Path(get_testdata_file(name, download=False))
    data = source.read_bytes()
    assert parse_instance_file(source) == parse_instance(data)
    for cut in (len(data) - 1, len(data) - 200, len(data) // 2):  # in the pixel data, its delimiter, the header
        truncated = tmp_path / f"cut-{cut}.dcm"
        truncated.write_bytes(data[:cut])
        with pytest.raises(InvalidDicom) as in_memory:
            parse_instance(data[:cut])
        with pytest.raises(InvalidDicom) as on_disk:
            parse_instance_file(truncated)
        assert str(on_disk.value) == str(in_memory.value)
