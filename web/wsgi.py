"""WSGI entry points for servers other than `telerad run`'s waitress.

`telerad run --workers N` serves the app with Granian (web.ops.servers: N worker processes, each with its own
app, engine and connection pool, loading `create_app` below). Other WSGI servers can load `web.wsgi:create_app`
as an app factory, e.g. `granian --interface wsgi --factory --workers 4 --blocking-threads 8 web.wsgi:create_app`.
"""

from __future__ import annotations

from flask import Flask

from web.app import create_app as _create_app
from web.config import Settings
from web.ops.heap import settle_startup_objects


def create_app() -> Flask:
    """The app from the TELERAD_* environment (web only: timers and listeners run in `telerad worker`)."""
    app = _create_app(Settings.from_env())
    settle_startup_objects()
    return app
