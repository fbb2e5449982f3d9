"""The queue SQLite writers wait in: a thread lock, then an advisory lock on a file beside the database.

SQLite lets one writer in at a time and makes the others wait in its busy handler, which polls with sleeps
of up to 100 ms; writers queued there wait far longer than the transactions they wait for (HTTP
benchmark, 20 clients: completion p99 1.7 s with one process, 1.1 s with two). So writers queue before
BEGIN IMMEDIATE instead: threads of one process on a Python lock, processes of one machine (`telerad run
--workers N`, `telerad worker`) on `flock` of `<database>-writer.lock`, whose waiters the kernel wakes as
soon as the holder lets go. SQLite's own busy handler still covers writers that do not take this lock
(the sqlite3 shell, a backup tool).

A writer waits as long as the transaction ahead of it lasts (there is no timeout: a write transaction holds
SQLite's own write lock for the same time anyway). A process that exits, however it ends, lets go of the
lock; a forked child closes its copy of the file and starts with a fresh thread lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import weakref

log = logging.getLogger(__name__)
_LOCKS: weakref.WeakSet[WriterLock] = weakref.WeakSet()


class WriterLock:
    """Held from BEGIN IMMEDIATE until COMMIT or ROLLBACK; `path` None (in-memory databases): threads only."""

    def __init__(self, path: str | None):
        self._threads = threading.Lock()
        self._path = path
        self._fd: int | None = None
        self._pid = 0  # the process that opened _fd: a forked child opens its own (flock is per open file)
        _LOCKS.add(self)

    def _after_fork_in_child(self) -> None:
        # The child's copy of the thread lock may have been taken by a parent thread that does not exist here,
        # and its copy of the file would keep the parent's flock alive after the parent exits.
        self._threads = threading.Lock()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def acquire(self) -> None:
        self._threads.acquire()
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        try:
            if self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _file(self) -> int | None:
        if self._path is None:
            return None
        if self._fd is None or self._pid != os.getpid():
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as err:  # e.g. a read-only folder: SQLite's busy handler alone, as before
                log.warning("no writer lock file %s (%s): writers of several processes wait in SQLite", self._path,
                            err)
                self._path = None
                return None
            self._pid = os.getpid()
        return self._fd

    def close(self) -> None:
        """Closes the lock file (an engine's dispose) unless a writer holds it; a later writer opens it again."""
        if not self._threads.acquire(blocking=False):
            return
        try:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None
        finally:
            self._threads.release()


def _reset_in_forked_child() -> None:
    for lock in list(_LOCKS):
        lock._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_in_forked_child)
