"""WSGI entry points for servers other than `telerad run`'s waitress.

`telerad run --workers N` serves the app with gunicorn (N pre-forked processes, each with its own app, engine
and connection pool, built after the fork). Other servers can load `web.wsgi:create_app()` as an app factory,
e.g. `gunicorn --workers 4 --worker-class gthread --threads 8 'web.wsgi:create_app()'`.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from web.app import create_app as _create_app
from web.config import Settings
from web.heap import settle_startup_objects


def create_app() -> Flask:
    """The app from the TELERAD_* environment (web only: timers and listeners run in `telerad worker`)."""
    app = _create_app(Settings.from_env())
    settle_startup_objects()
    return app


class GunicornServer:
    """gunicorn configured in code: gthread workers, the app built in each worker after the fork."""

    def __init__(self, settings: Settings, host: str, port: int, workers: int, threads: int):
        from gunicorn.app.base import BaseApplication

        outer = self

        class _Application(BaseApplication):  # type: ignore[misc]
            def load_config(self) -> None:
                for key, value in outer.options().items():
                    self.cfg.set(key, value)

            def load(self) -> Flask:
                app = _create_app(settings)
                settle_startup_objects()
                return app

        self._bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._workers, self._threads = workers, threads
        self._log_level = settings.log_level.lower()
        self._application = _Application()  # reads options() now

    def options(self) -> dict[str, Any]:
        return {"bind": [self._bind], "workers": self._workers, "worker_class": "gthread", "threads": self._threads,
                "preload_app": False, "proc_name": "telerad-web", "loglevel": self._log_level,
                "graceful_timeout": 20, "timeout": 120}

    def run(self) -> None:
        self._application.run()
