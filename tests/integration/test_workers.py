"""Two `telerad worker` processes on one database fire every due timer exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.ports import SystemClock
from engine.services.definitions import deploy_library
from engine.services.instances import start_instance
from engine.services.keyring import KeyRing
from engine.store import audit
from engine.store.models import AuditEvent, EscalationSetting, ProcessInstance, Timer
from forms import default_registry
from web.cli.demo_data import _actor, create_demo, demo_request
from web.config import PROJECT_ROOT

CASES = 12


@pytest.mark.charter("CH-3.3")
def test_two_workers_fire_each_escalation_exactly_once(make_ctx, database_url, tmp_path):
    ctx = make_ctx(operations=None, forms=default_registry(), escalation=None, clock=SystemClock())
    with ctx.write() as session:  # a one-second tier-1 delay (below what the admin page accepts) for the test
        session.add(EscalationSetting(name="accept_tier1", duration="PT1S", updated_at=datetime.now(UTC),
                                      updated_by="test"))
        session.commit()
    deploy_library(ctx, Actor("designer"), PROJECT_ROOT / "workflows" / "bpmn")
    create_demo(ctx)
    for _ in range(CASES):
        start_instance(ctx, _actor("dr.martin"), "telediagnosis", {}, site_id="ch-brest", first_task=demo_request())
    with ctx.read() as session:
        waiting = set(session.execute(select(Timer.id).where(Timer.setting == "accept_tier1")).scalars())
    assert len(waiting) == CASES + 1  # the demo's first case waits at tier 1 too
    time.sleep(1.2)  # real time: the workers run on the system clock

    keys = tmp_path / "keys.json"
    KeyRing.development().save(keys)  # the ring of this test's own context: one audit chain, one key
    env = {**os.environ, "TELERAD_DATABASE_URL": database_url, "TELERAD_INSTANCE_PATH": str(tmp_path / "instance"),
           "TELERAD_KEYS_FILE": str(keys),
           "TELERAD_SCHEDULER_INTERVAL": "0.2", "TELERAD_LOG_LEVEL": "WARNING"}
    telerad = str(Path(sys.executable).with_name("telerad"))
    workers = [subprocess.Popen([telerad, "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
               for _ in range(2)]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with ctx.read() as session:
                fired = session.execute(select(AuditEvent.detail).where(AuditEvent.action == "timer.fired")).all()
            if len(fired) >= len(waiting):
                break
            time.sleep(0.2)
        time.sleep(1.0)  # let both workers tick a few more times: nothing may fire twice
    finally:
        for worker in workers:
            worker.terminate()
        outputs = [w.communicate(timeout=30)[0].decode(errors="replace") for w in workers]
    with ctx.read() as session:
        details = [json.loads(d) for d in session.execute(
            select(AuditEvent.detail).where(AuditEvent.action == "timer.fired")).scalars()]
        failed = session.execute(select(ProcessInstance.id).where(ProcessInstance.status == "failed")).all()
        problems = audit.verify(session)[1]
    counts = Counter(d["task_id"] for d in details)
    assert set(counts) == waiting, outputs
    assert max(counts.values()) == 1, counts
    assert failed == [] and problems == []
    assert all(w.returncode is not None for w in workers)
