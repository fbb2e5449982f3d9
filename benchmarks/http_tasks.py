"""HTTP throughput: cases of a 10-user-task diagram driven through the JSON API of a real Telerad server.

Not a test. Run from the project root:

    .venv/bin/python benchmarks/http_tasks.py [--cases 60] [--json]
    .venv/bin/python benchmarks/http_tasks.py --memory --json      # 10,000 completions, server RSS before/after
    TELERAD_DATABASE_URL=postgresql://user@127.0.0.1/postgres .venv/bin/python benchmarks/http_tasks.py --json

It prepares a fresh database (a SQLite file in a temporary folder; with TELERAD_DATABASE_URL, a new database
created on that PostgreSQL server and dropped afterwards), deploys tests/data/bpmn/bench_ten_tasks.bpmn with
its JSON Schema form stored as a designer form, creates one site and one requester per client with a bearer
token, then starts `telerad run --workers 2 --threads 2` (two Granian web processes, one per core of the
2-core reference machine, and the timer/listener worker beside them; `--workers 1` serves with waitress in
one process, as `make run` does) on a free loopback port with TELERAD_SQL_STATS=1, and drives cases through
/api/v1 with 1, then 4, then 20 concurrent clients (one keep-alive HTTP connection each, no think time):
each case is created untimed before the phase (through the engine: only the charter's two families start from
a person's request; the request form completes the first task), then for each of the nine other tasks: list,
fetch (a read of task data, audited on the case's chain), complete. SQL counts and server CPU are summed over
the web processes.

Just before each of those phases, the same phase runs against benchmarks/http_baseline_app.py (the same calls
answered by a bare Flask app with no work behind them) behind the same server, processes and threads: the
`baseline_` keys, and `ratio_` keys dividing Telerad's figures by the baseline's (--no-baseline skips it;
--memory has none).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from engine.domain.actors import Actor  # noqa: E402
from engine.runtime import bundles_from_library  # noqa: E402
from engine.services.accounts import create_user, issue_api_token  # noqa: E402
from engine.services.bootstrap import build_context  # noqa: E402
from engine.services.definitions import deploy_definition  # noqa: E402
from engine.services.directory import create_site, create_territory  # noqa: E402
from engine.services.instances import start_instance  # noqa: E402
from engine.store.db import normalise_url  # noqa: E402
from engine.store.designer_models import FormSchemaRow  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402

PROCESS_ID = "bench_ten_tasks"
DIAGRAM = ROOT / "tests" / "data" / "bpmn" / "bench_ten_tasks.bpmn"
FORM = ROOT / "tests" / "data" / "forms" / "bench_step.schema.json"
SITE = "bench-site"
TASKS_PER_CASE = 10  # the first one is completed by the create call (request form)
CLIENT_COUNTS = (1, 4, 20)
PASSWORD = "Banc-d-essai-2024!"
COMPLETE_ENDPOINT = "api.complete"


# ------------------------------------------------------------------------------------------ set-up


@contextmanager
def fresh_database(tmp: Path) -> Iterator[str]:
    """A SQLite file, or a new database on the PostgreSQL server of TELERAD_DATABASE_URL (dropped after)."""
    other = os.environ.get("TELERAD_DATABASE_URL")
    if not other:
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    name = f"telerad_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(other), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield other.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def prepare(url: str, clients: int) -> tuple[list[str], str]:
    """Schema, diagram, form, site, one requester per client and an administrator; returns their tokens."""
    upgrade(url)
    ctx = build_context(url)
    system = Actor.system()
    try:
        with ctx.write() as session:  # as the designer stores a form schema
            session.add(FormSchemaRow(key=FORM.name, schema=FORM.read_text(encoding="utf-8"), based_on=None,
                                      created_by="bench", created_at=datetime.now(UTC)))
            session.commit()
        bundles = bundles_from_library({DIAGRAM.name: DIAGRAM.read_text(encoding="utf-8")})
        deploy_definition(ctx, Actor("bench"), bundles[0])
        create_territory(ctx, system, "bench-territory", "Banc d'essai", "29", "Bretagne")
        create_site(ctx, system, SITE, "Site du banc d'essai", "bench-territory")
        tokens = []
        for n in range(clients):
            username = f"bench.requester{n:02d}"
            create_user(ctx, system, username, f"Demandeur {n}", PASSWORD, ["requester"], [SITE])
            tokens.append(issue_api_token(ctx, username, "bench"))
        create_user(ctx, system, "bench.admin", "Administrateur du banc", PASSWORD, ["administrator"])
        admin_token = issue_api_token(ctx, "bench.admin", "bench")
    finally:
        ctx.engine.dispose()
    return tokens, admin_token


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path


def start_server(url: str, instance: Path, threads: int, workers: int) -> Server:
    port = free_port()
    env = {**os.environ, "TELERAD_DATABASE_URL": url, "TELERAD_INSTANCE_PATH": str(instance),
           "TELERAD_SQL_STATS": "1", "TELERAD_LOG_LEVEL": "WARNING", "TELERAD_MLLP_PORT": str(free_port()),
           "TELERAD_DICOM_PORT": str(free_port())}
    command = [str(Path(sys.executable).with_name("telerad")), "run", "--port", str(port), "--threads", str(threads)]
    if workers > 1:
        command += ["--workers", str(workers)]

    def ready(log: str) -> bool:
        # With --workers, timers and listeners run in a `telerad worker` process started beside the web
        # processes; it is waited for too, so that its start-up (several seconds of CPU) is not measured.
        return (workers == 1 or "Telerad worker:" in log) and _answers(port, "/healthz")

    return _launch("the server", command, env, ROOT, instance / "server.log", port, ready)


def start_baseline(instance: Path, threads: int, workers: int) -> Server:
    """benchmarks/http_baseline_app.py behind the same server, processes and threads as `start_server`."""
    port = free_port()
    python = sys.executable
    if workers > 1:
        command = [python, "-m", "granian", "--interface", "wsgi", "--factory", "--workers", str(workers),
                   "--blocking-threads", str(threads), "--host", "127.0.0.1", "--port", str(port),
                   "--log-level", "warning", "http_baseline_app:create_app"]
    else:
        command = [python, "-m", "waitress", f"--threads={threads}", "--host=127.0.0.1", f"--port={port}",
                   "--call", "http_baseline_app:create_app"]
    here = Path(__file__).resolve().parent
    return _launch("the baseline server", command, {**os.environ, "PYTHONPATH": str(here)}, here,
                   instance / "baseline.log", port, lambda _log: _answers(port, "/api/v1/tasks"))


def _launch(what: str, command: list[str], env: dict[str, str], cwd: Path, log: Path, port: int,
            ready: Callable[[str], bool]) -> Server:
    """Start a server with its output in `log`; return once `ready(output so far)` holds (60 s at most)."""
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    server = Server(process, port, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} stopped: {log.read_text(errors='replace')}")
        if ready(log.read_text(errors="replace")):
            return server
        time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"{what} was not ready within 60 s: {log.read_text(errors='replace')}")


def _answers(port: int, path: str) -> bool:
    with suppress(OSError):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", path)
            return connection.getresponse().status == 200
        finally:
            connection.close()
    return False


def tree_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process and all its descendants (Linux /proc); None elsewhere."""
    try:
        entries = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in entries:
        try:  # a process may end while being read; its name may be any bytes
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
            times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == current)
    return total


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


