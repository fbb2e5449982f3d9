"""Engine throughput: N cases of a 10-user-task diagram through engine.services, against raw SpiffWorkflow.

Not a test. Run from the project root:

    .venv/bin/python benchmarks/engine_throughput.py [--cases 50] [--json] [--profile]

It measures, on a fresh migrated SQLite file (and also on TELERAD_DATABASE_URL when that is set):

- the engine: ``start_instance`` then ten ``complete_task`` calls per case, with the in-process
  LiveCache as in production (``ms_per_step``) and with that cache emptied before every step, so that
  each step also deserializes the state from the database (``ms_per_step_cold``);
- baseline "memory": raw SpiffWorkflow, one workflow object per case kept in memory;
- baseline "roundtrip": raw SpiffWorkflow, deserializing the spec-less JSON state before each step and
  serializing it back after it (engine.runtime.serializer.WorkflowCodec), no database at all.

Both baselines use the project's safe script engine (engine.runtime.Runtime().script_engine), as the
engine does, so that expression evaluation costs the same on both sides.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from SpiffWorkflow.bpmn import BpmnWorkflow  # noqa: E402
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser  # noqa: E402
from SpiffWorkflow.task import TaskState  # noqa: E402
from sqlalchemy import select  # noqa: E402

import forms  # noqa: E402
from engine.domain.actors import Actor  # noqa: E402
from engine.runtime import Bundle, Runtime, bundles_from_library  # noqa: E402
from engine.runtime.definitions import ParsedDefinition  # noqa: E402
from engine.runtime.serializer import WorkflowCodec  # noqa: E402
from engine.services.bootstrap import build_context  # noqa: E402
from engine.services.context import EngineContext  # noqa: E402
from engine.services.definitions import deploy_definition  # noqa: E402
from engine.services.instances import start_instance  # noqa: E402
from engine.services.tasks import complete_task, list_tasks  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402
from engine.store.models import ProcessInstance, Task  # noqa: E402

PROCESS_ID = "bench_ten_tasks"
DIAGRAM = ROOT / "tests" / "data" / "bpmn" / "bench_ten_tasks.bpmn"
FORMS_DIR = ROOT / "tests" / "data" / "forms"
STEPS_PER_CASE = 10
STEP_DATA = {"score": 1, "note": "ok"}
ACTOR = Actor("bench", frozenset({"requester"}), frozenset())
WARMUP_CASES = 1


# --------------------------------------------------------------------------------------------- engine


@dataclass
class EngineResult:
    start_s: float = 0.0
    complete_s: float = 0.0
    lookup_s: float = 0.0
    wall_s: float = 0.0
    steps: int = 0
    cold_complete_s: float = 0.0
    cold_steps: int = 0

    def as_dict(self, cases: int) -> dict[str, Any]:
        return {
            "cases_per_s": round(cases / (self.start_s + self.complete_s), 2),
            "ms_per_step": round(1000 * self.complete_s / self.steps, 3),
            "ms_per_start": round(1000 * self.start_s / cases, 3),
            "ms_per_step_cold": round(1000 * self.cold_complete_s / self.cold_steps, 3),
            "lookup_ms_per_step": round(1000 * self.lookup_s / self.steps, 3),
            "wall_s": round(self.wall_s, 3),
            "steps": self.steps,
        }


def open_task_id(ctx: EngineContext, instance_id: int) -> str | None:
    """The benchmark's own look-up of a case's next task (not part of the measured engine time)."""
    with ctx.read() as session:
        ids = session.execute(
            select(Task.id).where(Task.instance_id == instance_id, Task.status == "open")
        ).scalars().all()
    if len(ids) > 1:
        raise RuntimeError(f"case {instance_id}: {len(ids)} open tasks, expected one")
    return ids[0] if ids else None


def check_case_finished(ctx: EngineContext, instance_id: int, steps: int) -> None:
    with ctx.read() as session:
        status = session.execute(
            select(ProcessInstance.status).where(ProcessInstance.id == instance_id)
        ).scalar_one()
    if steps != STEPS_PER_CASE or status != "completed":
        raise RuntimeError(f"case {instance_id}: {steps} steps, status {status!r}; "
                           f"expected {STEPS_PER_CASE} steps and 'completed'")


def run_engine_cases(ctx: EngineContext, cases: int, result: EngineResult, *, cold: bool) -> None:
    """Start and finish ``cases`` cases one after the other; add the measured times to ``result``.

    Warm: as in production, each step finds the workflow in the LiveCache (no deserialization).
    Cold: the cache is emptied before each step, which then loads the state from the database; only the
    step time is recorded (``cold_complete_s``).
    """
    perf = time.perf_counter
    wall0 = perf()
    for _ in range(cases):
        t0 = perf()
        instance_id = start_instance(ctx, ACTOR, PROCESS_ID, {}, site_id=None)
        start_s = perf() - t0
        lookup_s = complete_s = 0.0
        steps = 0
        while True:
            t0 = perf()
            task_id = open_task_id(ctx, instance_id)
            lookup_s += perf() - t0
            if task_id is None:
                break
            if cold:
                ctx.live_cache.clear()
            t0 = perf()
            complete_task(ctx, ACTOR, task_id, dict(STEP_DATA))
            complete_s += perf() - t0
            steps += 1
        check_case_finished(ctx, instance_id, steps)
        if cold:
            result.cold_complete_s += complete_s
            result.cold_steps += steps
        else:
            result.start_s += start_s
            result.lookup_s += lookup_s
            result.complete_s += complete_s
            result.steps += steps
    if not cold:
        result.wall_s += perf() - wall0


def warm_up(ctx: EngineContext) -> None:
    """Spec cache, form validators, SQLAlchemy statement caches, the pool; checks the inbox sees the case."""
    instance_id = start_instance(ctx, ACTOR, PROCESS_ID, {}, site_id=None)
    inbox = [t for t in list_tasks(ctx, ACTOR) if t.instance_id == instance_id]
    if len(inbox) != 1 or inbox[0].form_key != "bench_step.schema.json" or inbox[0].lane != "requester":
        raise RuntimeError(f"warm-up case {instance_id}: unexpected inbox {inbox!r}")
    steps = 0
    while (task_id := open_task_id(ctx, instance_id)) is not None:
        complete_task(ctx, ACTOR, task_id, dict(STEP_DATA))
        steps += 1
    check_case_finished(ctx, instance_id, steps)
    run_engine_cases(ctx, WARMUP_CASES, EngineResult(), cold=True)


def open_database(url: str, bundle: Bundle) -> EngineContext:
    upgrade(url)
    ctx = build_context(url, forms=forms.FormRegistry([FORMS_DIR]))
    deploy_definition(ctx, Actor("bench"), bundle)
    warm_up(ctx)
    return ctx


def profile_engine(url: str, bundle: Bundle, cases: int, label: str) -> None:
    """Run the warm-cache engine workload again under cProfile (separately, so that the reported numbers
    are not inflated by it) and print the top 25 cumulative entries to stderr, then the top 25 of the
    project's and SpiffWorkflow's own functions with their share of the profiled time."""
    ctx = open_database(url, bundle)
    profiler = cProfile.Profile()
    try:
        profiler.enable()
        run_engine_cases(ctx, cases, EngineResult(), cold=False)
        profiler.disable()
    finally:
        ctx.engine.dispose()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(25)
    print(f"\n=== cProfile, engine on {label}: {cases} cases, warm LiveCache, top 25 cumulative ===",
          file=sys.stderr)
    print(out.getvalue(), file=sys.stderr)
    total = stats.total_tt  # type: ignore[attr-defined]
    own = []
    for (filename, line, name), (_cc, calls, _tt, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        path = Path(filename)
        if ROOT / "engine" in path.parents or ROOT / "forms" in path.parents or "SpiffWorkflow" in path.parts:
            where = str(path.relative_to(ROOT)) if ROOT in path.parents and ".venv" not in path.parts else \
                "/".join(path.parts[path.parts.index("SpiffWorkflow"):])
            own.append((cumulative, calls, f"{where}:{line}({name})"))
    print(f"=== engine/, forms/ and SpiffWorkflow functions by cumulative time ({total:.2f} s profiled) ===",
          file=sys.stderr)
    print(f"{'cum s':>8} {'share':>6} {'calls':>7}  function", file=sys.stderr)
    for cumulative, calls, where in sorted(own, reverse=True)[:25]:
        print(f"{cumulative:8.3f} {100 * cumulative / total:5.1f}% {calls:7d}  {where}", file=sys.stderr)


# ------------------------------------------------------------------------------------------ baselines


def parse_raw(text: str) -> tuple[Any, dict[str, Any]]:
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(text.encode("utf-8"), filename=DIAGRAM.name)
    return parser.get_spec(PROCESS_ID), parser.get_subprocess_specs(PROCESS_ID)


def ready_user_task(workflow: BpmnWorkflow) -> Any | None:
    ready = workflow.get_tasks(state=TaskState.READY, manual=True)
    if len(ready) > 1:
        raise RuntimeError(f"{len(ready)} ready user tasks, expected one")
    return ready[0] if ready else None


class Baselines:
    """Raw SpiffWorkflow on the same diagram, parsed once, with the same (safe) script engine."""

    def __init__(self, bundle: Bundle):
        self.spec, self.subprocess_specs = parse_raw(bundle.files[DIAGRAM.name])
        self.script_engine = Runtime().script_engine
        self.definition = ParsedDefinition(bundle, self.spec, self.subprocess_specs, PROCESS_ID)
        self.codec = WorkflowCodec(fast_json=False)  # SpiffWorkflow's own serializer path (json module)
        self.memory_s = self.roundtrip_s = 0.0
        self.steps = 0
        self.memory(WARMUP_CASES)
        self.roundtrip(WARMUP_CASES)

    def new_workflow(self) -> BpmnWorkflow:
        workflow = BpmnWorkflow(self.spec, self.subprocess_specs, script_engine=self.script_engine)
        workflow.do_engine_steps()
        return workflow

    def memory(self, cases: int) -> float:
        """Seconds in set_data + run + do_engine_steps over every step of ``cases`` cases."""
        perf = time.perf_counter
        total = 0.0
        for _ in range(cases):
            workflow = self.new_workflow()
            steps = 0
            while (task := ready_user_task(workflow)) is not None:
                t0 = perf()
                task.set_data(**STEP_DATA)
                task.run()
                workflow.do_engine_steps()
                total += perf() - t0
                steps += 1
            _check_baseline("memory", steps, workflow)
        return total

    def roundtrip(self, cases: int) -> float:
        """Seconds in loads + set_data + run + do_engine_steps + dumps over every step (no database)."""
        perf = time.perf_counter
        total = 0.0
        for _ in range(cases):
            workflow = self.new_workflow()
            state = self.codec.dumps(workflow)
            next_task = ready_user_task(workflow)
            steps = 0
            while next_task is not None:
                task_id = next_task.id
                t0 = perf()
                workflow = self.codec.loads(state, self.definition, self.script_engine)  # safe engine put back
                task = workflow.get_task_from_id(task_id)
                task.set_data(**STEP_DATA)
                task.run()
                workflow.do_engine_steps()
                state = self.codec.dumps(workflow)
                total += perf() - t0
                steps += 1
                next_task = ready_user_task(workflow)  # the engine reads this from its task table
            _check_baseline("roundtrip", steps, workflow)
        return total

    def run(self, cases: int) -> None:
        self.memory_s += self.memory(cases)
        self.roundtrip_s += self.roundtrip(cases)
        self.steps += cases * STEPS_PER_CASE

    def as_dict(self) -> dict[str, float]:
        return {"baseline_memory_ms_per_step": round(1000 * self.memory_s / self.steps, 3),
                "baseline_roundtrip_ms_per_step": round(1000 * self.roundtrip_s / self.steps, 3)}


def _check_baseline(name: str, steps: int, workflow: BpmnWorkflow) -> None:
    if steps != STEPS_PER_CASE or not workflow.completed:
        raise RuntimeError(f"{name} baseline: {steps} steps, completed={workflow.completed}")


# ---------------------------------------------------------------------------------------------- main


def load_bundle() -> Bundle:
    bundles = bundles_from_library({DIAGRAM.name: DIAGRAM.read_text(encoding="utf-8")})
    if [b.process_id for b in bundles] != [PROCESS_ID]:
        raise RuntimeError(f"expected one bundle for {PROCESS_ID}, got {[b.process_id for b in bundles]}")
    return bundles[0]


def split(cases: int, rounds: int) -> list[int]:
    rounds = max(1, min(rounds, cases))
    return [cases // rounds + (1 if i < cases % rounds else 0) for i in range(rounds)]


def measure(cases: int, rounds: int, databases: dict[str, str], bundle: Bundle) -> dict[str, Any]:
    """Interleave baselines and engine runs round by round, so that a slow spell of a shared machine
    weighs on every measurement alike; totals are summed over the rounds."""
    baselines = Baselines(bundle)
    contexts = {name: open_database(url, bundle) for name, url in databases.items()}
    results = {name: EngineResult() for name in contexts}
    by_round: dict[str, list[float]] = {name: [] for name in contexts}
    try:
        for n in split(cases, rounds):
            gc.collect()
            roundtrip_s = baselines.roundtrip_s
            baselines.run(n)
            roundtrip_ms = 1000 * (baselines.roundtrip_s - roundtrip_s) / (n * STEPS_PER_CASE)
            for name, ctx in contexts.items():
                result = results[name]
                complete_s, steps = result.complete_s, result.steps
                gc.collect()
                run_engine_cases(ctx, n, result, cold=False)
                gc.collect()
                run_engine_cases(ctx, n, result, cold=True)
                step_ms = 1000 * (result.complete_s - complete_s) / (result.steps - steps)
                by_round[name].append(round(step_ms / roundtrip_ms, 2))
    finally:
        for ctx in contexts.values():
            ctx.engine.dispose()
    report: dict[str, Any] = {"baselines": baselines.as_dict()}
    for name, ctx in contexts.items():
        report[name] = {"dialect": ctx.engine.dialect.name, **results[name].as_dict(cases),
                        "ratio_vs_roundtrip_by_round": by_round[name]}
    return report


def ratios(engine: dict[str, Any], baselines: dict[str, float]) -> dict[str, float]:
    roundtrip = baselines["baseline_roundtrip_ms_per_step"]
    return {"ratio_vs_roundtrip": round(engine["ms_per_step"] / roundtrip, 2),
            "ratio_cold_vs_roundtrip": round(engine["ms_per_step_cold"] / roundtrip, 2)}


def run(cases: int, rounds: int, profile: bool) -> dict[str, Any]:
    bundle = load_bundle()
    other_url = os.environ.get("TELERAD_DATABASE_URL")
    with tempfile.TemporaryDirectory(prefix="telerad-bench-") as tmp:
        databases = {"sqlite": f"sqlite:///{Path(tmp) / 'bench.db'}"}
        if other_url:
            databases["other"] = other_url
        measured = measure(cases, rounds, databases, bundle)
        if profile:
            profile_engine(f"sqlite:///{Path(tmp) / 'profile.db'}", bundle, cases, "sqlite")
            if other_url:
                profile_engine(other_url, bundle, cases, measured["other"]["dialect"])
    baselines = measured["baselines"]
    sqlite = measured["sqlite"]
    del sqlite["dialect"]
    report: dict[str, Any] = {
        "database": "sqlite",
        "cases": cases,
        "rounds": len(split(cases, rounds)),
        **sqlite,
        **baselines,
        **ratios(sqlite, baselines),
        "script_engine": "safe (engine.runtime.Runtime().script_engine)",
        "versions": {"python": platform.python_version(), "SpiffWorkflow": version("SpiffWorkflow"),
                     "SQLAlchemy": version("SQLAlchemy")},
    }
    if "other" in measured:
        other = measured["other"]
        dialect = other.pop("dialect")
        other.update(ratios(other, baselines))
        report[dialect if dialect != "sqlite" else "other_sqlite"] = other
    return report


def print_table(report: dict[str, Any]) -> None:
    columns = {"sqlite": report}
    for key, value in report.items():
        if isinstance(value, dict) and "ms_per_step" in value:
            columns[key] = value
    rows = [
        ("cases per second (start + 10 steps)", "cases_per_s"),
        ("engine ms per step (warm LiveCache)", "ms_per_step"),
        ("engine ms per step (cold: load from DB)", "ms_per_step_cold"),
        ("engine ms per start_instance", "ms_per_start"),
        ("benchmark's task look-up ms per step", "lookup_ms_per_step"),
        ("ratio warm / roundtrip baseline", "ratio_vs_roundtrip"),
        ("ratio cold / roundtrip baseline", "ratio_cold_vs_roundtrip"),
    ]
    print(f"Engine throughput: {report['cases']} cases x {STEPS_PER_CASE} user tasks "
          f"({report['steps']} timed steps per database, {report['rounds']} interleaved rounds), "
          f"{report['script_engine']} script engine")
    width = max(len(label) for label, _ in rows) + 2
    print("".ljust(width) + "".join(name.rjust(14) for name in columns))
    for label, key in rows:
        print(label.ljust(width) + "".join(f"{col.get(key, '-')!s:>14}" for col in columns.values()))
    for name, col in columns.items():
        print(f"{name}: warm ratio by round {col['ratio_vs_roundtrip_by_round']}")
    print()
    label_width = width + 14
    print("baseline ms per step, raw SpiffWorkflow in memory".ljust(label_width)
          + f"{report['baseline_memory_ms_per_step']:>8}")
    print("baseline ms per step, JSON round trip, no DB".ljust(label_width)
          + f"{report['baseline_roundtrip_ms_per_step']:>8}")
    versions = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    print(f"\n({versions})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", type=int, default=50, help="cases per measurement (default 50)")
    parser.add_argument("--rounds", type=int, default=25,
                        help="interleaved rounds the cases are split into (default 25: two cases per round)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--profile", action="store_true",
                        help="also run the engine workload under cProfile (separately) and print it to stderr")
    args = parser.parse_args(argv)
    if args.cases < 1 or args.rounds < 1:
        parser.error("--cases and --rounds must be at least 1")
    report = run(args.cases, args.rounds, args.profile)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
