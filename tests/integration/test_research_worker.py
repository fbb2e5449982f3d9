"""The worker's research export jobs (CH-8.2) on SQLite and PostgreSQL: exports not downloaded in time purged
hourly without anyone opening a page, and the files no ready export references swept after an hour; a production
interrupted by a process stop (RUNNING, heartbeat older than STALE_PRODUCTION) claimed by one worker only, its
partial or unrecorded file removed and the export produced again (READY); a production still beating left alone;
the producer whose production was taken over (with images, mid-case or about to finish) can no longer write and
leaves no file."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import zipfile
from datetime import timedelta

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select

from engine.domain.research import EXPORT_KEPT_DAYS, STALE_PRODUCTION
from engine.errors import Conflict
from engine.services.research import create_request, decide, get_request, take_download
from engine.services.research_production import (
    claim_stale_production,
    fail_production,
    finish_production,
    set_progress,
    start_production,
)
from engine.store.models import AuditEvent
from engine.store.research_models import ResearchRequest
from integrations.dicom import research_export
from integrations.dicom.ingest import ingest_file
from integrations.dicom.research_export import produce_claimed, produce_export
from tests.integration import dicom_support
from tests.integration.dicom_support import demo_case
from tests.integration.test_research_exports import ADMIN, RESEARCHER, _identifying_file, spec
from web.ops.scheduler import TimerScheduler

dicom_ctx = dicom_support.dicom_ctx


def _approved(ctx) -> int:
    request_id = create_request(ctx, RESEARCHER, spec(images=False))
    decide(ctx, ADMIN, request_id, True)
    return request_id


def _interrupted(ctx, research) -> int:
    """An approved request whose producer died mid-export: RUNNING, a partial file left behind."""
    request_id = _approved(ctx)
    view = start_production(ctx, request_id)
    set_progress(ctx, request_id, view.attempt, 3, 10)
    research.mkdir(parents=True, exist_ok=True)
    (research / f".{request_id}-{'a' * 32}.zip.part").write_bytes(b"PK half an export")
    return request_id


def _file_name(ctx, request_id: int) -> str:
    with ctx.read() as session:
        return str(session.get(ResearchRequest, request_id).file_name)


@pytest.fixture
def worker(dicom_ctx, tmp_path):
    instance = tmp_path / "instance"
    return TimerScheduler(dicom_ctx, 3600, dicom_storage=instance / "dicom"), instance / "research"


def test_the_jobs_run_in_the_worker_only(dicom_ctx, worker):
    scheduler, _research = worker
    for job in ("purge_research_exports", "restart_research_exports"):
        assert scheduler._scheduler.get_job(job) is not None
        assert TimerScheduler(dicom_ctx, 3600)._scheduler.get_job(job) is None  # no instance folders: no job
    assert scheduler._scheduler.get_job("purge_research_exports").trigger.interval == timedelta(hours=1)


@pytest.mark.charter("CH-8.2", negative=True)
def test_the_worker_purges_exports_not_downloaded_in_time(dicom_ctx, worker, clock):
    scheduler, research = worker
    request_id = _approved(dicom_ctx)
    name = produce_export(dicom_ctx, request_id, research.parent / "dicom", research)
    clock.advance(days=EXPORT_KEPT_DAYS - 1)
    scheduler.purge_research_exports()
    assert (research / name).is_file() and get_request(dicom_ctx, ADMIN, request_id).status == "ready"
    clock.advance(days=2)
    scheduler.purge_research_exports()
    assert not (research / name).exists() and get_request(dicom_ctx, ADMIN, request_id).status == "expired"


@pytest.mark.charter("CH-8.2")
def test_an_interrupted_production_is_produced_again_by_the_worker(dicom_ctx, worker, clock):
    scheduler, research = worker
    request_id = _interrupted(dicom_ctx, research)
    clock.advance(seconds=STALE_PRODUCTION.total_seconds() + 60)
    scheduler.restart_research_exports()
    view = get_request(dicom_ctx, ADMIN, request_id)
    assert view.status == "ready" and view.attempt == 2 and view.error is None
    assert view.progress_done == view.progress_total == len(view.manifest["case_ids"]) > 0
    assert [path.name for path in research.iterdir()] == [_file_name(dicom_ctx, request_id)]  # no partial
    with dicom_ctx.read() as session:
        actions = list(session.execute(select(AuditEvent.action).where(AuditEvent.action.like("research.%"))
                                       .order_by(AuditEvent.id)).scalars())
    assert actions[-2:] == ["research.restarted", "research.exported"]


@pytest.mark.charter("CH-8.2", negative=True)
def test_a_production_still_beating_is_left_alone(dicom_ctx, worker, clock):
    scheduler, research = worker
    request_id = _interrupted(dicom_ctx, research)
    clock.advance(seconds=STALE_PRODUCTION.total_seconds() - 60)
    scheduler.restart_research_exports()
    view = get_request(dicom_ctx, ADMIN, request_id)
    assert view.status == "running" and view.attempt == 1 and view.progress_done == 3
    assert len(list(research.iterdir())) == 1  # its partial file is its own


@pytest.mark.charter("CH-8.2", negative=True)
def test_of_two_claims_one_wins_and_the_old_producer_can_no_longer_write(dicom_ctx, tmp_path, clock):
    request_id = _interrupted(dicom_ctx, tmp_path / "research")
    assert claim_stale_production(dicom_ctx, request_id) is None  # still beating
    clock.advance(seconds=STALE_PRODUCTION.total_seconds() + 1)
    won = claim_stale_production(dicom_ctx, request_id)
    assert won is not None and won.attempt == 2 and won.status == "running"
    assert claim_stale_production(dicom_ctx, request_id) is None  # the second claimant finds it taken
    with pytest.raises(Conflict, match="reprise"):
        set_progress(dicom_ctx, request_id, 1, 4, 10)
    with pytest.raises(Conflict, match="reprise"):
        finish_production(dicom_ctx, request_id, 1, f"{request_id}-{'b' * 32}.zip", "0" * 64, {})
    with pytest.raises(ValueError):  # a file name of another request (or of no request)
        finish_production(dicom_ctx, request_id, 2, f"{request_id + 1}-{'b' * 32}.zip", "0" * 64, {})
    fail_production(dicom_ctx, request_id, 1, "old producer's error")
    view = get_request(dicom_ctx, ADMIN, request_id)
    assert view.status == "running" and view.error is None and view.attempt == 2
    with dicom_ctx.read() as session:
        restarts = session.execute(select(AuditEvent).where(AuditEvent.action == "research.restarted")).all()
    assert len(restarts) == 1


@pytest.mark.charter("CH-8.2", negative=True)
def test_two_workers_claiming_at_once_never_both_win(dicom_ctx, tmp_path, clock):
    request_id = _interrupted(dicom_ctx, tmp_path / "research")
    clock.advance(seconds=STALE_PRODUCTION.total_seconds() + 1)
    barrier, results = threading.Barrier(2), []

    def claim() -> None:
        barrier.wait()
        results.append(claim_stale_production(dicom_ctx, request_id))

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(result is None for result in results) == [False, True]
    assert get_request(dicom_ctx, ADMIN, request_id).attempt == 2


def _aged(path, hours: float = 2) -> None:
    past = time.time() - hours * 3600
    os.utime(path, (past, past))


@pytest.mark.charter("CH-8.2", negative=True)
def test_an_export_finished_but_never_recorded_is_removed_by_the_takeover(dicom_ctx, worker, clock):
    """The process died between the rename of the zip and its record: the request stays RUNNING with a complete
    file no row names; the worker taking it over removes that file and produces the export again."""
    scheduler, research = worker
    request_id = _approved(dicom_ctx)
    view = start_production(dicom_ctx, request_id)
    set_progress(dicom_ctx, request_id, view.attempt, 10, 10)
    research.mkdir(parents=True)
    (research / f"{request_id}-{'c' * 32}.zip").write_bytes(b"PK a whole export")
    clock.advance(seconds=STALE_PRODUCTION.total_seconds() + 60)
    scheduler.restart_research_exports()
    assert get_request(dicom_ctx, ADMIN, request_id).status == "ready"
    assert [path.name for path in research.iterdir()] == [_file_name(dicom_ctx, request_id)]


@pytest.mark.charter("CH-8.2", negative=True)
def test_the_hourly_purge_sweeps_files_no_ready_export_references(dicom_ctx, worker, clock, caplog):
    """Removed: an old-style partial, a finished zip of no request, the file of an export downloaded hours ago
    (its sending cut); kept: the ready export, the one being sent, a running production's partial, a file written
    less than an hour ago, anything not an export."""
    scheduler, research = worker
    ready_id, sent_long_ago, being_sent, running = (_approved(dicom_ctx) for _ in range(4))
    names = {request_id: produce_export(dicom_ctx, request_id, research.parent / "dicom", research)
             for request_id in (ready_id, sent_long_ago, being_sent)}
    assert all(name.startswith(f"{request_id}-") for request_id, name in names.items())
    assert take_download(dicom_ctx, RESEARCHER, sent_long_ago) == names[sent_long_ago]
    start_production(dicom_ctx, running)
    files = {"old_partial": f".{'d' * 32}.zip.part", "orphan": f"{running + 100}-{'e' * 32}.zip",
             "failed_partial": f".{running + 101}-{'f' * 32}.zip.part", "fresh": f"{running + 102}-{'a' * 32}.zip",
             "running": f".{running}-{'b' * 32}.zip.part", "notes": "notes.txt"}
    for name in files.values():
        (research / name).write_bytes(b"PK")
    for name in (*names.values(), *(files[key] for key in files if key != "fresh")):
        _aged(research / name)
    clock.advance(hours=2)
    assert take_download(dicom_ctx, RESEARCHER, being_sent) == names[being_sent]
    caplog.set_level(logging.WARNING, logger=research_export.__name__)
    scheduler.purge_research_exports()
    assert sorted(path.name for path in research.iterdir()) == sorted(
        [names[ready_id], names[being_sent], files["running"], files["fresh"], files["notes"]])
    removed = {files["old_partial"], files["orphan"], files["failed_partial"], names[sent_long_ago]}
    assert {name for name in removed if any(name in record.getMessage() for record in caplog.records)} == removed
    assert get_request(dicom_ctx, ADMIN, ready_id).status == "ready"


@pytest.mark.charter("CH-8.2", negative=True)
@pytest.mark.parametrize("when", ["mid_case", "before_finish"])
def test_an_old_producer_with_images_taken_over_is_refused_and_leaves_no_file(dicom_ctx, worker, clock, tmp_path,
                                                                              monkeypatch, when):
    """The producer of attempt 1 hangs (mid-case, or with its zip renamed and about to be recorded) past the
    stale limit; the worker takes over and produces the export (attempt 2); the old producer then goes on: its
    writes are refused (Conflict), its file is gone, and the request ends READY with the new producer's file."""
    scheduler, research = worker
    dicom = research.parent / "dicom"
    _case_id, accession = demo_case(dicom_ctx, "QU")
    original = _identifying_file(tmp_path / "in", accession, generate_uid(), generate_uid())
    assert ingest_file(dicom_ctx, original, "ch-brest", "dicom", storage=dicom, calling_ae="CT_BREST").status == \
        "stored"
    request_id = create_request(dicom_ctx, RESEARCHER, spec(fields=("requested_at",)))
    decide(dicom_ctx, ADMIN, request_id, True)
    old = start_production(dicom_ctx, request_id)
    taken: list[str] = []
    real_deidentify, real_finish = research_export._deidentify, research_export.finish_production

    def take_over() -> None:
        if not taken:
            taken.append(when)
            clock.advance(seconds=STALE_PRODUCTION.total_seconds() + 60)
            scheduler.restart_research_exports()
            assert get_request(dicom_ctx, ADMIN, request_id).status == "ready"

    def deidentify(*args, **kwargs):
        partials = [path.name for path in research.glob(".*.part")]
        assert partials and all(re.fullmatch(rf"\.{request_id}-[0-9a-f]{{32}}\.zip\.part", n) for n in partials)
        if when == "mid_case":
            take_over()
        return real_deidentify(*args, **kwargs)

    def finish(*args, **kwargs):
        if when == "before_finish":
            assert list(research.glob(f"{request_id}-*.zip"))  # the old producer's zip, renamed
            assert not list(research.glob(".*.part"))
            take_over()
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(research_export, "_deidentify", deidentify)
    monkeypatch.setattr(research_export, "finish_production", finish)
    with pytest.raises(Conflict, match="reprise"):
        produce_claimed(dicom_ctx, old, dicom, research)
    assert taken == [when]
    view = get_request(dicom_ctx, ADMIN, request_id)
    assert view.status == "ready" and view.attempt == 2 and view.error is None
    assert view.manifest["image_count"] == 1
    name = _file_name(dicom_ctx, request_id)
    assert [path.name for path in research.iterdir()] == [name]
    with zipfile.ZipFile(research / name) as archive:
        assert len([member for member in archive.namelist() if member.endswith(".dcm")]) == 1