# ------------------------------------------------------------------------------------------ client


class Client:
    """One user on one keep-alive connection; each call's wall time is recorded by kind."""

    def __init__(self, port: int, token: str, timings: dict[str, list[float]]):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.timings = timings

    def call(self, kind: str, method: str, path: str, body: Any = None, expect: int = 200, timed: bool = True) -> Any:
        payload = json.dumps(body) if body is not None else None
        t0 = time.perf_counter()
        self.connection.request(method, path, body=payload, headers=self.headers)
        response = self.connection.getresponse()
        data = response.read()
        if timed:
            self.timings.setdefault(kind, []).append(time.perf_counter() - t0)
        if response.status != expect:
            raise RuntimeError(f"{method} {path}: HTTP {response.status} {data[:300]!r}")
        return json.loads(data)

    def run_case(self, case_id: Any, score: int) -> int:
        """List, fetch and complete each open task of a case (created before, untimed; None: the baseline app's
        case, created now on this connection, untimed, since each of its processes keeps its own cases)."""
        if case_id is None:
            case_id = self.call("create", "POST", "/api/v1/cases", {
                "process": PROCESS_ID, "site_id": SITE, "request": {"score": score, "note": "demande"}},
                expect=201, timed=False)["id"]
        completed = 0
        while True:
            tasks = [t for t in self.call("list", "GET", "/api/v1/tasks")["tasks"] if t["case_id"] == case_id]
            if not tasks:
                break
            task_id = tasks[0]["id"]
            fetched = self.call("fetch", "GET", f"/api/v1/tasks/{task_id}")
            if fetched["schema"] is None or fetched["form"] != FORM.name:
                raise RuntimeError(f"task {task_id} has no form: {fetched!r}")
            self.call("complete", "POST", f"/api/v1/tasks/{task_id}/complete", {"score": score, "note": "ok"})
            completed += 1
        if completed != TASKS_PER_CASE - 1:
            raise RuntimeError(f"case {case_id}: {completed} completions, expected {TASKS_PER_CASE - 1}")
        return completed

    def close(self) -> None:
        self.connection.close()


