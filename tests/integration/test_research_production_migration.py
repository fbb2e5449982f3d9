"""Migration 0033 (issue 20, item 2): a research request running before it gets attempt 0 and no heartbeat, so
the worker takes it for interrupted and produces it again; the downgrade removes both columns and keeps the rows.
SQLite and PostgreSQL (a database of its own)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, inspect, text

from engine.store.db import normalise_url
from engine.store.migrate import alembic_config
from tests.integration.test_session_migration import empty_database  # noqa: F401 - the fixture

NEW_COLUMNS = {"attempt", "heartbeat_at"}


def test_a_request_running_before_has_no_heartbeat_and_the_downgrade_keeps_it(empty_database):  # noqa: F811
    config = alembic_config(empty_database)
    command.upgrade(config, "0032")
    engine = create_engine(normalise_url(empty_database))
    try:
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO research_request (id, requester, protocol, approval_ref, fields, images, retain_dates, "
                "clean_pixels, period_start, period_end, sites, status, created_at, progress_done, progress_total) "
                "VALUES (1, 'c.leroux', 'P', 'CPP', '[]', :yes, :no, :no, '2026-01-01', '2026-02-01', "
                "'[\"ch-brest\"]', 'running', '2026-03-01 00:00:00+00', 2, 9)"), {"yes": True, "no": False})
        command.upgrade(config, "0033")
        with engine.connect() as connection:
            row = connection.execute(text("SELECT attempt, heartbeat_at, status FROM research_request")).one()
        assert tuple(row) == (0, None, "running")
        command.downgrade(config, "0032")
        assert not NEW_COLUMNS & {c["name"] for c in inspect(engine).get_columns("research_request")}
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM research_request")).scalar_one() == 1
        command.upgrade(config, "0033")
        assert {c["name"] for c in inspect(engine).get_columns("research_request")} >= NEW_COLUMNS
    finally:
        engine.dispose()
