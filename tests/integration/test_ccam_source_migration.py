"""Migration 0031 (issue 20, item 1): the CCAM tables loaded before it are Telerad CSV tables without technical fees;
the downgrade removes the new columns and keeps the tables. SQLite and PostgreSQL (a database of its own)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, inspect, text

from engine.store.db import normalise_url
from engine.store.migrate import alembic_config
from tests.integration.test_session_migration import empty_database  # noqa: F401 - the fixture

NEW_COLUMNS = {"source_format", "ct_technical_fee_eur", "mri_technical_fee_eur"}


def test_tables_loaded_before_are_csv_ones_and_the_downgrade_keeps_them(empty_database):  # noqa: F811
    config = alembic_config(empty_database)
    command.upgrade(config, "0030")
    engine = create_engine(normalise_url(empty_database))
    try:
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO ccam_table (id, effective_from, source_name, sample, act_count, loaded_by, loaded_at) "
                "VALUES (1, '2000-01-01', 'ccam_sample.csv', :yes, 15, 'system', '2026-01-01 00:00:00+00')"),
                {"yes": True})
        command.upgrade(config, "0031")
        with engine.connect() as connection:
            row = connection.execute(text("SELECT source_format, ct_technical_fee_eur, mri_technical_fee_eur "
                                          "FROM ccam_table")).one()
        assert tuple(row) == ("telerad-csv", None, None)
        command.downgrade(config, "0030")
        assert not NEW_COLUMNS & {c["name"] for c in inspect(engine).get_columns("ccam_table")}
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM ccam_table")).scalar_one() == 1
        command.upgrade(config, "0031")
        assert {c["name"] for c in inspect(engine).get_columns("ccam_table")} >= NEW_COLUMNS
    finally:
        engine.dispose()
