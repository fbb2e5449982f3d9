"""Worklist at scale: the inbox and the case search with 100,000 cases (mostly finished) and 5,000 open tasks.

Not a test. Run from the project root:

    .venv/bin/python benchmarks/worklist.py [--cases 100000] [--open-tasks 5000] [--json] [--plans]
    TELERAD_DATABASE_URL=postgresql://user@127.0.0.1/postgres .venv/bin/python benchmarks/worklist.py --json

On a fresh SQLite file (and on a new database of the TELERAD_DATABASE_URL server when set, dropped afterwards)
it bulk-inserts cases, their task history and the open tasks, then times the calls the pages and the API make
(`engine.services.tasks.list_tasks` for the inbox, `engine.services.cases.list_cases` for the case list and its
search), median of `--repeat` runs each, and prints each statement's query plan (EXPLAIN QUERY PLAN on SQLite,
EXPLAIN on PostgreSQL) with whether an index is used.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from http_tasks import DIAGRAM, fresh_database  # noqa: E402
from sqlalchemy import event, insert, text  # noqa: E402

from engine.domain.actors import Actor  # noqa: E402
from engine.runtime import bundles_from_library  # noqa: E402
from engine.services.bootstrap import build_context  # noqa: E402
from engine.services.cases import list_cases  # noqa: E402
from engine.services.context import EngineContext  # noqa: E402
from engine.services.definitions import deploy_definition  # noqa: E402
from engine.services.tasks import list_tasks  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402
from engine.store.models import ProcessInstance, Task, TaskCandidate, table_of  # noqa: E402

SITES = 200
RADIOLOGISTS = 60
NAMES = ("MARTIN", "BERNARD", "LE GALL", "KERMARREC", "LE BIHAN", "GUILLOU", "MORVAN", "QUERE", "TANGUY", "PRIGENT",
         "LE ROUX", "CORRE", "HENAFF", "CADIOU", "JEZEQUEL", "PERON", "SALAUN", "MADEC", "NEDELEC", "ABGRALL")
SPECS = ("request", "accept_case", "validate_indication", "choose_protocol", "acquire_images", "interpret")
TARGET_MS = 50
BATCH = 5000


def generate(ctx: EngineContext, cases: int, open_tasks: int, seed: int = 8) -> dict[str, Any]:
    """Bulk rows: `cases` cases (one running per open task, the others completed), two finished tasks of history
    per finished case, and `open_tasks` open tasks: a third offered to three radiologists each (restricted), a
    third open to the radiologist role of their site, a third for the requesters of their site."""
    rng = random.Random(seed)
    definition_id = deploy_definition(ctx, Actor("bench"), bundles_from_library(
        {DIAGRAM.name: DIAGRAM.read_text(encoding="utf-8")})[0]).definition_id
    now = datetime.now(UTC)
    instance, task, candidate = table_of(ProcessInstance), table_of(Task), table_of(TaskCandidate)
    t0 = time.perf_counter()
    rows: dict[str, int] = {"cases": 0, "tasks": 0, "candidates": 0}
    with ctx.engine.begin() as connection:
        for start in range(0, cases, BATCH):
            batch_cases, batch_tasks, batch_candidates = [], [], []
            for n in range(start, min(start + BATCH, cases)):
                running = n >= cases - open_tasks
                started = now - timedelta(minutes=(cases - n) * 3)
                site = f"site-{n % SITES:03d}"
                batch_cases.append({
                    "id": n + 1, "definition_id": definition_id, "process_id": "telediagnosis",
                    "status": "running" if running else "completed", "site_id": site, "state": "", "version": 3,
                    "patient_name": f"{rng.choice(NAMES)} {rng.choice(('Yann', 'Anne', 'Marie', 'Loic'))}",
                    "patient_birth_date": "1950-01-01", "urgency": rng.choice(("vital", "urgent", "scheduled")),
                    "accession_number": f"ACC-{n + 1:07d}", "summary": "Scanner cérébral", "audit_seq": 3,
                    "audit_hash": "0" * 64, "started_by": "bench", "started_at": started,
                    "updated_at": started + timedelta(minutes=2), "ended_at": None if running else started,
                })
                for k in range(2):  # the request, then a task a radiologist claimed and completed
                    who = f"rad{rng.randrange(RADIOLOGISTS):02d}" if k else f"req.{site}"
                    batch_tasks.append(_task(f"{n:08d}-done-{k}", n + 1, SPECS[k], site, "completed", started,
                                             ended_by=who, assignee=who if k else None))
                if running:
                    kind = n % 3
                    task_id = f"{n:08d}-open"
                    if kind == 0:
                        batch_tasks.append(_task(task_id, n + 1, "accept_case", site, "open", started,
                                                 lane="radiologist", restricted=True))
                        offered = rng.sample(range(RADIOLOGISTS), 3)
                        batch_candidates += [{"task_id": task_id, "user_id": f"rad{r:02d}"} for r in offered]
                    elif kind == 1:
                        batch_tasks.append(_task(task_id, n + 1, "interpret", site, "open", started,
                                                 lane="radiologist"))
                    else:
                        batch_tasks.append(_task(task_id, n + 1, "acquire_images", site, "open", started,
                                                 lane="technologist"))
            connection.execute(insert(instance), batch_cases)
            connection.execute(insert(task), batch_tasks)
            if batch_candidates:
                connection.execute(insert(candidate), batch_candidates)
            rows["cases"] += len(batch_cases)
            rows["tasks"] += len(batch_tasks)
            rows["candidates"] += len(batch_candidates)
    with ctx.engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    return {**rows, "generate_s": round(time.perf_counter() - t0, 1)}


def _task(task_id: str, instance_id: int, spec: str, site: str, status: str, at: datetime, *,
          lane: str = "requester", restricted: bool = False, ended_by: str | None = None,
          assignee: str | None = None) -> dict[str, Any]:
    done = status != "open"
    return {"id": task_id, "instance_id": instance_id, "spec_name": spec, "title": spec, "lane": lane,
            "form_key": None, "site_id": site, "status": status, "restricted": restricted, "assignee": assignee,
            "urgency": instance_id % 3 + 1, "due_at": at + timedelta(hours=1), "created_at": at,
            "ended_at": at if done else None, "ended_by": ended_by if done else None}


class Statements:
    """The statements (and parameters) a call sends, captured to be explained afterwards."""

    def __init__(self, ctx: EngineContext):
        self.captured: list[tuple[str, Any]] = []
        self.on = False
        event.listen(ctx.engine, "before_cursor_execute", self._capture)

    def _capture(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if self.on and statement.lstrip().upper().startswith("SELECT"):
            self.captured.append((statement, parameters))


def plans(ctx: EngineContext, captured: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    sqlite = ctx.engine.dialect.name == "sqlite"
    result = []
    with ctx.engine.connect() as connection:
        for statement, parameters in captured:
            prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
            rows = connection.exec_driver_sql(prefix + statement, parameters).all()
            lines = [str(row[-1]) if sqlite else str(row[0]) for row in rows]
            uses_index = any(("USING" in line and "INDEX" in line) if sqlite else ("Index" in line) for line in lines)
            full_scans = [line for line in lines if (line.startswith("SCAN") and "USING" not in line) if sqlite] + \
                [line for line in lines if "Seq Scan" in line and not sqlite]
            result.append({"sql": " ".join(statement.split())[:160], "plan": lines, "uses_index": uses_index,
                           "full_scans": full_scans})
    return result


def timed(ctx: EngineContext, statements: Statements, call: Callable[[], Any], repeat: int) -> dict[str, Any]:
    call()  # warm: statement caches, pool
    statements.captured.clear()
    statements.on = True
    found = call()
    statements.on = False
    captured = list(statements.captured)
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        samples.append(1000 * (time.perf_counter() - t0))
    return {"median_ms": round(statistics.median(samples), 2), "max_ms": round(max(samples), 2),
            "rows": len(found), "plans": plans(ctx, captured)}


def measure(url: str, cases: int, open_tasks: int, repeat: int) -> dict[str, Any]:
    upgrade(url)
    ctx = build_context(url)
    try:
        report: dict[str, Any] = {"dialect": ctx.engine.dialect.name, **generate(ctx, cases, open_tasks)}
        statements = Statements(ctx)
        radiologist = Actor("rad07", frozenset({"radiologist"}), frozenset())
        requester = Actor("req.site-042", frozenset({"requester"}), frozenset({"site-042"}))
        technologist = Actor("tech", frozenset({"technologist"}), frozenset({f"site-{n:03d}" for n in range(20)}))
        calls = {
            "inbox_radiologist": lambda: list_tasks(ctx, radiologist),
            "inbox_technologist_20_sites": lambda: list_tasks(ctx, technologist),
            "case_list_requester": lambda: list_cases(ctx, requester),
            "case_search_requester": lambda: list_cases(ctx, requester, query="KERMARREC"),
            "case_search_radiologist": lambda: list_cases(ctx, radiologist, query="LE GALL"),
            "case_search_accession_radiologist": lambda: list_cases(ctx, radiologist, query="ACC-0099990"),
            "case_list_radiologist_running": lambda: list_cases(ctx, radiologist, status="running"),
        }
        for name, call in calls.items():
            report[name] = timed(ctx, statements, call, repeat)
        slowest = max(v["median_ms"] for v in report.values() if isinstance(v, dict))
        report["slowest_median_ms"] = slowest
        report["target_met"] = slowest < TARGET_MS
        return report
    finally:
        ctx.engine.dispose()


def flat(report: dict[str, Any]) -> dict[str, Any]:
    """Flat keys for the main database: `<call>_median_ms` and `<call>_uses_index`."""
    keys: dict[str, Any] = {}
    for name, value in report.items():
        if isinstance(value, dict) and "median_ms" in value:
            keys[f"{name}_median_ms"] = value["median_ms"]
            keys[f"{name}_uses_index"] = all(p["uses_index"] and not p["full_scans"] for p in value["plans"])
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--open-tasks", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--plans", action="store_true", help="print the query plans (always in the JSON)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report: dict[str, Any] = {"cases": args.cases, "open_tasks": args.open_tasks, "target_ms": TARGET_MS}
    with tempfile.TemporaryDirectory(prefix="telerad-worklist-") as tmp:
        sqlite = measure(f"sqlite:///{Path(tmp) / 'worklist.db'}", args.cases, args.open_tasks, args.repeat)
        report.update(flat(sqlite))
        report["target_met"] = sqlite["target_met"]
        report["sqlite"] = sqlite
        if "TELERAD_DATABASE_URL" in __import__("os").environ:
            with fresh_database(Path(tmp)) as url:
                postgres = measure(url, args.cases, args.open_tasks, args.repeat)
            report["postgresql"] = postgres
            report["postgresql_flat"] = flat(postgres)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return
    for database in ("sqlite", "postgresql"):
        if database not in report:
            continue
        print(f"== {database}: {report['cases']} cases, {report['open_tasks']} open tasks")
        for name, value in report[database].items():
            if isinstance(value, dict):
                indexed = all(p["uses_index"] and not p["full_scans"] for p in value["plans"])
                print(f"  {name:<38} {value['median_ms']:>8.2f} ms  rows {value['rows']:>4}  "
                      f"index {'yes' if indexed else 'NO'}")
                if args.plans:
                    for plan in value["plans"]:
                        print("      " + "\n      ".join(plan["plan"]))


if __name__ == "__main__":
    main()
