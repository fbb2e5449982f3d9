"""Previews are rendered ahead by the worker, never by a web request (issue 16: the first view of a case rendered
its previews inside the web process, and a 1 KB JPEG 2000 of 8192 x 8192 pixels made it allocate 2.35 GB).

Storing an instance (C-STORE or upload) queues its series; the scheduler's job renders the queue in limited child
processes, a bounded number per run, one at a time; the pages only read the cache and say "aperçu en préparation"
or "aperçu indisponible" meanwhile."""

from __future__ import annotations

import io
import os
import resource
import subprocess
import threading
import time

import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_fragments

from integrations.dicom import preview_queue, previews, thumbnails
from integrations.dicom.ingest import ingest_file
from integrations.dicom.preview_queue import ask_for_preview, render_pending_previews
from integrations.dicom.studies import series_representative
from tests.demo_app import login
from tests.integration import dicom_support
from tests.integration.dicom_support import demo_case, for_case, rewrite
from web.ops.scheduler import TimerScheduler

dicom_ctx, app = dicom_support.dicom_ctx, dicom_support.dicom_app  # fixtures


def storage_of(tmp_path):
    return tmp_path / "instance" / "dicom"


def queued(tmp_path) -> list[str]:
    folder = previews.cache_of(storage_of(tmp_path)) / preview_queue.QUEUE
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def upload(client, case_id: int, path) -> str:
    return client.post(f"/cases/{case_id}/dicom", data={"dicom_files": (io.BytesIO(path.read_bytes()), path.name)},
                       content_type="multipart/form-data", follow_redirects=True).get_data(as_text=True)


def no_child_process(monkeypatch) -> None:
    """Any renderer or child process started from here fails the test."""
    monkeypatch.setattr(previews, "render_isolated", lambda *a, **k: pytest.fail("rendered by a web request"))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("child process from a web request"))
    monkeypatch.setattr(thumbnails, "pixel_array", lambda *a, **k: pytest.fail("decoded in the web process"))


@pytest.mark.charter("CH-5.1")
def test_a_page_never_renders_it_says_in_preparation_and_the_worker_renders(app, dicom_ctx, clock, tmp_path,
                                                                            monkeypatch):
    case_id, accession = demo_case(dicom_ctx)
    path = rewrite(tmp_path / "in", "CT_small.dcm", **for_case(accession))
    series = str(pydicom.dcmread(path).SeriesInstanceUID)
    client = login(app, dicom_ctx, clock, "merm.leroy")
    with monkeypatch.context() as patched:
        no_child_process(patched)
        page = upload(client, case_id, path)
        assert "1 image(s) enregistrée(s)" in page
        assert queued(tmp_path) == [series]  # queued by the upload
        assert "aperçu en préparation" in page and "rechargez la page dans quelques secondes" in page
        assert "thumbnail.png" not in page
        thumbnail = client.get(f"/cases/{case_id}/series/{series}/thumbnail.png")
        assert thumbnail.status_code == 202 and thumbnail.headers["Retry-After"] == "5"
        assert "Aperçu en préparation" in thumbnail.get_data(as_text=True)
    run = render_pending_previews(dicom_ctx, storage_of(tmp_path), settle_seconds=0)  # the worker's job
    assert (run.rendered, run.unavailable, run.waiting) == (1, 0, 0) and queued(tmp_path) == []
    with monkeypatch.context() as patched:
        no_child_process(patched)
        thumbnail = client.get(f"/cases/{case_id}/series/{series}/thumbnail.png")
        assert thumbnail.status_code == 200 and thumbnail.data.startswith(previews.PNG_MAGIC)
        page = client.get(f"/cases/{case_id}").get_data(as_text=True)
        assert f"/series/{series}/thumbnail.png" in page and "aperçu en préparation" not in page


