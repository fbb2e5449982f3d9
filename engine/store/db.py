"""Database engines: SQLite tuned for a single machine, PostgreSQL pooled for several."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import Pool, QueuePool

from engine.store.sqlite_writer_lock import WriterLock

GENESIS_HASH = "0" * 64


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use the psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        # Last in, first out: a read takes the connection used last, whose page cache is still valid when no
        # other connection wrote since (SQLite drops a connection's cache after another's commit). With the
        # default first-in-first-out pool, the one-client HTTP benchmark made 35 page reads (pread calls,
        # counted with strace) per task completion; with LIFO, 2.
        if _pool_class(url, kwargs) is QueuePool:  # file databases; in-memory ones keep one connection per thread
            kwargs.setdefault("pool_use_lifo", True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        _tune_sqlite(engine)
        _checkpoint_in_background(engine)
        return engine
    options: dict[str, Any] = {"pool_size": 10, "max_overflow": 20, "pool_pre_ping": True}
    options.update(kwargs)
    return create_engine(url, **options)


def _pool_class(url: str, kwargs: dict[str, Any]) -> type[Pool]:
    parsed = make_url(url)
    dialect: Any = parsed.get_dialect()  # the dialect class; get_pool_class is a classmethod of DefaultDialect
    return kwargs.get("poolclass") or dialect.get_pool_class(parsed)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000",
                       "temp_store=MEMORY", "cache_size=-16000", "wal_autocheckpoint=0"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    # Writers queue before BEGIN IMMEDIATE on a lock of their own (engine.store.sqlite_writer_lock says why).
    writer_lock = WriterLock(_writer_lock_path(engine))
    event.listen(engine, "engine_disposed", lambda _engine: writer_lock.close())

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the write lock up front: no deadlock upgrading a read lock, and a clean queue.
        # Straight to the driver: this runs before every transaction, and SQLAlchemy's statement machinery
        # would cost more than the BEGIN itself.
        if connection.get_execution_options().get("telerad_readonly", False):
            connection.connection.driver_connection.execute("BEGIN")
            return
        writer_lock.acquire()
        try:
            connection.connection.driver_connection.execute("BEGIN IMMEDIATE")
        except BaseException:
            writer_lock.release()
            raise
        connection.info["telerad_writer_lock"] = True

    # These events run before SQLAlchemy asks the driver to commit or roll back; the writer ends its transaction
    # here so the lock is released only once SQLite's own lock is (the driver's call that follows is a no-op).
    @event.listens_for(engine, "commit")
    def _on_commit(connection: Any) -> None:
        if connection.info.pop("telerad_writer_lock", False):
            try:
                connection.connection.driver_connection.commit()
            finally:
                writer_lock.release()

    @event.listens_for(engine, "rollback")
    def _on_rollback(connection: Any) -> None:
        if connection.info.pop("telerad_writer_lock", False):
            try:
                connection.connection.driver_connection.rollback()
            finally:
                writer_lock.release()

    # Safety net: a connection going back to the pool (or thrown away) never keeps the lock.
    @event.listens_for(engine, "checkin")
    @event.listens_for(engine, "invalidate")
    def _on_release(_dbapi_connection: Any, record: Any, *_args: Any) -> None:
        if record is not None and record.info.pop("telerad_writer_lock", False):
            writer_lock.release()


def _database_file(engine: Engine) -> str | None:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return str(Path(database).resolve())


def _writer_lock_path(engine: Engine) -> str | None:
    path = _database_file(engine)
    return None if path is None else path + "-writer.lock"


def _checkpoint_in_background(engine: Engine) -> None:
    """File databases only: their WAL is checkpointed by engine.store.sqlite_checkpoint (see there why)."""
    from engine.store.sqlite_checkpoint import CHECKPOINTER

    path = _database_file(engine)
    if path is None:
        return
    registered = False

    # Registered while the engine has connections; dispose() (which may be called again, or followed by new
    # connections) unregisters it once.
    def _on_connect(_dbapi_connection: Any, _record: Any) -> None:
        nonlocal registered
        if not registered:
            registered = True
            CHECKPOINTER.add(path)

    def _on_dispose(_engine: Engine) -> None:
        nonlocal registered
        if registered:
            registered = False
            CHECKPOINTER.remove(path)

    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "engine_disposed", _on_dispose)


def session_factories(engine: Engine) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
    """(writer, reader) session factories sharing one pool."""
    writer = sessionmaker(engine, expire_on_commit=False)
    reader = sessionmaker(engine.execution_options(telerad_readonly=True), expire_on_commit=False)
    return writer, reader


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
