"""`telerad db ...`: the database schema (Alembic migrations)."""

from __future__ import annotations

import click

from engine.services.database import schema_revision, upgrade_schema
from engine.services.secrets_at_rest import seal_clear_secrets
from web.cli.common import engine_context, load_settings


@click.group(help="Database schema.")
def db() -> None:
    pass


@db.command("upgrade", help="Apply the Alembic migrations up to the latest revision.")
def db_upgrade() -> None:
    settings = load_settings()
    upgrade_schema(settings.database_url)
    click.echo("database schema is up to date")
    with engine_context() as ctx:  # a migration cannot read the key file: secrets left in clear are sealed here
        report = seal_clear_secrets(ctx)
    if report.sealed:
        click.echo(f"{report.sealed} TOTP secrets encrypted with the key file")


@db.command("current", help="Print the database schema revision.")
def db_current() -> None:
    click.echo(schema_revision(load_settings().database_url) or "(empty database)")