def test_a_series_received_before_previews_were_rendered_ahead_is_queued_by_its_first_view(
        app, dicom_ctx, clock, tmp_path, monkeypatch):
    case_id, accession = demo_case(dicom_ctx)
    path = rewrite(tmp_path / "in", "MR_small.dcm", **for_case(accession))
    series = str(pydicom.dcmread(path).SeriesInstanceUID)
    client = login(app, dicom_ctx, clock, "merm.leroy")
    upload(client, case_id, path)
    for marker in (previews.cache_of(storage_of(tmp_path)) / preview_queue.QUEUE).iterdir():
        marker.unlink()  # as if stored by the previous version: no preview, nothing queued
    with monkeypatch.context() as patched:
        no_child_process(patched)
        assert "aperçu en préparation" in client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert queued(tmp_path) == [series]
    assert render_pending_previews(dicom_ctx, storage_of(tmp_path), settle_seconds=0).rendered == 1
    assert client.get(f"/cases/{case_id}/series/{series}/thumbnail.png").status_code == 200


def j2k_bomb(folder, accession: str):
    """The finding's image: a real JPEG 2000 file whose codestream header claims 8192 x 8192 pixels."""
    path = rewrite(folder, "MR_small_jp2klossless.dcm", **for_case(accession))
    dataset = pydicom.dcmread(path)
    codestream = bytearray(list(generate_fragments(dataset.PixelData))[1])
    codestream[8:12], codestream[12:16] = (8192).to_bytes(4, "big"), (8192).to_bytes(4, "big")
    dataset.PixelData = encapsulate([bytes(codestream)])
    dataset.save_as(path)
    assert path.stat().st_size < 64 * 1024
    return path


@pytest.mark.charter("CH-5.1", negative=True)
def test_the_jpeg2000_bomb_is_unavailable_through_the_job_and_the_web_process_is_untouched(
        app, dicom_ctx, clock, tmp_path, monkeypatch):
    case_id, accession = demo_case(dicom_ctx)
    path = j2k_bomb(tmp_path / "in", accession)
    series = str(pydicom.dcmread(path).SeriesInstanceUID)
    client = login(app, dicom_ctx, clock, "merm.leroy")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    with monkeypatch.context() as patched:
        no_child_process(patched)
        assert "aperçu en préparation" in upload(client, case_id, path)
    monkeypatch.setattr(thumbnails, "pixel_array", lambda *a, **k: pytest.fail("decoded in this process"))
    run = render_pending_previews(dicom_ctx, storage_of(tmp_path), settle_seconds=0)
    assert (run.rendered, run.unavailable) == (0, 1)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < 100 * 1024, f"the web process grew by {grown} KiB"
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "aperçu indisponible" in page and "aperçu en préparation" not in page and "thumbnail.png" not in page
    thumbnail = client.get(f"/cases/{case_id}/series/{series}/thumbnail.png")
    assert thumbnail.status_code == 404 and "aperçu indisponible" in thumbnail.get_data(as_text=True)
    assert render_pending_previews(dicom_ctx, storage_of(tmp_path), settle_seconds=0).unavailable == 0  # once


def received(ctx, tmp_path, count: int) -> list[str]:
    """Series received by C-STORE (no case yet), oldest first; their markers one second apart."""
    series = []
    for index in range(count):
        path = rewrite(tmp_path / "in", "CT_small.dcm", **for_case(f"INCONNU-{index}"))
        assert ingest_file(ctx, path, "ch-brest", "dicom", storage=storage_of(tmp_path),
                           calling_ae="CT_BREST", fsync=False).status == "stored"
        series.append(str(pydicom.dcmread(path).SeriesInstanceUID))
    folder = previews.cache_of(storage_of(tmp_path)) / preview_queue.QUEUE
    start = time.time() - 100
    for index, uid in enumerate(series):
        os.utime(folder / uid, (start + index, start + index))
    return series


