"""Files at rest: the instance folder and every file a Telerad process creates (SQLite database and WAL,
attachments, DICOM files, previews, secret key) are for the service account only (issue 16: they were
0644/0755)."""

from __future__ import annotations

import os
import stat
from dataclasses import replace

import pytest
from sqlalchemy import create_engine, text

from web.config import Settings


@pytest.fixture
def restore_umask():
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.charter("CH-8.1", negative=True)
def test_prepared_instance_and_everything_created_after_are_private(tmp_path, restore_umask):
    os.umask(0o022)  # what a shell usually gives
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    (instance / "old.txt").write_text("x")
    settings = replace(Settings.from_env({"TELERAD_INSTANCE_PATH": str(instance)}),
                       database_url=f"sqlite:///{tmp_path / 'outside.db'}")
    settings.prepare()
    assert mode(instance) == 0o700  # an existing folder is closed too: its older files are out of reach
    assert mode(instance / "secret_key") == 0o600
    (instance / "dicom").mkdir()
    (instance / "dicom" / "image.dcm").write_bytes(b"DICM")
    assert mode(instance / "dicom") == 0o700 and mode(instance / "dicom" / "image.dcm") == 0o600
    engine = create_engine(settings.database_url)
    with engine.begin() as connection:
        connection.execute(text("PRAGMA journal_mode=WAL"))
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
        modes = {name: mode(tmp_path / name) for name in ("outside.db", "outside.db-wal")}  # WAL open meanwhile
    engine.dispose()
    assert modes == {"outside.db": 0o600, "outside.db-wal": 0o600}
