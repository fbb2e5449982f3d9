"""Quality indicators at scale: `engine.services.indicators.compute_indicators` over 100,000 cases of one year.

Not a test. Run from the project root:

    .venv/bin/python benchmarks/indicators.py [--cases 100000] [--repeat 5] [--json]
    TELERAD_DATABASE_URL=postgresql://user@127.0.0.1/postgres .venv/bin/python benchmarks/indicators.py --json

On a fresh SQLite file (and on a new database of the TELERAD_DATABASE_URL server when set, dropped afterwards) it
bulk-inserts finished telediagnoses spread over the past year at 200 sites of 40 territories, with the task history
a real case leaves (about ten tasks each; detours for some: a question to the requester, an urgent finding
telephoned, an announcement, a refusal), the audit trail's timer events (acceptance timeouts, late reports) among
other events, and the on-call slots of the territories. It times the first call (which builds every case's facts,
engine.services.indicators_facts), then the indicators of the whole year, of one site, of one modality and of one
radiologist, median of `--repeat` runs each, against a baseline measured in the same run on the same tables (a
plain COUNT(*) of the year's cases joined to their tasks), and a call after 1 % of the cases were saved (their
facts rebuilt). Target: under 1 s for the whole year.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from http_tasks import fresh_database  # noqa: E402
from sqlalchemy import func, insert, select, text  # noqa: E402

import engine.store.directory_models  # noqa: E402,F401
import integrations.dicom.models  # noqa: E402,F401
import integrations.hl7.models  # noqa: E402,F401
from engine.services.bootstrap import build_context  # noqa: E402
from engine.services.context import EngineContext  # noqa: E402
from engine.services.indicators import IndicatorFilters, compute_indicators  # noqa: E402
from engine.store.directory_models import OnCallSlotRow, SiteRow, TerritoryRow, User, UserRole  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402
from engine.store.models import AuditEvent, ProcessDefinition, ProcessInstance, Task, table_of  # noqa: E402

SITES, TERRITORIES, RADIOLOGISTS = 200, 40, 60
TARGET_MS = 1000
BATCH = 2000
FRONT = ("accept_case", "inform_patient", "check_identity", "justify", "choose_protocol", "acquire_images")


def generate(ctx: EngineContext, cases: int, end: datetime, seed: int = 19) -> dict[str, Any]:
    rng = random.Random(seed)  # noqa: S311 - benchmark data
    instance, task, audit = table_of(ProcessInstance), table_of(Task), table_of(AuditEvent)
    t0 = time.perf_counter()
    counts = {"cases": 0, "tasks": 0, "audit_events": 0}
    with ctx.engine.begin() as connection:
        connection.execute(insert(table_of(ProcessDefinition)), [{
            "id": 1, "process_id": "telediagnosis", "version": 1, "name": "bench", "content_hash": "0" * 64,
            "source": "", "deployed_at": end, "deployed_by": "bench"}])
        connection.execute(insert(table_of(TerritoryRow)), [
            {"id": f"t{n:02d}", "name": f"Territoire {n}", "department": "29", "region": "Bretagne"}
            for n in range(TERRITORIES)])
        connection.execute(insert(table_of(SiteRow)), [
            {"id": f"site-{n:03d}", "name": f"Site {n}", "territory_id": f"t{n % TERRITORIES:02d}"}
            for n in range(SITES)])
        connection.execute(insert(table_of(User)), [
            {"username": f"rad{n:02d}", "display_name": f"Radiologue {n}", "password_hash": "", "totp_secret": "",
             "created_at": end} for n in range(RADIOLOGISTS)])
        connection.execute(insert(table_of(UserRole)), [
            {"username": f"rad{n:02d}", "role": "radiologist"} for n in range(RADIOLOGISTS)])
        slots = []
        for territory in range(TERRITORIES):  # nights covered four days out of five
            for day in range(366):
                if rng.random() < 0.8:
                    starts = end - timedelta(days=day, hours=6)
                    slots.append({"territory_id": f"t{territory:02d}", "username": f"rad{territory:02d}",
                                  "starts_at": starts, "ends_at": starts + timedelta(hours=13, minutes=30)})
        connection.execute(insert(table_of(OnCallSlotRow)), slots)
        for first in range(0, cases, BATCH):
            rows: dict[str, list[dict[str, Any]]] = {"cases": [], "tasks": [], "audit": []}
            for n in range(first, min(first + BATCH, cases)):
                _case(rng, n + 1, end - timedelta(minutes=rng.uniform(60 * 24 * 3, 60 * 24 * 365)), rows)
            connection.execute(insert(instance), rows["cases"])
            connection.execute(insert(task), rows["tasks"])
            connection.execute(insert(audit), rows["audit"])
            counts["cases"] += len(rows["cases"])
            counts["tasks"] += len(rows["tasks"])
            counts["audit_events"] += len(rows["audit"])
    with ctx.engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    return {**counts, "generate_s": round(time.perf_counter() - t0, 1)}


def _case(rng: random.Random, case_id: int, started: datetime, rows: dict[str, list[dict[str, Any]]]) -> None:
    urgency = rng.choice(("vital", "urgent", "scheduled"))
    modality = rng.choice(("CT", "CT", "MR", "XR", "US"))
    site = f"site-{rng.randrange(SITES):03d}"
    radiologist = f"rad{rng.randrange(RADIOLOGISTS):02d}"
    refused = rng.random() < 0.04
    data = {"modality": modality, "urgency": urgency}
    if refused:
        data["refusal_reason"] = rng.choice(("insufficient_information", "inappropriate_images",
                                             "insufficient_quality"))
    state = json.dumps({"data": data, "filler": "x" * 2000}, separators=(",", ":"))
    rows["cases"].append({
        "id": case_id, "definition_id": 1, "process_id": "telediagnosis", "status": "completed", "site_id": site,
        "state": state, "version": 12, "urgency": urgency, "audit_seq": 6, "audit_hash": "0" * 64,
        "started_by": "bench", "started_at": started, "updated_at": started, "ended_at": started})
    at = started
    events = [("instance.started", {})]
    steps = [("request", "req")]
    if rng.random() < 0.15:
        events.append(("timer.fired", {"timer": "accept_timeout", "setting": "accept_tier1"}))
    steps += [(spec, radiologist) for spec in FRONT]
    if rng.random() < 0.1:
        steps += [("provide_information", "req"), ("justify", radiologist)]
    steps.append(("interpret", radiologist))
    if refused:
        steps += [("state_refusal", radiologist), ("apply_fallback", "req")]
    else:
        if rng.random() < 0.1:
            steps.append(("record_phone_call", radiologist))
        if rng.random() < 0.03:
            steps += [("propose_announcement", radiologist), ("confirm_announcement_plan", "req")]
        steps.append(("acknowledge_report", "req"))
        if rng.random() < 0.12:
            events.append(("timer.fired", {"timer": "report_due", "setting": f"report_{urgency}"}))
    for index, (spec, who) in enumerate(steps):
        created = at
        at += timedelta(minutes=rng.uniform(1, 90 if spec in ("interpret", "acknowledge_report") else 15))
        rows["tasks"].append({
            "id": f"{case_id:08d}-{index:02d}", "instance_id": case_id, "spec_name": spec, "title": spec,
            "lane": None, "form_key": None, "site_id": site, "status": "completed", "restricted": False,
            "assignee": who, "urgency": 1, "due_at": None, "created_at": created, "ended_at": at, "ended_by": who})
        if index % 3 == 0:
            events.append(("task.completed", {"task": spec}))
    for seq, (action, detail) in enumerate(events, start=1):
        rows["audit"].append({
            "chain": case_id, "seq": seq, "at": started + timedelta(minutes=seq), "actor": "bench", "action": action,
            "instance_id": case_id, "detail": json.dumps(detail, sort_keys=True), "prev_hash": "0" * 64,
            "hash": "0" * 64, "key_id": "sha256"})


def timed(call: Callable[[], Any], repeat: int) -> dict[str, Any]:
    result = call()  # warm: statement caches, pool, pages
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        samples.append(1000 * (time.perf_counter() - t0))
    return {"median_ms": round(statistics.median(samples), 1), "max_ms": round(max(samples), 1), "result": result}


def measure(url: str, cases: int, repeat: int) -> dict[str, Any]:
    upgrade(url)
    end = datetime.now(UTC).replace(microsecond=0)
    ctx = build_context(url)
    try:
        report: dict[str, Any] = {"dialect": ctx.engine.dialect.name, **generate(ctx, cases, end)}
        last = end.date()
        year = IndicatorFilters(last - timedelta(days=365), last)
        instance, task = table_of(ProcessInstance), table_of(Task)

        def baseline() -> int:
            since = datetime.combine(year.start, datetime.min.time(), UTC)
            with ctx.read() as session:
                return int(session.execute(select(func.count()).select_from(
                    instance.join(task, task.c.instance_id == instance.c.id))
                    .where(instance.c.started_at >= since)).scalar_one())

        t0 = time.perf_counter()
        compute_indicators(ctx, year)  # builds every case's facts (engine.services.indicators_facts), once
        report["first_call_builds_facts_ms"] = round(1000 * (time.perf_counter() - t0), 1)
        base = timed(baseline, repeat)
        report["baseline_count_ms"] = base["median_ms"]
        report["baseline_rows"] = base["result"]
        calls = {
            "year": year,
            "one_site": IndicatorFilters(year.start, year.end, site_id="site-042"),
            "one_modality": IndicatorFilters(year.start, year.end, modality="MR"),
            "one_radiologist": IndicatorFilters(year.start, year.end, radiologist="rad07"),
            "one_month": IndicatorFilters(last - timedelta(days=30), last),
        }
        for name, filters in calls.items():
            measured = timed(lambda filters=filters: compute_indicators(ctx, filters), repeat)
            report[f"{name}_ms"] = measured["median_ms"]
            report[f"{name}_max_ms"] = measured["max_ms"]
            report[f"{name}_ratio_to_baseline"] = round(measured["median_ms"] / max(base["median_ms"], 0.1), 1)
            report[f"{name}_requests"] = measured["result"]["requests"]["total"]
        with ctx.engine.begin() as connection:  # 1 % of the cases saved since: their facts are rebuilt
            connection.execute(instance.update().where(instance.c.id % 100 == 0)
                               .values(version=instance.c.version + 1))
        t0 = time.perf_counter()
        compute_indicators(ctx, year)
        report["after_1pct_saved_ms"] = round(1000 * (time.perf_counter() - t0), 1)
        report["target_met"] = report["year_ms"] < TARGET_MS
        return report
    finally:
        ctx.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report: dict[str, Any] = {"cases": args.cases, "target_ms": TARGET_MS, "measured_on": date.today().isoformat()}
    with tempfile.TemporaryDirectory(prefix="telerad-indicators-") as tmp:
        report["sqlite"] = measure(f"sqlite:///{Path(tmp) / 'indicators.db'}", args.cases, args.repeat)
        if os.environ.get("TELERAD_DATABASE_URL"):
            with fresh_database(Path(tmp)) as url:
                report["postgresql"] = measure(url, args.cases, args.repeat)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return
    for database in ("sqlite", "postgresql"):
        if database not in report:
            continue
        figures = report[database]
        print(f"== {database}: {figures['cases']} cases, {figures['tasks']} tasks, {figures['audit_events']} audit "
              f"events (generated in {figures['generate_s']} s)")
        print(f"  first call (builds the facts)       {figures['first_call_builds_facts_ms']:>8.1f} ms")
        print(f"  baseline COUNT(*) cases x tasks     {figures['baseline_count_ms']:>8.1f} ms")
        for name in ("year", "one_site", "one_modality", "one_radiologist", "one_month"):
            print(f"  indicators {name:<24} {figures[f'{name}_ms']:>8.1f} ms  "
                  f"x{figures[f'{name}_ratio_to_baseline']} baseline  ({figures[f'{name}_requests']} requests)")
        print(f"  after 1 % of the cases were saved   {figures['after_1pct_saved_ms']:>8.1f} ms")
        print(f"  target < {TARGET_MS} ms for the year: {'met' if figures['target_met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