class Renderer:
    """Stands for the child process: records what it renders and how many run at once."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.active = self.most_active = 0
        self._lock = threading.Lock()

    def __call__(self, path, max_size, **_kw) -> bytes:
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        time.sleep(0.05)
        with self._lock:
            self.active -= 1
            self.paths.append(path.name)
        return previews.PNG_MAGIC + b"fake"


@pytest.mark.charter("CH-5.1", negative=True)
def test_the_job_renders_a_bounded_number_per_run_oldest_first_one_child_at_a_time(dicom_ctx, tmp_path,
                                                                                   monkeypatch):
    series = received(dicom_ctx, tmp_path, 5)
    assert queued(tmp_path) == sorted(series)
    renderer = Renderer()
    monkeypatch.setattr(previews, "render_isolated", renderer)
    runs: list[preview_queue.PreviewRun] = []
    threads = [threading.Thread(target=lambda: runs.append(
        render_pending_previews(dicom_ctx, storage_of(tmp_path), renders=2, settle_seconds=0))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = next(run for run in runs if not run.busy)
    assert (done.rendered, done.waiting) == (2, 3) and renderer.most_active == 1
    assert sorted(queued(tmp_path)) == sorted(series[2:])  # the two oldest went first
    assert render_pending_previews(dicom_ctx, storage_of(tmp_path), renders=2, settle_seconds=0).rendered == 2
    last = render_pending_previews(dicom_ctx, storage_of(tmp_path), renders=2, settle_seconds=0)
    assert (last.rendered, last.waiting) == (1, 0) and queued(tmp_path) == []
    assert len(renderer.paths) == 5 and renderer.most_active == 1


def test_a_series_still_receiving_waits_and_a_page_view_does_not_delay_it(dicom_ctx, tmp_path, monkeypatch):
    (uid,) = received(dicom_ctx, tmp_path, 1)
    marker = previews.cache_of(storage_of(tmp_path)) / preview_queue.QUEUE / uid
    monkeypatch.setattr(previews, "render_isolated", Renderer())
    marker.touch()  # an instance just arrived
    run = render_pending_previews(dicom_ctx, storage_of(tmp_path))
    assert (run.rendered, run.waiting) == (0, 1)
    os.utime(marker, (time.time() - 60, time.time() - 60))
    ask_for_preview(previews.cache_of(storage_of(tmp_path)), uid)  # a page reloaded meanwhile
    assert marker.stat().st_mtime < time.time() - 30
    assert render_pending_previews(dicom_ctx, storage_of(tmp_path)).rendered == 1
    ask_for_preview(previews.cache_of(storage_of(tmp_path)), "../../etc")  # a series UID only, never a path
    assert queued(tmp_path) == []


def test_the_worker_scheduler_runs_the_preview_job(dicom_ctx, tmp_path, monkeypatch):
    received(dicom_ctx, tmp_path, 1)
    monkeypatch.setattr(previews, "render_isolated", Renderer())
    assert TimerScheduler(dicom_ctx, 3600)._scheduler.get_job("render_previews") is None  # web only: no job
    scheduler = TimerScheduler(dicom_ctx, 3600, dicom_storage=storage_of(tmp_path))
    assert scheduler._scheduler.get_job("render_previews") is not None
    scheduler.render_previews()  # its marker is older than the settling delay
    assert queued(tmp_path) == []


def test_the_started_scheduler_renders_a_received_series_in_a_child(dicom_ctx, tmp_path):
    (uid,) = received(dicom_ctx, tmp_path, 1)
    scheduler = TimerScheduler(dicom_ctx, 3600, dicom_storage=storage_of(tmp_path))
    scheduler.start()
    try:
        deadline = time.monotonic() + 30
        while queued(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        scheduler.shutdown()
    cache = previews.cache_of(storage_of(tmp_path))
    assert queued(tmp_path) == [] and list(cache.rglob("*.png"))
    assert previews.preview_state(cache, series_representative(dicom_ctx, uid)) == previews.READY
