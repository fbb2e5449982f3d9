"""Finished tasks are encoded once per workflow object; the saved state stays exactly what a fresh encoding gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from SpiffWorkflow.task import TaskState

from engine.runtime import Runtime, bundles_from_library
from engine.runtime.serializer import WorkflowCodec

DIAGRAM = Path(__file__).parents[1] / "data" / "bpmn" / "bench_ten_tasks.bpmn"


@pytest.fixture
def started():
    runtime = Runtime()
    bundle = bundles_from_library({DIAGRAM.name: DIAGRAM.read_text(encoding="utf-8")})[0]
    return runtime, bundle, runtime.start(bundle, {"patient": {"name": "Durand"}})


def _step(live) -> None:
    live.complete_user_task(live.snapshot().user_tasks[0].task_id, {"score": 1, "note": "ok"}, "someone")


def test_every_save_of_a_running_case_equals_a_fresh_encoding(started, monkeypatch):
    monkeypatch.delenv("TELERAD_VERIFY_STATE_CACHE", raising=False)
    runtime, bundle, live = started
    cached, plain = WorkflowCodec(), WorkflowCodec(fast_json=False)
    reused = 0
    for _ in range(10):
        _step(live)
        reused += sum(1 for t in live.workflow.get_tasks(state=TaskState.FINISHED_MASK)
                      if hasattr(t, "_telerad_json"))
        assert json.loads(cached.dumps(live.workflow)) == json.loads(plain.dumps(live.workflow))
    assert live.snapshot().completed
    assert reused > 20  # the cache was really used, not bypassed
    restored = runtime.load(cached.dumps(live.workflow), bundle)
    assert restored.snapshot().completed


def test_a_finished_task_changed_behind_the_cache_is_detected_in_verify_mode(started, monkeypatch):
    monkeypatch.setenv("TELERAD_VERIFY_STATE_CACHE", "1")
    _runtime, _bundle, live = started
    codec = WorkflowCodec()
    _step(live)
    codec.dumps(live.workflow)
    finished = next(t for t in live.workflow.get_tasks(state=TaskState.COMPLETED) if t.task_spec.manual)
    finished.data["note"] = "changed in place"
    with pytest.raises(AssertionError, match="changed after it ended"):
        codec.dumps(live.workflow)


def test_values_orjson_cannot_encode_fall_back_to_the_json_module(started):
    runtime, bundle, live = started
    live.complete_user_task(live.snapshot().user_tasks[0].task_id, {"score": 2**70, "note": "big"}, "someone")
    codec = WorkflowCodec()
    text = codec.dumps(live.workflow)
    assert str(2**70) in text
    assert runtime.load(text, bundle).case_data()["score"] == 2**70
