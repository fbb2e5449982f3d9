"""Opt-in counters of the SQL a server process sends, per endpoint (TELERAD_SQL_STATS=1; benchmarks only).

Every statement is counted on the DBAPI cursor itself (a cursor subclass installed when a connection is
opened), so statements that bypass SQLAlchemy's execution machinery (engine.store.driver runs the hot
writes on the driver's cursor, and the SQLite BEGIN goes straight to the driver connection) are counted
like the others. SQLAlchemy's own `before_cursor_execute` event is counted apart (`sqlalchemy_statements`),
its `commit` and `rollback` events count commits and rollbacks, and connections taken from the pool count
transactions (one each: a Session's, or a read on the driver's cursor, `EngineContext.driver_read`, which
SQLAlchemy's `begin` event does not see). Counts are kept per Flask endpoint of
the request that caused them (plus `(background)` for the scheduler and listener threads), with the CPU
time of the request's thread.

`GET /debug/sql-stats` returns them as JSON; the route exists only when the setting is on, answers only
a loopback peer presenting an administrator's bearer token, and reports this process alone (one process
of several behind `telerad run --workers N`). Nothing is recorded when the setting is off.
"""

from __future__ import annotations

import ipaddress
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, Flask, abort, current_app, jsonify, request
from sqlalchemy import Engine, event

from engine.services import accounts
from web.extensions import telerad

BACKGROUND = "(background)"
_FIELDS = ("requests", "statements", "sqlalchemy_statements", "transactions", "commits", "rollbacks")


_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "END")


def _is_statement(sql: Any) -> bool:
    """Transaction control is counted by the SQLAlchemy events (`transactions`, `commits`), not here: psycopg
    sends its BEGIN itself while the SQLite driver gets ours on a cursor, and both must count alike."""
    head = sql.lstrip()[:8].upper() if isinstance(sql, str) else ""
    return not head.startswith(_TRANSACTION_CONTROL)


class _Bucket:
    __slots__ = (*_FIELDS, "cpu_s")

    def __init__(self) -> None:
        for name in _FIELDS:
            setattr(self, name, 0)
        self.cpu_s = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in _FIELDS}, "cpu_ms": round(1000 * self.cpu_s, 3)}


class SqlStats:
    """Counts of one process, grouped by endpoint."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self._totals: dict[str, _Bucket] = {}

    def _current(self) -> _Bucket | None:
        return getattr(self._local, "bucket", None)

    def count(self, field: str) -> None:
        bucket = self._current()
        if bucket is not None:  # a request thread: its own bucket, merged when the request ends
            setattr(bucket, field, getattr(bucket, field) + 1)
            return
        with self._lock:
            total = self._totals.setdefault(BACKGROUND, _Bucket())
            setattr(total, field, getattr(total, field) + 1)

    def begin_request(self) -> None:
        self._local.bucket = _Bucket()

    def end_request(self, endpoint: str, cpu_s: float) -> None:
        bucket = self._current()
        self._local.bucket = None
        if bucket is None:
            return
        with self._lock:
            total = self._totals.setdefault(endpoint, _Bucket())
            total.requests += 1
            for name in _FIELDS[1:]:
                setattr(total, name, getattr(total, name) + getattr(bucket, name))
            total.cpu_s += cpu_s

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            endpoints = {name: bucket.as_dict() for name, bucket in sorted(self._totals.items())}
        return {"pid": os.getpid(), "cpu_ms": round(1000 * time.process_time(), 3), "rss_bytes": _rss_bytes(),
                "endpoints": endpoints}


def _rss_bytes() -> int | None:
    """Current resident set size (Linux /proc); None elsewhere."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _counting_sqlite(base: type[sqlite3.Connection], stats: SqlStats) -> type[sqlite3.Connection]:
    class Cursor(sqlite3.Cursor):
        def execute(self, sql: str, parameters: Any = ()) -> Any:
            if _is_statement(sql):
                stats.count("statements")
            return super().execute(sql, parameters)

        def executemany(self, sql: str, parameters: Iterable[Any]) -> Any:
            stats.count("statements")
            return super().executemany(sql, parameters)

    class Connection(base):  # type: ignore[misc, valid-type]
        def cursor(self, factory: Callable[..., sqlite3.Cursor] | None = None) -> Any:
            return super().cursor(factory or Cursor)

        def execute(self, sql: str, parameters: Any = ()) -> Any:
            return self.cursor().execute(sql, parameters)

    return Connection


def _counting_psycopg(stats: SqlStats) -> type:
    import psycopg

    class Cursor(psycopg.Cursor):  # type: ignore[type-arg]
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            if _is_statement(query):
                stats.count("statements")
            return super().execute(query, params, **kwargs)

        def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> Any:
            stats.count("statements")
            return super().executemany(query, params_seq, **kwargs)

    return Cursor


def instrument(engine: Engine, stats: SqlStats) -> None:
    """Count what this engine sends from now on (pooled connections opened before are dropped)."""
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "do_connect")
        def _sqlite_connect(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
            cparams["factory"] = _counting_sqlite(cparams.get("factory") or sqlite3.Connection, stats)
    elif engine.dialect.driver == "psycopg":
        cursor = _counting_psycopg(stats)

        @event.listens_for(engine, "do_connect")
        def _psycopg_connect(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
            cparams["cursor_factory"] = cursor
    else:
        raise ValueError(f"TELERAD_SQL_STATS does not support the {engine.dialect.name} driver")

    event.listen(engine, "before_cursor_execute", lambda *_args: stats.count("sqlalchemy_statements"))
    event.listen(engine, "checkout", lambda *_args: stats.count("transactions"))
    event.listen(engine, "commit", lambda _conn: stats.count("commits"))
    event.listen(engine, "rollback", lambda _conn: stats.count("rollbacks"))
    engine.dispose()


class _Middleware:
    """Gives each request its own bucket and the CPU time of its thread (`time.thread_time`)."""

    def __init__(self, app: Any, stats: SqlStats):
        self.app = app
        self.stats = stats

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.stats.begin_request()
        started = time.thread_time()
        try:
            # The body is built before returning (Flask JSON and templates), so it is counted too.
            return self.app(environ, start_response)
        finally:
            self.stats.end_request(environ.get("telerad.endpoint") or "(unmatched)", time.thread_time() - started)


bp = Blueprint("sql_stats", __name__)


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@bp.get("/debug/sql-stats")
def sql_stats() -> Any:
    if not _loopback(request.remote_addr):
        abort(404)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    profile = accounts.profile_for_token(telerad(current_app).ctx, token.strip()) if scheme.lower() == "bearer" \
        else None
    if profile is None or "administrator" not in profile.roles:
        abort(404)
    return jsonify(current_app.extensions["telerad_sql_stats"].snapshot())


def install(app: Flask) -> SqlStats:
    """Count SQL per endpoint in this app's process and serve the counts (see the module docstring)."""
    stats = SqlStats()
    instrument(telerad(app).ctx.engine, stats)
    app.extensions["telerad_sql_stats"] = stats
    app.wsgi_app = _Middleware(app.wsgi_app, stats)  # type: ignore[method-assign]

    @app.before_request
    def _name_endpoint() -> None:
        request.environ["telerad.endpoint"] = request.endpoint or "(unmatched)"

    app.register_blueprint(bp)
    return stats
