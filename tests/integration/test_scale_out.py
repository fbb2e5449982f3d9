"""Scale-out on one PostgreSQL database: `telerad run --workers 2 --no-scheduler` (two Granian web processes)
and two `telerad worker` processes (timers, HL7 listeners), while concurrent API clients create cases, post
messages and race to accept offers, one-second escalation timers fire and HL7 orders arrive at both workers.

Afterwards: every case is consistent (index rows = workflow state, none failed), no task was completed twice,
no timer fired twice, no message was lost (HL7 orders, case messages), and `telerad audit verify` passes."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.domain.actors import Actor
from engine.ports import SystemClock
from engine.services.accounts import issue_api_token
from engine.services.definitions import deploy_library
from engine.services.keyring import KeyRing
from engine.services.persistence import bundle_of
from engine.store.directory_models import CaseMessage
from engine.store.models import AuditEvent, EscalationSetting, ProcessInstance, Task, Timer
from forms import default_registry
from integrations.hl7.demo import configure_demo_hl7
from integrations.hl7.mllp import MllpClient
from integrations.hl7.models import Hl7Message
from tests.integration.hl7_support import free_port, msa, sample
from web.cli.demo_data import create_demo, demo_request
from web.config import PROJECT_ROOT

CLIENT_SECONDS = 12
CASES = 8
ORDERS = 10
TELERAD = str(Path(sys.executable).with_name("telerad"))


class Api:
    def __init__(self, port: int, token: str):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: object = None) -> tuple[int, dict]:
        self.connection.request(method, path, body=json.dumps(body) if body is not None else None,
                                headers=self.headers)
        response = self.connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")


def _wait_http(port: int, processes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in processes), "a process stopped at start-up"
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("the web processes did not answer /healthz")


@pytest.mark.charter("CH-3.3")
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_web_processes_and_two_workers_lose_and_duplicate_nothing(make_ctx, database_url, tmp_path):
    ctx = make_ctx(operations=None, forms=default_registry(), escalation=None, clock=SystemClock())
    with ctx.write() as session:  # one-second tier-1 offers (below what the admin page accepts), for the test
        session.add(EscalationSetting(name="accept_tier1", duration="PT1S", updated_at=datetime.now(UTC),
                                      updated_by="test"))
        session.commit()
    deploy_library(ctx, Actor("designer"), PROJECT_ROOT / "workflows" / "bpmn")
    create_demo(ctx)
    configure_demo_hl7(ctx)
    tokens = {name: issue_api_token(ctx, name, "scale-out") for name in ("dr.martin", "dr.legall", "dr.morvan")}

    web_port, mllp_ports = free_port(), [free_port(), free_port()]
    keys = tmp_path / "keys.json"
    KeyRing.development().save(keys)  # the ring of this test's own context: one audit chain, one key
    env = {**os.environ, "TELERAD_DATABASE_URL": database_url, "TELERAD_INSTANCE_PATH": str(tmp_path / "instance"),
           "TELERAD_KEYS_FILE": str(keys),
           "TELERAD_SECRET_KEY": "scale-out-test-" + "k" * 40, "TELERAD_SCHEDULER_INTERVAL": "0.2",
           "TELERAD_LOG_LEVEL": "WARNING", "TELERAD_HL7_DELIVERY_INTERVAL": "1"}
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = [subprocess.Popen([TELERAD, "run", "--workers", "2", "--threads", "4", "--no-scheduler",
                                   "--port", str(web_port)], env=env, stdout=(logs / "web.log").open("wb"),
                                  stderr=subprocess.STDOUT)]
    for n, port in enumerate(mllp_ports):
        processes.append(subprocess.Popen(
            [TELERAD, "worker"], env={**env, "TELERAD_MLLP_PORT": str(port), "TELERAD_DICOM_PORT": str(free_port())},
            stdout=(logs / f"worker{n}.log").open("wb"), stderr=subprocess.STDOUT))

    stop = threading.Event()
    errors: list[str] = []
    completions: list[tuple[str, str, int]] = []  # (task id, user, HTTP status)
    created: list[int] = []
    posted: Counter[int] = Counter()
    acks: list[tuple[str, str]] = []

    def guarded(work):
        def run(*args):
            try:
                work(*args)
            except Exception as err:  # noqa: BLE001 - reported by the test
                errors.append(f"{work.__name__}: {err!r}")
        return run

    @guarded
    def requester() -> None:
        api = Api(web_port, tokens["dr.martin"])
        for _ in range(CASES):
            status, body = api.call("POST", "/api/v1/cases",
                                    {"process": "telediagnosis", "site_id": "ch-brest", "request": demo_request()})
            assert status == 201, body
            created.append(body["id"])
            for text in ("Patient sous anticoagulant.", "Examen demandé en urgence."):
                status, body = api.call("POST", f"/api/v1/cases/{created[-1]}/messages", {"body": text})
                assert status == 201, body
                posted[created[-1]] += 1
            time.sleep(0.5)

    @guarded
    def radiologist(username: str) -> None:
        api = Api(web_port, tokens[username])
        while not stop.is_set():
            status, body = api.call("GET", "/api/v1/tasks")
            assert status == 200, body
            for task in body["tasks"]:
                if task["task"] == "accept_case":
                    status, _ = api.call("POST", f"/api/v1/tasks/{task['id']}/complete", {"acceptance": "accept"})
                    assert status in (200, 404, 409), status  # a lost race or a moved offer is a clear refusal
                    completions.append((task["id"], username, status))
            time.sleep(0.05)

    @guarded
    def ris() -> None:
        clients = [MllpClient("127.0.0.1", port) for port in mllp_ports]
        try:
            for n in range(ORDERS):
                message = sample("orm_o01_2.5_nw_utf8.hl7", BRE000102=f"SCALE{n:03d}",
                                 **{"ACC-BRE-0002": f"ACC-SCALE-{n:03d}"})
                acks.append(msa(clients[n % 2].send(message)))
                time.sleep(0.3)
        finally:
            for client in clients:
                client.close()

    try:
        _wait_http(web_port, processes)
        time.sleep(1.0)  # the workers' listeners are up once their first scheduler tick has run
        threads = [threading.Thread(target=requester), threading.Thread(target=ris)]
        threads += [threading.Thread(target=radiologist, args=(name,)) for name in ("dr.legall", "dr.legall",
                                                                                    "dr.morvan", "dr.morvan")]
        for thread in threads:
            thread.start()
        time.sleep(CLIENT_SECONDS)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        deadline = time.monotonic() + 20  # the workers fire what became due meanwhile
        while time.monotonic() < deadline:
            with ctx.read() as session:
                overdue = session.execute(select(func.count()).select_from(Timer).where(
                    Timer.due_at < datetime.now(UTC) - timedelta(seconds=1))).scalar_one()
            if overdue == 0:
                break
            time.sleep(0.2)
        alive = [p.poll() is None for p in processes]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    outputs = {path.name: path.read_text(errors="replace")[-2000:] for path in logs.iterdir()}
    assert errors == [], (errors, outputs)
    assert all(alive), outputs
    assert overdue == 0, outputs

    with ctx.read() as session:
        completed_events = Counter(json.loads(d)["task_id"] for d in session.execute(
            select(AuditEvent.detail).where(AuditEvent.action == "task.completed")).scalars())
        fired = Counter(json.loads(d)["task_id"] for d in session.execute(
            select(AuditEvent.detail).where(AuditEvent.action == "timer.fired")).scalars())
        task_rows = {row.id: row for row in session.execute(select(Task)).scalars()}
        failed = session.execute(select(ProcessInstance.id).where(ProcessInstance.status == "failed")).all()
        stored_messages = Counter(session.execute(select(CaseMessage.instance_id)).scalars())
        inbound = session.execute(select(Hl7Message.control_id).where(Hl7Message.direction == "in")).scalars().all()
        orders = Counter(session.execute(select(ProcessInstance.accession_number).where(
            ProcessInstance.accession_number.like("ACC-SCALE-%"))).scalars())

    # No task completed twice: one audit event per completed task, one successful HTTP completion at most.
    assert max(completed_events.values()) == 1
    accepted = Counter(task_id for task_id, _, status in completions if status == 200)
    assert accepted and max(accepted.values()) == 1
    for task_id, username, status in completions:
        if status == 200:
            assert task_rows[task_id].status == "completed" and task_rows[task_id].ended_by == username
            assert completed_events[task_id] == 1
    # No timer fired twice, and timers did fire during the run.
    assert fired and max(fired.values()) == 1
    # No message lost.
    assert len(created) == CASES and all(stored_messages[case] == posted[case] for case in created)
    assert acks == [("AA", f"SCALE{n:03d}") for n in range(ORDERS)]
    assert sorted(f"SCALE{n:03d}" for n in range(ORDERS)) == sorted(c for c in inbound if c.startswith("SCALE"))
    assert orders == {f"ACC-SCALE-{n:03d}": 1 for n in range(ORDERS)}
    # Every case consistent: its open tasks and timers in the index tables are those of its workflow state.
    assert failed == []
    _check_index_matches_state(ctx)
    verify = subprocess.run([TELERAD, "audit", "verify", "--json"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"], verify.stdout + verify.stderr


def _check_index_matches_state(ctx) -> None:
    with ctx.read() as session:
        cases = session.execute(select(ProcessInstance.id, ProcessInstance.definition_id, ProcessInstance.state)
                                .where(ProcessInstance.status == "running")).all()
        open_tasks: dict[int, set[str]] = {}
        for instance_id, task_id in session.execute(select(Task.instance_id, Task.id).where(Task.status == "open")):
            open_tasks.setdefault(instance_id, set()).add(task_id)
        timers: dict[int, set[str]] = {}
        for instance_id, timer_id in session.execute(select(Timer.instance_id, Timer.id)):
            timers.setdefault(instance_id, set()).add(timer_id)
        assert cases
        for case_id, definition_id, state in cases:
            snapshot = ctx.runtime.load(state, bundle_of(ctx, session, definition_id)).snapshot()
            assert {t.task_id for t in snapshot.user_tasks} == open_tasks.get(case_id, set()), case_id
            assert {t.task_id for t in snapshot.timers} == timers.get(case_id, set()), case_id
