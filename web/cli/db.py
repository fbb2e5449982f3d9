"""`telerad db ...`: the database schema (Alembic migrations)."""

from __future__ import annotations

import click

from engine.services.database import schema_revision, upgrade_schema
from web.cli.common import load_settings


@click.group(help="Database schema.")
def db() -> None:
    pass


@db.command("upgrade", help="Apply the Alembic migrations up to the latest revision.")
def db_upgrade() -> None:
    upgrade_schema(load_settings().database_url)
    click.echo("database schema is up to date")


@db.command("current", help="Print the database schema revision.")
def db_current() -> None:
    click.echo(schema_revision(load_settings().database_url) or "(empty database)")
