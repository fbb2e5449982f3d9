"""Previews rendered ahead, off the request path: the series waiting for one, and the worker's job that renders
them (issue 16: the first view of a case rendered its previews inside the web request).

A series waits for its preview while a marker file `<cache>/pending/<series UID>` exists. Storing an instance
(C-STORE or web upload, integrations.dicom.ingest) touches it; a page asking for a preview the cache does not
have creates it without touching it (series received before previews were rendered ahead, or whose middle
instance changed since). The process running the scheduler renders them (render_pending_previews): oldest
first, a bounded number per run, one child process at a time, once the series has received nothing for
SETTLE_SECONDS (its middle instance is then the one its case page shows). No column, no migration: the marker
is the queue and the cache says what is done; both live in the instance folder every process shares.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from engine.services.context import EngineContext
from integrations.dicom.previews import PENDING, cache_of, preview_state, render_into_cache
from integrations.dicom.storage import UID_PATTERN
from integrations.dicom.studies import series_representative

log = logging.getLogger(__name__)

QUEUE = "pending"
SETTLE_SECONDS = 2.0  # a series still receiving instances waits: its middle instance is still moving
RENDERS_PER_RUN = 4  # at most 4 children (2 minutes at the wall-clock limit) per run of the job
EXAMINED_PER_RUN = 64  # markers looked at per run (most are already rendered: a cache check and a query each)
_ONE_CHILD = threading.Lock()  # one rendering child at a time in this process, whatever calls the job


@dataclass(frozen=True)
class PreviewRun:
    rendered: int = 0
    unavailable: int = 0
    waiting: int = 0  # markers left for the next runs (still settling, or over this run's bound)
    busy: bool = False  # another run of this process was rendering: this one did nothing


def mark_received(storage: Path, series_uid: str) -> None:
    """An instance of the series was stored: its preview is to be rendered once the series settles."""
    marker = _marker(cache_of(storage), series_uid)
    if marker is None:
        return
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch(mode=0o600)  # creates it, or moves its time on: the series is still receiving
    except OSError as err:  # the instance is stored all the same; a page view asks again
        log.warning("preview of series %s not queued: %s", series_uid, err)


def ask_for_preview(cache: Path, series_uid: str) -> None:
    """A page shows a series whose preview is not rendered yet: queue it, without delaying it if it is queued
    already (reloading the page must not keep a series settling)."""
    marker = _marker(cache, series_uid)
    if marker is None:
        return
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as err:
        log.warning("preview of series %s not queued: %s", series_uid, err)


def render_pending_previews(ctx: EngineContext, storage: Path, *, renders: int = RENDERS_PER_RUN,
                            settle_seconds: float = SETTLE_SECONDS) -> PreviewRun:
    """Render the previews waiting in the queue, oldest first: at most `renders` children, one at a time, and
    at most EXAMINED_PER_RUN markers per run. Each result (PNG or "unavailable") is cached by render_into_cache."""
    if not _ONE_CHILD.acquire(blocking=False):
        return PreviewRun(busy=True)
    try:
        return _render(ctx, storage, cache_of(storage), renders, settle_seconds)
    finally:
        _ONE_CHILD.release()


def _render(ctx: EngineContext, storage: Path, cache: Path, renders: int, settle_seconds: float) -> PreviewRun:
    queued = _queued(cache)
    settled_before = time.time() - settle_seconds
    rendered = unavailable = examined = 0
    for mtime_ns, marker in queued:
        if mtime_ns / 1e9 > settled_before or examined >= EXAMINED_PER_RUN:
            break
        examined += 1
        source = series_representative(ctx, marker.name)
        if source is not None and preview_state(cache, source) == PENDING:
            if rendered + unavailable >= renders:
                examined -= 1
                break
            try:
                content = render_into_cache(storage, cache, source)
            except OSError as err:  # the cache cannot be written (disk full): the series stays queued
                log.warning("preview of series %s not cached: %s", marker.name, err)
                continue
            if content is None:
                unavailable += 1
            else:
                rendered += 1
        _dequeue(marker, mtime_ns)
    if rendered or unavailable:
        log.info("DICOM previews: %d rendered, %d unavailable, %d waiting", rendered, unavailable,
                 len(queued) - examined)
    return PreviewRun(rendered, unavailable, len(queued) - examined)


def _queued(cache: Path) -> list[tuple[int, Path]]:
    """(modification time, marker) of the queued series, oldest first."""
    entries = []
    with contextlib.suppress(FileNotFoundError), os.scandir(cache / QUEUE) as found:
        for entry in found:
            with contextlib.suppress(FileNotFoundError):
                entries.append((entry.stat().st_mtime_ns, Path(entry.path)))
    return sorted(entries)


def _dequeue(marker: Path, mtime_ns: int) -> None:
    """Remove the marker unless an instance arrived meanwhile (then the series is looked at again)."""
    with contextlib.suppress(FileNotFoundError):
        if marker.stat().st_mtime_ns == mtime_ns:
            marker.unlink()


def _marker(cache: Path, series_uid: str) -> Path | None:
    if len(series_uid) > 64 or not UID_PATTERN.match(series_uid):
        return None
    return cache / QUEUE / series_uid

