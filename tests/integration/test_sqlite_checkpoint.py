"""SQLite: commits never run the WAL checkpoint themselves; a background thread of the process does."""

from __future__ import annotations

import os
import time

from sqlalchemy import text

from engine.store.db import make_engine


def test_the_wal_is_copied_into_the_database_by_the_background_checkpoint(tmp_path):
    path = tmp_path / "t.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
            connection.execute(text("CREATE TABLE blob (id INTEGER PRIMARY KEY, body TEXT)"))
        before = os.path.getsize(path)
        for _batch in range(8):  # 2 MB through the WAL, far beyond one automatic checkpoint (1,000 pages)
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO blob (body) VALUES (:b)"), [{"b": "x" * 4000}] * 64)
        deadline = time.monotonic() + 10
        while os.path.getsize(path) <= before + 1_000_000 and time.monotonic() < deadline:
            time.sleep(0.1)  # waiting for the checkpoint thread (every second), not measuring speed
        assert os.path.getsize(path) > before + 1_000_000
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM blob")).scalar() == 512
    finally:
        engine.dispose()
