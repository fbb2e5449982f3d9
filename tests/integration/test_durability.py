"""A process killed between the engine step and the commit leaves the last committed state intact."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from engine.services.instances import start_instance
from engine.services.tasks import complete_task
from engine.store import audit
from engine.store.models import AuditEvent, ProcessInstance, Task, Timer
from tests.integration.test_engine_services import RADIOLOGIST, REQUESTER, SUBMIT, only_task

ROOT = Path(__file__).resolve().parents[2]


def counts(ctx):
    with ctx.read() as session:
        instance = session.execute(select(ProcessInstance)).scalar_one()
        return {
            "version": instance.version,
            "state": instance.state,
            "open": session.execute(select(Task.spec_name).where(Task.status == "open")).scalars().all(),
            "timers": session.execute(select(func.count()).select_from(Timer)).scalar(),
            "audit": session.execute(select(func.count()).select_from(AuditEvent)).scalar(),
        }


def test_sigkill_before_commit_keeps_last_committed_state_and_case_resumes(deployed):
    ctx = deployed
    start_instance(ctx, REQUESTER, "engine_flow", {}, site_id="site-a")
    task = only_task(ctx, REQUESTER)
    before = counts(ctx)

    child = subprocess.run(
        [sys.executable, "-m", "tests.integration.crash_child", str(ctx.engine.url.render_as_string(False)), task.id],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert "about to commit" in child.stdout and "committed" not in child.stdout.replace("about to commit", "")

    assert counts(ctx) == before  # nothing half-written: same state blob, tasks, timers and audit
    with ctx.read() as session:
        assert audit.verify(session)[1] == []
    ctx.live_cache.clear()  # behave like a freshly started server
    complete_task(ctx, REQUESTER, task.id, dict(SUBMIT))
    assert only_task(ctx, RADIOLOGIST).spec_name == "review"
    after = counts(ctx)
    assert after["version"] == before["version"] + 1 and after["timers"] == 1
