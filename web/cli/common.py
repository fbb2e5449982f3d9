"""What every `telerad` command shares: the settings from the environment, the check that the database has its
schema, and the identity the command line acts with."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from engine.domain.actors import Actor
from engine.errors import TeleradError
from engine.services.bootstrap import build_context
from engine.services.context import EngineContext
from engine.services.database import schema_revision
from web.config import Settings, SettingsError

# The command line runs with the database's own credentials: it acts as an administrator, recorded as "cli".
CLI_ACTOR = Actor("cli", frozenset({"administrator"}))


def load_settings() -> Settings:
    try:
        settings = Settings.from_env()
    except SettingsError as err:
        raise click.ClickException(str(err)) from err
    settings.prepare()
    return settings


def require_migrated(settings: Settings) -> None:
    try:
        revision = schema_revision(settings.database_url)
    except Exception as err:
        raise click.ClickException(f"cannot reach the database: {err}") from err
    if revision is None:
        raise click.ClickException("the database has no schema yet: run `telerad db upgrade` first")


@contextmanager
def engine_context() -> Iterator[EngineContext]:
    """The engine on the configured database; the services' French refusals become the command's error."""
    settings = load_settings()
    ctx = build_context(settings.database_url, keys=settings.key_ring())
    try:
        yield ctx
    except TeleradError as err:  # French messages that say what to do
        raise click.ClickException(str(err)) from err
    finally:
        ctx.engine.dispose()
