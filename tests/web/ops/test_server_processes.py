"""What a server process does once its app is built, and how `telerad run --workers N` configures Granian."""

from __future__ import annotations

import gc

from web.config import Settings
from web.ops.servers import GranianServer


def test_the_wsgi_factory_moves_startup_objects_out_of_the_collectors_sight(tmp_path, monkeypatch):
    from web import wsgi

    monkeypatch.setenv("TELERAD_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("TELERAD_INSTANCE_PATH", str(tmp_path / "instance"))
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        app = wsgi.create_app()
        # the app and everything loaded to build it is frozen: full collections no longer walk it
        assert gc.get_freeze_count() > 10_000
        assert app.extensions["telerad"].ctx is not None
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual


def test_granian_runs_the_factory_in_each_worker_with_the_threads_asked_for():
    settings = Settings.from_env({"TELERAD_LOG_LEVEL": "WARNING"})
    options = GranianServer(settings, "127.0.0.1", 8123, workers=3, threads=6).options()
    assert options["target"] == "web.wsgi:create_app" and options["factory"] is True
    assert options["interface"] == "wsgi"
    assert (options["address"], options["port"], options["workers"], options["blocking_threads"]) == \
        ("127.0.0.1", 8123, 3, 6)
    assert options["log_level"] == "warning"
