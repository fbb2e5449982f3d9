"""Everything a use case needs, built once per process and passed explicitly."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.ports import Clock, Directory
from engine.runtime import Bundle, LiveWorkflow, Runtime, Snapshot
from engine.services.keyring import KeyRing
from engine.store.driver import DriverReader
from forms import FormRegistry


@dataclass
class CachedWorkflow:
    version: int
    live: LiveWorkflow
    snapshot: Snapshot


class LiveCache:
    """Workflows kept in memory between requests, valid only while the instance's version is unchanged.

    An entry is taken out while a use case works on it and put back only after its commit, so a failed
    transaction never leaves a half-changed workflow behind and two threads never share one object.
    """

    def __init__(self, size: int = 512):
        self._size = size
        self._items: dict[int, CachedWorkflow] = {}
        self._lock = threading.Lock()

    def take(self, instance_id: int, version: int) -> CachedWorkflow | None:
        with self._lock:
            entry = self._items.pop(instance_id, None)
        return entry if entry is not None and entry.version == version else None

    def put(self, instance_id: int, entry: CachedWorkflow) -> None:
        if entry.snapshot.completed:
            # A finished case takes no more steps: keeping it would only push running cases out and hold memory.
            with self._lock:
                self._items.pop(instance_id, None)
            return
        with self._lock:
            if len(self._items) >= self._size:
                self._items.pop(next(iter(self._items)))
            self._items[instance_id] = entry

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass
class EngineContext:
    engine: Engine
    writer: sessionmaker[Session]
    reader: sessionmaker[Session]
    runtime: Runtime
    forms: FormRegistry
    clock: Clock
    live_cache: LiveCache = field(default_factory=LiveCache)
    bundles: dict[int, Bundle] = field(default_factory=dict)  # definition id -> bundle (immutable)
    # Called inside the transaction of every case save with (session, saved InstanceRow, case data); must be
    # idempotent. Integrations use it to queue work atomically with the change (e.g. an HL7 report to send).
    save_hooks: list[Callable[..., None]] = field(default_factory=list)
    # Called inside the transaction that adds a signed addendum to a released report, with (session, case
    # InstanceRow, case data, the case's addenda oldest first as engine.services.report_addenda.Addendum): the
    # report sent again, corrected, to the site's systems.
    addendum_hooks: list[Callable[..., None]] = field(default_factory=list)
    # Read by the charter gates (engine.services.charter_gates): radiologists' credentials, protocol catalogue.
    directory: Directory | None = None
    protocol_catalogue: Callable[[], Any] | None = None
    # The keys kept outside the database (engine.services.keyring): audit MACs, secrets at rest, signed heads.
    keys: KeyRing = field(default_factory=KeyRing.development)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed by the caller, rolled back on any error."""
        session = self.writer()
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def driver_read(self) -> Iterator[DriverReader]:
        """A read transaction on a pooled connection without a Session, for DriverQuery statements."""
        connection = self.engine.raw_connection()
        try:
            driver_connection: Any = connection.driver_connection
            # SQLite (driver in autocommit mode): one snapshot for all the reads. PostgreSQL: READ COMMITTED,
            # each statement sees what was committed before it, as in every Session.
            if self.engine.dialect.name == "sqlite":
                driver_connection.execute("BEGIN")
            yield DriverReader(driver_connection, self.engine.dialect)
        finally:
            connection.close()  # back to the pool, which rolls the transaction back

    @contextmanager
    def read(self) -> Iterator[Session]:
        session = self.reader()
        try:
            yield session
        finally:
            session.close()  # ends the transaction; loaded objects stay readable, detached
