"""Previews are rendered in a child process with CPU and memory limits: the process that asks never decodes an
image itself, and a preview that goes over the limits is simply unavailable (issue 16: the first view of a case
rendered its previews inside the web process that also runs the scheduler and the listeners). Only the worker's
preview job asks (tests/integration/test_dicom_preview_queue.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from integrations.dicom import previews, thumbnails
from integrations.dicom.storage import store_bytes


def stored(tmp_path, name="CT_small.dcm"):
    data = Path(get_testdata_file(name, download=False)).read_bytes()
    return store_bytes(tmp_path / "dicom", data, fsync=False)


def test_the_preview_is_rendered_in_a_child_and_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(thumbnails, "pixel_array", lambda *a, **k: pytest.fail("decoded in the web process"))
    source = stored(tmp_path)
    assert previews.preview_state(tmp_path / "previews", source.sha256) == previews.PENDING
    png = previews.render_into_cache(tmp_path / "dicom", tmp_path / "previews", source.sha256)
    assert png is not None and png.startswith(previews.PNG_MAGIC)
    cached = list((tmp_path / "previews").rglob("*.png"))
    assert len(cached) == 1 and cached[0].read_bytes() == png
    assert previews.preview_state(tmp_path / "previews", source.sha256) == previews.READY
    assert previews.cached_png(tmp_path / "previews", source.sha256) == png


@pytest.mark.charter("CH-5.1", negative=True)
def test_a_preview_over_the_memory_limit_is_unavailable_and_the_parent_is_unharmed(tmp_path):
    source = stored(tmp_path)
    assert previews.render_isolated(source.path, 256, memory_bytes=64 * 1024 * 1024) is None  # cannot even start
    assert previews.render_isolated(source.path, 256) is not None  # the same file within the limits


def test_an_unreadable_file_gives_no_preview_and_it_is_remembered(tmp_path):
    source = store_bytes(tmp_path / "dicom", b"not dicom at all", fsync=False)
    assert previews.render_into_cache(tmp_path / "dicom", tmp_path / "previews", source.sha256) is None
    assert list((tmp_path / "previews").rglob("*.none"))
    assert previews.preview_state(tmp_path / "previews", source.sha256) == previews.UNAVAILABLE
    assert previews.cached_png(tmp_path / "previews", source.sha256) is None