def _stats_of_one_process(port: int, admin_token: str) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/debug/sql-stats", headers={"Authorization": f"Bearer {admin_token}"})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"/debug/sql-stats: HTTP {response.status}")
    return dict(json.loads(body))


def stats(port: int, admin_token: str, workers: int) -> dict[str, Any]:
    """The counters of every web process, summed: each process answers for itself, and a new connection may
    reach any of them, so it asks on new connections until it has heard from `workers` processes."""
    by_pid: dict[int, dict[str, Any]] = {}
    for _ in range(200 * workers):
        answer = _stats_of_one_process(port, admin_token)
        by_pid[answer["pid"]] = answer
        if len(by_pid) == workers:
            break
    else:
        raise RuntimeError(f"/debug/sql-stats: heard from {len(by_pid)} of {workers} web processes")
    endpoints: dict[str, dict[str, float]] = {}
    for answer in by_pid.values():
        for name, values in answer["endpoints"].items():
            total = endpoints.setdefault(name, {})
            for key, value in values.items():
                total[key] = total.get(key, 0) + value
    return {"pids": sorted(by_pid), "cpu_ms": sum(a["cpu_ms"] for a in by_pid.values()), "endpoints": endpoints,
            "rss_bytes": {pid: a["rss_bytes"] or 0 for pid, a in by_pid.items()}}


@dataclass
class Phase:
    clients: int
    cases: int
    wall_s: float = 0.0
    client_cpu_s: float = 0.0  # CPU of the benchmark's own client threads, on the same cores as the server
    completions: int = 0
    timings: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


# Cases are created untimed: on Telerad through the engine before each phase (only the charter's two families
# start from a person's request, CH-1.1, and this benchmark's diagram is neither), on the baseline app by each
# client through its do-nothing create route. port -> function(token, score) -> case id (None: the client's).
CASE_MAKERS: dict[int, Callable[[str, int], Any]] = {}


def telerad_case_maker(url: str) -> Callable[[str, int], Any]:
    ctx = build_context(url)
    starter = Actor(Actor.system().user_id, frozenset({"requester"}), frozenset({SITE}))  # the engine, for the lane

    def make(token: str, score: int) -> Any:
        return start_instance(ctx, starter, PROCESS_ID, {}, site_id=SITE,
                              first_task={"score": score, "note": "demande"})
    return make


