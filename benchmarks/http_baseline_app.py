"""The floor of benchmarks/http_tasks.py: its four API calls answered by a bare Flask app with no work behind them.

Not part of Telerad. The HTTP benchmark serves this app with the same server, processes and threads as
Telerad and drives it with the same clients, in the same run, so that its figures can be read as ratios
against what HTTP, Flask and the benchmark's own clients cost on the machine at that moment (a shared VM
varies by ±20% from one minute to the next).

Same routes, methods, status codes and JSON shapes as the Telerad API for this workload: a case has ten
tasks, the create call completes the first one, each task is open until completed, then the next one opens.
Each bearer token sees its own tasks only (in Telerad each benchmark client is its own requester). No
database, no engine, no validation, no authentication: state is a dictionary in each server process (a
client's keep-alive connection stays on one process).

Served by the benchmark as `granian --interface wsgi --factory http_baseline_app:create_app` (or waitress
with one process), from the benchmarks folder.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, abort, jsonify, request

FORM = Path(__file__).resolve().parents[1] / "tests" / "data" / "forms" / "bench_step.schema.json"
TASKS_PER_CASE = 10


def create_app() -> Flask:
    app = Flask("telerad_http_baseline")
    schema = json.loads(FORM.read_text(encoding="utf-8"))
    lock = threading.Lock()
    numbers = itertools.count(1)
    open_tasks: dict[str, dict[str, Any]] = {}

    def owner() -> str:
        return request.headers.get("Authorization", "")

    def open_task(case_id: str, number: int) -> None:
        task_id = str(uuid.uuid4())
        open_tasks[task_id] = {
            "id": task_id, "case_id": case_id, "task": f"step_{number}", "title": f"Étape {number}",
            "role": "requester", "form": FORM.name, "site_id": "bench-site", "assignee": None, "urgency_rank": 2,
            "due_at": None, "created_at": datetime.now(UTC).isoformat(), "owner": owner(), "number": number}

    def public(task: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in task.items() if k not in ("owner", "number")}

    def mine(task_id: str) -> dict[str, Any]:
        task = open_tasks.get(task_id)
        if task is None or task["owner"] != owner():
            abort(404)
        return task

    @app.post("/api/v1/cases")
    def create_case() -> Any:
        request.get_json()
        case_id = f"{os.getpid()}-{next(numbers)}"
        with lock:
            open_task(case_id, 2)  # the request form was the first task
        return jsonify({"id": case_id}), 201

    @app.get("/api/v1/tasks")
    def tasks() -> Any:
        me = owner()
        with lock:
            listed = [public(t) for t in open_tasks.values() if t["owner"] == me]
        return jsonify({"tasks": listed})

    @app.get("/api/v1/tasks/<task_id>")
    def task(task_id: str) -> Any:
        with lock:
            found = public(mine(task_id))
        return jsonify({**found, "data": {}, "schema": schema})

    @app.post("/api/v1/tasks/<task_id>/complete")
    def complete(task_id: str) -> Any:
        request.get_json()
        with lock:
            done = mine(task_id)
            del open_tasks[task_id]
            if done["number"] < TASKS_PER_CASE:
                open_task(done["case_id"], done["number"] + 1)
        return jsonify({"case_id": done["case_id"], "completed": task_id})

    return app
