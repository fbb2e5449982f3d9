"""Migration 0014 (issue 16, item 1): the API tokens that exist when it runs expire 90 days later and keep acting
(scope "act"); it adds the user_session table; its downgrade removes both."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from engine.store.db import normalise_url
from engine.store.migrate import alembic_config
from tests.conftest import POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A database of its own (the migrations go down and up: not the shared test database)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migration.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not available (set TELERAD_TEST_POSTGRES_URL)")
    name = f"telerad_migration_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_existing_tokens_get_90_days_and_the_act_scope(empty_database):
    config = alembic_config(empty_database)
    command.upgrade(config, "0013")
    engine = create_engine(normalise_url(empty_database))
    try:
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO app_user (username, display_name, password_hash, totp_secret, totp_last_step, "
                "failed_logins, active, language, created_at, extraterritorial, foreign_authorization_on_file, "
                "foreign_insurance_on_file) VALUES ('ris.bot', 'RIS', 'x', 'x', 0, 0, :yes, 'fr', :now, :no, :no, "
                ":no)"), {"yes": True, "no": False, "now": datetime(2026, 1, 1, tzinfo=UTC)})
            connection.execute(text(
                "INSERT INTO api_token (username, name, token_hash, created_at, revoked) "
                "VALUES ('ris.bot', 'ris', :hash, :now, :no)"),
                {"hash": "a" * 64, "now": datetime(2026, 1, 1, tzinfo=UTC), "no": False})
        before = datetime.now(UTC)
        command.upgrade(config, "0014")
        with engine.connect() as connection:
            expires, scope = connection.execute(text("SELECT expires_at, scope FROM api_token")).one()
        if isinstance(expires, str):  # SQLite hands back text
            expires = datetime.fromisoformat(expires)
        expires = expires.replace(tzinfo=UTC) if expires.tzinfo is None else expires
        assert before + timedelta(days=90) - timedelta(seconds=1) <= expires <= datetime.now(UTC) + timedelta(days=90)
        assert scope == "act"
        assert "user_session" in inspect(engine).get_table_names()
        command.downgrade(config, "0013")
        inspector = inspect(engine)
        assert "user_session" not in inspector.get_table_names()
        assert {c["name"] for c in inspector.get_columns("api_token")}.isdisjoint({"expires_at", "scope"})
    finally:
        engine.dispose()
