"""TELERAD_SQL_STATS: SQL counted per endpoint, including the writes that bypass SQLAlchemy; served only to a
loopback administrator, and only when the setting is on."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from engine.services import escalation, protocols
from engine.services.accounts import issue_api_token
from tests.demo_app import case_of, demo_ctx, open_task  # noqa: F401  (fixture)
from web.app import create_app
from web.cli.demo_data import demo_request
from web.config import Settings, SettingsError


def _app(demo_ctx, database_url, tmp_path, sql_stats):  # noqa: F811
    settings = replace(Settings.from_env({"TELERAD_INSTANCE_PATH": str(tmp_path / "instance")}),
                       database_url=database_url, sql_stats=sql_stats)
    return create_app(settings, demo_ctx)


def _frozen_cache_clocks(monkeypatch) -> None:
    """The escalation durations and the protocol catalogue are re-read when older than 2 s: on a loaded machine
    that happened inside the measured request now and then (6 transactions, not 5). With their clocks stopped,
    each is read once, at its first use, and the count below no longer depends on the machine's speed."""
    stopped = SimpleNamespace(monotonic=lambda: 0.0)
    monkeypatch.setattr(escalation, "time", stopped)
    monkeypatch.setattr(protocols, "time", stopped)


def test_completion_is_counted_with_its_driver_writes_and_one_commit(demo_ctx, database_url, tmp_path,  # noqa: F811
                                                                       monkeypatch):
    _frozen_cache_clocks(monkeypatch)
    app = _app(demo_ctx, database_url, tmp_path, True)
    client = app.test_client()
    radiologist = {"Authorization": f"Bearer {issue_api_token(demo_ctx, 'dr.legall', 'tests')}"}
    admin = {"Authorization": f"Bearer {issue_api_token(demo_ctx, 'admin', 'tests')}"}
    task_id = open_task(demo_ctx, case_of(demo_ctx, patient_name="KERMARREC YANN"), "accept_case")
    client.get("/api/v1/tasks", headers=radiologist)  # refreshes the token's last use (a write) first
    done = client.post(f"/api/v1/tasks/{task_id}/complete", json={"acceptance": "accept"}, headers=radiologist)
    assert done.status_code == 200
    stats = client.get("/debug/sql-stats", headers=admin).get_json()
    complete = stats["endpoints"]["api.complete"]
    assert complete["requests"] == 1 and complete["commits"] == 1
    # connections from the pool: the token check and the completion's read on the driver's cursor (unseen by
    # SQLAlchemy's begin event), the directory read of the radiologist's credentials (accept_case has the charter
    # role "acceptance": CH-3.1 at the Paris date), the write, and the directory read of the service task that
    # follows accept_case
    assert complete["transactions"] == 5
    # The case update and the index writes run on the driver's cursor, unseen by SQLAlchemy's events.
    assert complete["statements"] > complete["sqlalchemy_statements"] >= 3
    assert complete["cpu_ms"] > 0 and stats["endpoints"]["api.tasks"]["requests"] == 1
    assert stats["pid"] > 0 and stats["cpu_ms"] > 0


def test_stats_are_for_loopback_administrators_only(demo_ctx, database_url, tmp_path):  # noqa: F811
    app = _app(demo_ctx, database_url, tmp_path, True)
    client = app.test_client()
    admin = {"Authorization": f"Bearer {issue_api_token(demo_ctx, 'admin', 'tests')}"}
    clinician = {"Authorization": f"Bearer {issue_api_token(demo_ctx, 'dr.legall', 'tests')}"}
    assert client.get("/debug/sql-stats", headers=clinician).status_code == 404
    assert client.get("/debug/sql-stats").status_code == 404
    remote = client.get("/debug/sql-stats", headers=admin, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert remote.status_code == 404
    assert client.get("/debug/sql-stats", headers=admin).status_code == 200


def test_off_by_default(demo_ctx, database_url, tmp_path):  # noqa: F811
    app = _app(demo_ctx, database_url, tmp_path, Settings.from_env({}).sql_stats)
    admin = {"Authorization": f"Bearer {issue_api_token(demo_ctx, 'admin', 'tests')}"}
    assert app.test_client().get("/debug/sql-stats", headers=admin).status_code == 404
    assert Settings.from_env({"TELERAD_SQL_STATS": "1"}).sql_stats is True
    with pytest.raises(SettingsError, match="TELERAD_SQL_STATS"):
        Settings.from_env({"TELERAD_SQL_STATS": "maybe"})


def test_api_starts_any_deployed_process_and_names_an_unknown_one(demo_ctx, database_url, tmp_path):  # noqa: F811
    client = _app(demo_ctx, database_url, tmp_path, False).test_client()
    physician = {"Authorization": f"Bearer {issue_api_token(demo_ctx, 'dr.martin', 'tests')}"}
    unknown = client.post("/api/v1/cases", json={"process": "nope", "site_id": "ch-brest", "request": {}},
                          headers=physician)
    assert unknown.status_code == 404 and "nope" in unknown.get_json()["message"]
    created = client.post("/api/v1/cases", json={"process": "telediagnosis", "site_id": "ch-brest",
                                                 "request": demo_request()}, headers=physician)
    assert created.status_code == 201, created.get_json()
