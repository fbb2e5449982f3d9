"""benchmarks/http_baseline_app.py answers the HTTP benchmark's calls as the Telerad API does, with no work behind
them: a case yields nine tasks to complete, one at a time, seen only with the token that created the case."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _baseline_app():
    spec = importlib.util.spec_from_file_location("http_baseline_app", ROOT / "benchmarks" / "http_baseline_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.create_app()


def test_a_case_runs_nine_tasks_like_the_benchmark_diagram():
    client = _baseline_app().test_client()
    mine, other = {"Authorization": "Bearer a"}, {"Authorization": "Bearer b"}
    created = client.post("/api/v1/cases", json={"process": "bench_ten_tasks"}, headers=mine)
    assert created.status_code == 201
    case_id = created.get_json()["id"]
    completed = 0
    while tasks := client.get("/api/v1/tasks", headers=mine).get_json()["tasks"]:
        assert [t["case_id"] for t in tasks] == [case_id]
        assert client.get("/api/v1/tasks", headers=other).get_json()["tasks"] == []
        task_id = tasks[0]["id"]
        assert client.get(f"/api/v1/tasks/{task_id}", headers=other).status_code == 404
        fetched = client.get(f"/api/v1/tasks/{task_id}", headers=mine).get_json()
        assert fetched["form"] == "bench_step.schema.json" and fetched["schema"]["type"] == "object"
        done = client.post(f"/api/v1/tasks/{task_id}/complete", json={"score": 5, "note": "ok"}, headers=mine)
        assert done.get_json() == {"case_id": case_id, "completed": task_id}
        assert client.post(f"/api/v1/tasks/{task_id}/complete", json={}, headers=mine).status_code == 404
        completed += 1
    assert completed == 9
