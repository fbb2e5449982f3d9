"""Writers of several processes on one SQLite file queue on the writer lock file, not in SQLite's busy handler."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import text

from engine.store.db import make_engine
from engine.store.sqlite_writer_lock import WriterLock

HOLDER = """
import sys
from sqlalchemy import text
from engine.store.db import make_engine
engine = make_engine(sys.argv[1])
with engine.connect() as connection:
    with connection.begin():  # BEGIN IMMEDIATE after the writer lock
        connection.execute(text("INSERT INTO note (author) VALUES ('holder')"))
        print("holding", flush=True)
        sys.stdin.readline()
engine.dispose()
"""


def _lock_is_free(path: str) -> bool:
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def test_a_writer_in_another_process_holds_the_lock_file_and_this_one_waits_for_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    lock_path = str(tmp_path / "shared.db") + "-writer.lock"
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE note (id INTEGER PRIMARY KEY, author TEXT)"))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        assert not _lock_is_free(lock_path)  # held for the whole transaction of the other process
        finished = threading.Event()

        def write() -> None:
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO note (author) VALUES ('waiter')"))
            finished.set()

        writer = threading.Thread(target=write)
        writer.start()
        assert not finished.wait(0.5)  # queued behind the other process
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert finished.wait(10)  # woken when the other process commits
        writer.join()
        assert holder.wait(10) == 0
    finally:
        holder.kill()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT author FROM note ORDER BY id")).scalars().all() == ["holder", "waiter"]
    assert _lock_is_free(lock_path)
    engine.dispose()


def _try_in_child(lock: WriterLock, channel) -> None:  # runs in a forked child
    channel.recv()  # the parent holds the lock now
    got = threading.Event()

    def take() -> None:
        lock.acquire()
        got.set()

    threading.Thread(target=take, daemon=True).start()
    channel.send(got.wait(0.5))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_a_forked_process_opens_its_own_lock_file_description(tmp_path):
    # flock belongs to the open file description: a child reusing the descriptor its parent opened would "get"
    # the lock its parent holds. The lock file is opened again in each process.
    lock = WriterLock(str(tmp_path / "x.db-writer.lock"))
    lock.acquire()  # opens the file in the parent
    lock.release()
    parent_end, child_end = multiprocessing.Pipe()
    child = multiprocessing.get_context("fork").Process(target=_try_in_child, args=(lock, child_end))
    child.start()
    lock.acquire()
    try:
        parent_end.send("go")
        assert parent_end.poll(10)
        assert parent_end.recv() is False  # the child waits while the parent holds the lock
    finally:
        lock.release()
        child.kill()
        child.join()
    started = time.monotonic()
    lock.acquire()  # free again for this process
    lock.release()
    assert time.monotonic() - started < 1
    lock.close()


def _wait_then_take_in_child(lock: WriterLock, channel) -> None:  # runs in a forked child
    got = threading.Event()

    def take() -> None:
        lock.acquire()
        got.set()
        lock.release()

    threading.Thread(target=take, daemon=True).start()
    channel.send(got.wait(0.5))  # while the parent holds the lock
    channel.recv()  # the parent let go
    channel.send(got.wait(10))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_a_process_forked_while_the_lock_is_held_waits_for_the_holder_then_takes_it(tmp_path):
    # The child's copy of the thread lock is taken (by a thread that does not exist in the child) and its copy
    # of the file shares the parent's flock: both are replaced at fork, so the child queues like any process.
    lock = WriterLock(str(tmp_path / "x.db-writer.lock"))
    lock.acquire()
    parent_end, child_end = multiprocessing.Pipe()
    child = multiprocessing.get_context("fork").Process(target=_wait_then_take_in_child, args=(lock, child_end))
    child.start()
    try:
        assert parent_end.poll(10) and parent_end.recv() is False
        lock.release()
        parent_end.send("released")
        assert parent_end.poll(15) and parent_end.recv() is True
    finally:
        child.kill()
        child.join()
    lock.close()
