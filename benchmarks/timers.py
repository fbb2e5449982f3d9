"""Timer scheduler at scale: an idle tick among 100,000 waiting timers, and 1,000 due timers fired.

Not a test. Run from the project root:

    .venv/bin/python benchmarks/timers.py [--waiting 100000] [--due 1000] [--json]

On a fresh SQLite file (and on TELERAD_DATABASE_URL too when set; it writes into that database), it
starts `--due` real cases of the engine test diagram, each waiting on a boundary timer, then adds
synthetic waiting timers (far in the future) until `--waiting` timers wait in all. It measures:

- ``idle_tick_ms``: a scheduler tick (``fire_due_timers``) when nothing is due (median of 20 ticks);
  target < 50 ms on SQLite;
- ``fire_per_s``: the clock is moved past the real timers, then ticks run until all have fired;
- ``baseline_select_ms``: in the same run, the bare indexed query of due timers, for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select  # noqa: E402

from engine.domain.actors import Actor  # noqa: E402
from engine.ports import FakeClock  # noqa: E402
from engine.runtime import OperationRegistry  # noqa: E402
from engine.services.bootstrap import build_context  # noqa: E402
from engine.services.definitions import deploy_library  # noqa: E402
from engine.services.instances import start_instance  # noqa: E402
from engine.services.tasks import complete_task  # noqa: E402
from engine.services.timers import fire_due_timers  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402
from engine.store.models import Task, Timer, table_of  # noqa: E402
from forms import FormRegistry  # noqa: E402

REQUESTER = Actor("bench", frozenset({"requester", "radiologist"}), frozenset({"site"}))


def operations() -> OperationRegistry:
    registry = OperationRegistry()
    registry.register("test.priority", lambda urgency: {"level": 2})
    return registry


def run(url: str, waiting: int, due: int) -> dict[str, Any]:
    upgrade(url)
    clock = FakeClock()
    ctx = build_context(url, clock=clock, operations=operations(), escalation={"review": "PT1H"},
                        forms=FormRegistry([ROOT / "tests" / "data" / "forms"]))
    deploy_library(ctx, Actor("bench"), ROOT / "tests" / "data" / "bpmn")
    started = time.perf_counter()
    for number in range(due):
        case_id = start_instance(ctx, REQUESTER, "engine_flow", {}, site_id="site")
        with ctx.read() as session:
            task_id = session.execute(select(Task.id).where(Task.instance_id == case_id,
                                                            Task.status == "open")).scalar_one()
        complete_task(ctx, REQUESTER, task_id, {"accepted": True, "urgency": "urgent",
                                               "accession_number": f"B{number}"})
    setup_s = time.perf_counter() - started
    _add_synthetic_timers(ctx, waiting - due, clock)
    with ctx.read() as session:
        total = len(session.execute(select(Timer.id)).all())

    ticks = []
    for _ in range(20):
        begin = time.perf_counter()
        report = fire_due_timers(ctx)
        ticks.append((time.perf_counter() - begin) * 1000)
        assert report.fired == 0
    baseline = []
    for _ in range(20):
        begin = time.perf_counter()
        with ctx.read() as session:
            session.execute(select(Timer.instance_id).where(Timer.due_at < clock.now()).limit(200)).all()
        baseline.append((time.perf_counter() - begin) * 1000)

    clock.advance(hours=2)
    ctx.live_cache.clear()  # a worker that has not seen these cases yet
    fired, begin = 0, time.perf_counter()
    while fired < due:
        report = fire_due_timers(ctx)
        if report.fired == 0:
            break
        fired += report.fired
    fire_s = time.perf_counter() - begin
    ctx.engine.dispose()
    return {"waiting_timers": total, "due_timers": due, "fired": fired,
            "idle_tick_ms": round(statistics.median(ticks), 3), "idle_tick_p95_ms": round(sorted(ticks)[18], 3),
            "baseline_select_ms": round(statistics.median(baseline), 3),
            "fire_per_s": round(fired / fire_s, 1) if fire_s else None, "setup_s": round(setup_s, 1)}


def _add_synthetic_timers(ctx: Any, count: int, clock: FakeClock) -> None:
    """Waiting timers of other (imaginary) tasks of the same cases, due in the coming months."""
    with ctx.read() as session:
        instance_ids = [row[0] for row in session.execute(select(Timer.instance_id)).all()]
    now = clock.now()
    batch = []
    for number in range(count):
        batch.append({"id": str(uuid.uuid4()), "instance_id": instance_ids[number % len(instance_ids)],
                      "spec_name": "synthetic", "expression": '"P30D"', "setting": None, "armed_at": now,
                      "due_at": now + timedelta(days=30, minutes=number % 100_000)})
        if len(batch) == 5000:
            _flush(ctx, batch)
    if batch:
        _flush(ctx, batch)


def _flush(ctx: Any, batch: list[dict[str, Any]]) -> None:
    with ctx.write() as session:
        session.execute(insert(table_of(Timer)), batch)
        session.commit()
    batch.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiting", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = {"database": "sqlite", **run(f"sqlite:///{folder}/timers.db", args.waiting, args.due)}
    other = os.environ.get("TELERAD_DATABASE_URL")
    if other:
        result["postgresql" if other.startswith("postgres") else "other"] = run(other, args.waiting, args.due)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")


if __name__ == "__main__":
    main()
