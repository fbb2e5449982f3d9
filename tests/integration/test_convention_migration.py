"""Migration 0024 (issue 19, item 5): conventions active before it (three approvals ticked, no content) stay active
and keep routing, flagged legacy_incomplete; inactive ones stay inactive; the downgrade removes the new columns
and tables. SQLite and PostgreSQL (a database of its own: the migrations go down and up)."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.orm import sessionmaker

from engine.store.db import normalise_url
from engine.store.migrate import alembic_config
from engine.store.sql_directory import SqlDirectory
from tests.integration.test_session_migration import empty_database  # noqa: F401 - the fixture

NOW = {"now": datetime(2026, 1, 1, tzinfo=UTC)}


def test_active_conventions_survive_flagged_incomplete(empty_database):  # noqa: F811
    config = alembic_config(empty_database)
    command.upgrade(config, "0023")
    engine = create_engine(normalise_url(empty_database))
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO territory (id, name, department, region) "
                                    "VALUES ('brest', 'Pays de Brest', '29', 'Bretagne')"))
            connection.execute(text("INSERT INTO site (id, name, territory_id) VALUES ('ch-brest', 'CH', 'brest')"))
            for number, council in ((1, True), (2, False)):
                connection.execute(text(
                    "INSERT INTO convention (id, site_id, cme_validated, approved_by_g4, approved_by_council, "
                    "external_allowed, tiers) VALUES (:id, 'ch-brest', :yes, :yes, :council, :no, '1,2,3')"),
                    {"id": number, "yes": True, "no": False, "council": council})
        command.upgrade(config, "0024")
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, legacy_incomplete, visit_interval_days, expires_on "
                                           "FROM convention ORDER BY id")).all()
        assert [(r[0], bool(r[1]), r[2], r[3]) for r in rows] == [(1, True, 365, None), (2, False, 365, None)]
        conventions = SqlDirectory(sessionmaker(engine)).conventions("ch-brest")
        assert [c.active for c in conventions] == [True, False]  # the legacy one keeps routing
        assert {"convention_document", "convention_reminder"} <= set(inspect(engine).get_table_names())
        command.downgrade(config, "0023")
        inspector = inspect(engine)
        assert "convention_document" not in inspector.get_table_names()
        assert "legacy_incomplete" not in {c["name"] for c in inspector.get_columns("convention")}
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM convention")).scalar_one() == 2
    finally:
        engine.dispose()
