"""The worker's research export jobs (CH-8.2) on SQLite and PostgreSQL: exports not downloaded in time purged
hourly without anyone opening a page; a production interrupted by a process stop (RUNNING, heartbeat older than
STALE_PRODUCTION) claimed by one worker only, its partial file removed and the export produced again (READY); a
production still beating left alone; the producer whose production was taken over can no longer write."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.domain.research import EXPORT_KEPT_DAYS, STALE_PRODUCTION
from engine.errors import Conflict
from engine.services.research import create_request, decide, get_request
from engine.services.research_production import (
    claim_stale_production,
    fail_production,
    finish_production,
    set_progress,
    start_production,
)
from engine.store.models import AuditEvent
from engine.store.research_models import ResearchRequest
from integrations.dicom.research_export import produce_export
from tests.integration import dicom_support
from tests.integration.test_research_exports import ADMIN, RESEARCHER, spec
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
        finish_production(dicom_ctx, request_id, 1, "b" * 32 + ".zip", "0" * 64, {})
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
