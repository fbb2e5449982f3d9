"""The headers of stored files (everything before the pixel data), read once: the files are content-addressed
and never change, so a header is cached by the SHA-256 of its file (bounded, least recently used first out)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset

from integrations.dicom.storage import path_of

CACHED_HEADERS = 512
_cache: OrderedDict[tuple[str, str], Dataset] = OrderedDict()
_lock = threading.Lock()


def header(storage: Path, sha256: str) -> Dataset | None:
    """The dataset of a stored file without its pixel data; None when the file is missing or unreadable."""
    key = (str(storage), sha256)
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    try:
        dataset = dcmread(path_of(storage, sha256), stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - a damaged or vanished file: answered without its header
        return None
    with _lock:
        _cache[key] = dataset
        while len(_cache) > CACHED_HEADERS:
            _cache.popitem(last=False)
    return dataset
