"""SQLite: the pool hands out the connection returned last, whose page cache is the warmest (engine.store.db)."""

from __future__ import annotations

from engine.store.db import make_engine


def test_the_connection_returned_last_is_taken_first(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 't.db'}")
    try:
        first, second = engine.raw_connection(), engine.raw_connection()
        first_driver, second_driver = first.driver_connection, second.driver_connection
        assert first_driver is not second_driver
        first.close()
        second.close()  # returned last
        again = engine.raw_connection()
        assert again.driver_connection is second_driver  # first in, first out would give first_driver
        again.close()
    finally:
        engine.dispose()


def test_in_memory_and_explicit_pools_are_left_as_sqlalchemy_makes_them(tmp_path):
    from sqlalchemy.pool import NullPool, SingletonThreadPool

    for engine in (make_engine("sqlite://"), make_engine("sqlite:///:memory:")):
        assert isinstance(engine.pool, SingletonThreadPool)  # pool_use_lifo would be refused here
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT 1").scalar() == 1
        engine.dispose()
    engine = make_engine(f"sqlite:///{tmp_path / 't.db'}", poolclass=NullPool)
    assert isinstance(engine.pool, NullPool)
    engine.dispose()
