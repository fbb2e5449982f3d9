"""/healthz reports the database and the scheduler."""

from __future__ import annotations

from dataclasses import replace

from web.app import create_app
from web.config import Settings
from web.extensions import telerad
from web.ops.scheduler import TimerScheduler


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from engine.store.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def make_app(database_url, tmp_path, ctx=None):
    settings = replace(Settings.from_env({"TELERAD_INSTANCE_PATH": str(tmp_path / "instance")}),
                       database_url=database_url)
    return create_app(settings, ctx)


def test_healthz_reports_database_revision(ctx, database_url, tmp_path):
    response = make_app(database_url, tmp_path, ctx).test_client().get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True and body["database"]["revision"] == head_revision()
    assert body["scheduler"] == {"expected": False, "running": False}
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_healthz_is_degraded_on_an_unmigrated_database(tmp_path):
    response = make_app(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path).test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"]["ok"] is False


def test_healthz_shows_the_scheduler_running_and_ticking(ctx, database_url, tmp_path):
    app = make_app(database_url, tmp_path, ctx)
    ext = telerad(app)
    ext.scheduler = TimerScheduler(ctx, interval=3600)
    ext.scheduler.tick()  # one synchronous tick, no sleeping
    ext.scheduler.start()
    try:
        body = app.test_client().get("/healthz").get_json()
    finally:
        ext.scheduler.shutdown()
    assert body["status"] == "ok"
    assert body["scheduler"]["running"] is True and body["scheduler"]["last_tick"] is not None
    response = app.test_client().get("/healthz")
    assert response.status_code == 503  # expected but stopped


def test_the_engine_library_logs_only_warnings_unless_debugging(ctx, database_url, tmp_path):
    import logging

    spiff = logging.getLogger("spiff")
    try:
        spiff.setLevel(logging.NOTSET)
        make_app(database_url, tmp_path, ctx)  # TELERAD_LOG_LEVEL defaults to INFO
        assert not logging.getLogger("spiff.task").isEnabledFor(logging.INFO)  # no line per task state change
        assert logging.getLogger("spiff.task").isEnabledFor(logging.WARNING)
        spiff.setLevel(logging.NOTSET)
        settings = replace(Settings.from_env({"TELERAD_INSTANCE_PATH": str(tmp_path / "debug"),
                                              "TELERAD_LOG_LEVEL": "DEBUG"}), database_url=database_url)
        create_app(settings, ctx)
        assert spiff.level == logging.NOTSET
    finally:
        spiff.setLevel(logging.NOTSET)