def baseline_case_maker(token: str, score: int) -> Any:
    return None  # created by the client itself (Client.run_case)


def drive(port: int, tokens: list[str], clients: int, cases: int) -> Phase:
    """`cases` cases shared by `clients` threads, each on its own connection with its own token."""
    phase = Phase(clients, cases)
    per_client = [cases // clients + (1 if n < cases % clients else 0) for n in range(clients)]
    scores = [[5 if k % 2 else -5 for k in range(count)] for count in per_client]  # both gateway branches
    made = [[CASE_MAKERS[port](tokens[n], score) for score in scores[n]] for n in range(clients)]
    per_thread: list[dict[str, list[float]]] = [{} for _ in range(clients)]
    done = [0] * clients
    barrier = threading.Barrier(clients + 1)

    def work(n: int) -> None:
        client = Client(port, tokens[n], per_thread[n])
        try:
            barrier.wait()
            for k in range(per_client[n]):
                done[n] += client.run_case(made[n][k], scores[n][k])
        except Exception as err:  # reported, and the run refused
            phase.errors.append(f"client {n}: {err}")
        finally:
            client.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    t0, cpu0 = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.join()
    phase.wall_s = time.perf_counter() - t0
    phase.client_cpu_s = time.process_time() - cpu0
    phase.completions = sum(done)
    for timings in per_thread:
        for kind, values in timings.items():
            phase.timings.setdefault(kind, []).extend(values)
    if phase.errors:
        raise RuntimeError("; ".join(phase.errors[:5]))
    return phase


# ---------------------------------------------------------------------------------------- measures


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def latency_keys(phase: Phase) -> dict[str, float]:
    keys: dict[str, float] = {}
    for kind, values in sorted(phase.timings.items()):
        ms = [1000 * v for v in values]
        keys[f"{kind}_median_ms_{phase.clients}"] = round(statistics.median(ms), 2)
        keys[f"{kind}_p95_ms_{phase.clients}"] = round(percentile(ms, 95), 2)
        keys[f"{kind}_p99_ms_{phase.clients}"] = round(percentile(ms, 99), 2)
    keys[f"cases_per_s_{phase.clients}"] = round(phase.cases / phase.wall_s, 2)
    keys[f"completions_per_s_{phase.clients}"] = round(phase.completions / phase.wall_s, 1)
    return keys


def endpoint_delta(before: dict[str, Any], after: dict[str, Any], endpoint: str) -> dict[str, float]:
    old = before["endpoints"].get(endpoint, {})
    new = after["endpoints"].get(endpoint, {})
    return {k: new.get(k, 0) - old.get(k, 0) for k in new}


def database_bytes(url: str) -> int:
    """Bytes the database occupies (SQLite: after a WAL checkpoint; PostgreSQL: pg_database_size)."""
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                pages = connection.exec_driver_sql("PRAGMA page_count").scalar_one()
                free = connection.exec_driver_sql("PRAGMA freelist_count").scalar_one()
                size = connection.exec_driver_sql("PRAGMA page_size").scalar_one()
                return int((pages - free) * size)
            return int(connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    finally:
        engine.dispose()


def run(cases: int, threads: int, workers: int, memory_completions: int, baseline: bool) -> dict[str, Any]:
    clients_needed = max(CLIENT_COUNTS)
    with tempfile.TemporaryDirectory(prefix="telerad-http-bench-") as tmp, fresh_database(Path(tmp)) as url:
        tokens, admin_token = prepare(url, clients_needed)
        server = start_server(url, Path(tmp), threads, workers)
        CASE_MAKERS[server.port] = telerad_case_maker(url)
        floor: Server | None = None
        try:
            if baseline and not memory_completions:
                floor = start_baseline(Path(tmp), threads, workers)
                CASE_MAKERS[floor.port] = baseline_case_maker
            for port in (server.port, floor.port) if floor else (server.port,):
                drive(port, tokens, 1, 3)  # warm-up: spec and form caches, statement caches, pools
                drive(port, tokens, 4, 4)
            report: dict[str, Any] = {"database": "sqlite" if url.startswith("sqlite") else "postgresql",
                                      "cases_per_phase": cases, "server_threads": threads, "server_workers": workers}
            if memory_completions:
                report.update(measure_memory(server.port, tokens, admin_token, memory_completions, workers))
            else:
                report.update(measure_phases(url, server, floor, tokens, admin_token, cases, workers))
        finally:
            try:
                stop_server(server)
            finally:
                if floor is not None:
                    stop_server(floor)
    server_name = "granian" if workers > 1 else "waitress"
    report["versions"] = {"python": platform.python_version(), "SQLAlchemy": version("SQLAlchemy"),
                          "server": f"{server_name} {version(server_name)}"}
    return report


def measure_phases(url: str, server: Server, floor: Server | None, tokens: list[str], admin_token: str,
                   cases: int, workers: int) -> dict[str, Any]:
    """Counters and CPU are summed over the web processes (`stats`). With a baseline server (`floor`), each
    Telerad phase comes right after the same phase on the baseline, so both meet the machine in one state."""
    report: dict[str, Any] = {}
    bytes_before = database_bytes(url)
    total_cases = 0
    for clients in CLIENT_COUNTS:
        if floor is not None:
            report.update(baseline_phase(floor, tokens, clients, max(cases, clients)))
        before = stats(server.port, admin_token, workers)
        tree_before = tree_cpu_s(server.process.pid)
        phase = drive(server.port, tokens, clients, max(cases, clients))
        tree_after = tree_cpu_s(server.process.pid)
        after = stats(server.port, admin_token, workers)
        total_cases += phase.cases
        report.update(latency_keys(phase))
        complete = endpoint_delta(before, after, COMPLETE_ENDPOINT)
        per = complete["requests"] or 1
        all_cpu_ms = after["cpu_ms"] - before["cpu_ms"]
        report[f"server_cpu_ms_per_completion_{clients}"] = round(complete["cpu_ms"] / per, 3)
        report[f"server_cpu_ms_per_completion_all_calls_{clients}"] = round(all_cpu_ms / phase.completions, 3)
        if tree_before is not None and tree_after is not None:
            report[f"server_tree_cpu_ms_per_completion_{clients}"] = round(
                1000 * (tree_after - tree_before) / phase.completions, 3)
        report[f"client_cpu_ms_per_completion_{clients}"] = round(1000 * phase.client_cpu_s / phase.completions, 3)
        if clients == 1:  # one client: nothing else runs, so per-completion counts are exact
            report["sql_per_completion"] = round(complete["statements"] / per, 2)
            report["sqlalchemy_statements_per_completion"] = round(complete["sqlalchemy_statements"] / per, 2)
            report["commits_per_completion"] = round(complete["commits"] / per, 2)
            report["transactions_per_completion"] = round(complete["transactions"] / per, 2)
            report["server_cpu_ms_per_completion"] = report["server_cpu_ms_per_completion_1"]
            calls = {name.removeprefix("api."): values for name in ("api.tasks", "api.task", "api.complete")
                     if (values := endpoint_delta(before, after, name)).get("requests")}
            report["sql_per_call_1"] = {name: round(v["statements"] / v["requests"], 2) for name, v in calls.items()}
            report["server_cpu_ms_per_call_1"] = {name: round(v["cpu_ms"] / v["requests"], 3)
                                                  for name, v in calls.items()}
        report[f"completions_{clients}"] = phase.completions
        report[f"wall_s_{clients}"] = round(phase.wall_s, 2)
        if floor is not None:
            report.update(ratio_keys(report, clients))
    report["db_bytes_per_case"] = round((database_bytes(url) - bytes_before) / total_cases)
    final = stats(server.port, admin_token, workers)
    report["server_rss_mb"] = round(max(final["rss_bytes"].values()) / 2**20, 1)  # the largest web process
    report["targets"] = {
        "complete_median_ms_1 < 10": report["complete_median_ms_1"] < 10,
        "complete_p99_ms_20 < 50": report["complete_p99_ms_20"] < 50,
        "sql_per_completion <= 10": report["sql_per_completion"] <= 10,
        "commits_per_completion == 1": report["commits_per_completion"] == 1,
    }
    return report


def baseline_phase(floor: Server, tokens: list[str], clients: int, cases: int) -> dict[str, Any]:
    """The phase on the baseline app: `baseline_`-prefixed latency keys and the CPU of its processes."""
    cpu_before = tree_cpu_s(floor.process.pid)
    phase = drive(floor.port, tokens, clients, cases)
    cpu_after = tree_cpu_s(floor.process.pid)
    keys = {f"baseline_{k}": v for k, v in latency_keys(phase).items()}
    if cpu_before is not None and cpu_after is not None:
        keys[f"baseline_server_tree_cpu_ms_per_completion_{clients}"] = round(
            1000 * (cpu_after - cpu_before) / phase.completions, 3)
    keys[f"baseline_client_cpu_ms_per_completion_{clients}"] = round(
        1000 * phase.client_cpu_s / phase.completions, 3)
    return keys


def ratio_keys(report: dict[str, Any], clients: int) -> dict[str, float]:
    """Telerad's figure divided by the baseline's, measured just before it."""
    ratios = {}
    for key in (f"complete_median_ms_{clients}", f"complete_p99_ms_{clients}", f"completions_per_s_{clients}",
                f"server_tree_cpu_ms_per_completion_{clients}"):
        ours, floor = report.get(key), report.get(f"baseline_{key}")
        if ours is not None and floor:
            ratios[f"ratio_{key}"] = round(ours / floor, 2)
    return ratios


def measure_memory(port: int, tokens: list[str], admin_token: str, completions: int, workers: int) -> dict[str, Any]:
    """RSS of each web process after a warm-up, then after `completions` more task completions by 4 clients;
    the ratio reported is that of the process that grew most."""
    drive(port, tokens, 4, 100)  # past the first allocations of every cache
    start = stats(port, admin_token, workers)["rss_bytes"]
    cases = -(-completions // (TASKS_PER_CASE - 1))
    t0 = time.perf_counter()
    phase = drive(port, tokens, 4, cases)
    end = stats(port, admin_token, workers)["rss_bytes"]
    pid = max(start, key=lambda p: end[p] / start[p])
    ratio = end[pid] / start[pid]
    return {"memory_completions": phase.completions, "memory_wall_s": round(time.perf_counter() - t0, 1),
            "rss_start_mb": round(start[pid] / 2**20, 1), "rss_end_mb": round(end[pid] / 2**20, 1),
            "rss_ratio": round(ratio, 3), "targets": {"rss_ratio <= 1.2": ratio <= 1.2}}


def print_table(report: dict[str, Any]) -> None:
    print(f"Telerad over HTTP on {report['database']}: {report['cases_per_phase']} cases per phase, "
          f"{TASKS_PER_CASE} tasks per case")
    for key, value in report.items():
        if not isinstance(value, dict):
            print(f"  {key:<45} {value}")
    for name, met in report.get("targets", {}).items():
        print(f"  target {name:<38} {'met' if met else 'NOT MET'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=60, help="cases per phase (1, 4 and 20 clients)")
    parser.add_argument("--threads", type=int, default=2, help="request threads of each web process")
    parser.add_argument("--workers", type=int, default=2,
                        help="web processes (telerad run --workers; 1: waitress in one process, as `make run`)")
    parser.add_argument("--memory", action="store_true", help="instead: server RSS over 10,000 completions")
    parser.add_argument("--completions", type=int, default=10_000, help="completions of --memory")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the baseline phases (benchmarks/http_baseline_app.py) and their ratios")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    report = run(args.cases, args.threads, args.workers, args.completions if args.memory else 0,
                 baseline=not args.no_baseline)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
