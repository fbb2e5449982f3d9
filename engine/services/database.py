"""The database schema as the command line manages it: apply the migrations, read the revision, and whether the
database already holds people (the demo refuses to mix with real accounts)."""

from __future__ import annotations

from sqlalchemy import func, select

from engine.services.context import EngineContext
from engine.store.directory_models import User
from engine.store.migrate import current, upgrade


def upgrade_schema(database_url: str) -> None:
    """Apply the Alembic migrations up to the latest revision."""
    upgrade(database_url)


def schema_revision(database_url: str) -> str | None:
    """The revision the database is at; None when it has no schema yet."""
    return current(database_url)


def has_accounts(ctx: EngineContext) -> bool:
    with ctx.read() as session:
        return bool(session.execute(select(func.count()).select_from(User)).scalar())
