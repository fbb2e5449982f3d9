"""WAL checkpoints of SQLite files, off the request path.

With SQLite's automatic checkpoint, the commit that crosses 1,000 WAL pages copies them into the database
and syncs both files before returning: about 1 commit in 80 of a task completion then took 17-21 ms instead
of 0.35 ms (a quarter of all commit time, engine benchmark). Telerad turns the automatic checkpoint off on its
connections and one daemon thread per process runs a PASSIVE checkpoint of every open database file every
second instead: it never waits for readers or writers, and a busy file is simply tried again a second later.
On an application crash nothing changes (the WAL is replayed at the next open); the window of commits an
operating-system crash could lose with synchronous=NORMAL is bounded by the interval.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from pathlib import Path

INTERVAL_S = 1.0


class Checkpointer:
    def __init__(self, interval_s: float = INTERVAL_S):
        self._interval = interval_s
        self._paths: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._checkpointing = threading.Lock()  # one checkpoint at a time from this process
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, path: str) -> None:
        with self._lock:
            self._paths[path] += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
                self._thread.start()

    def remove(self, path: str) -> None:
        """Called when an engine on `path` is disposed. After the last one, the whole WAL is in the database file
        (TRUNCATE checkpoint, after any round of the thread in progress) and the thread no longer opens the file,
        so it can be copied like any closed SQLite database."""
        with self._lock:
            self._paths[path] -= 1
            if self._paths[path] > 0:
                return
            del self._paths[path]
        with self._checkpointing:
            checkpoint(path, final=True)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            with self._lock:
                paths = list(self._paths)
            for path in paths:
                with self._checkpointing:
                    with self._lock:
                        if path not in self._paths:
                            continue  # its last engine was disposed meanwhile
                    if not checkpoint(path):
                        with self._lock:
                            self._paths.pop(path, None)  # the file is gone


def checkpoint(path: str, final: bool = False) -> bool:
    """One PASSIVE checkpoint (or, `final`, a TRUNCATE one that waits up to 30 s for readers and writers);
    False when the file no longer exists."""
    if not Path(path).exists():
        return False
    try:
        connection = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=30 if final else 0.1,
                                     isolation_level=None)
    except sqlite3.Error:
        return Path(path).exists()
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)" if final else "PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error:
        pass  # busy or locked: the next round will do it
    finally:
        connection.close()
    return True


CHECKPOINTER = Checkpointer()
