"""Shared fixtures: every database-touching test runs on SQLite and, when available, on PostgreSQL.

PostgreSQL comes from TELERAD_TEST_POSTGRES_URL (set by .ci/run, which starts a server on loopback). On a
developer machine without it the PostgreSQL variants are skipped; under CI=true they fail instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import engine.store.charter_pack_models  # noqa: F401  (charter packs per organisation, declared activity)
import engine.store.convention_models  # noqa: F401  (convention documents and expiry reminders)
import engine.store.designer_models  # noqa: F401  (registers the designer tables in the metadata)
import engine.store.directory_models  # noqa: F401  (registers the directory tables in the metadata)
import engine.store.fee_models  # noqa: F401  (CCAM tables, case acts, fee statements)
import engine.store.fee_setting_models  # noqa: F401  (settings of the remuneration document)
import engine.store.incident_models  # noqa: F401  (downtime incidents)
import engine.store.indicator_models  # noqa: F401  (the indicators' per-case facts)
import engine.store.protocol_models  # noqa: F401
import engine.store.quality_audit_models  # noqa: F401  (issued quality audit reports and their actions)
import engine.store.report_models  # noqa: F401  (registers the report drafts and addenda tables in the metadata)
import engine.store.research_models  # noqa: F401  (research export requests, CH-8.2)
import engine.store.site_quality_models  # noqa: F401  (site visits, devices, reading stations)
import integrations.dicom.models  # noqa: F401
import integrations.dicom.pacs_models  # noqa: F401
import integrations.hl7.models  # noqa: F401
from engine.ports import FakeClock
from engine.runtime import OperationRegistry
from engine.services.bootstrap import build_context
from engine.services.context import EngineContext
from engine.store.db import normalise_url
from engine.store.migrate import upgrade
from engine.store.models import Base
from engine.store.protocol_models import seed_default_protocols
from forms import FormRegistry

DATA = Path(__file__).parent / "data"
# Every state save in the suite checks the finished-task encoding cache against a fresh encoding.
os.environ.setdefault("TELERAD_VERIFY_STATE_CACHE", "1")


def _cheap_password_hashing() -> None:
    """Argon2 with its production cost takes ~0.2 s per hash on the CI machine, and every web test creates the nine
    demo accounts on both databases. In this test process only, hash with the cheapest parameters argon2 offers;
    the end-to-end server (a separate process) keeps the production ones."""
    from argon2 import PasswordHasher
    from argon2.profiles import CHEAPEST

    import engine.services.accounts as accounts

    accounts._HASHER = PasswordHasher.from_parameters(CHEAPEST)


_cheap_password_hashing()
POSTGRES_URL = os.environ.get("TELERAD_TEST_POSTGRES_URL", "")
TABLES = tuple(t.name for t in Base.metadata.sorted_tables if t.name != "audit_head")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("database_url") == "postgresql":
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    if not POSTGRES_URL:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must test PostgreSQL: TELERAD_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL not available (set TELERAD_TEST_POSTGRES_URL)")
    name = f"telerad_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_postgres(url: str) -> None:
    engine = create_engine(normalise_url(url))
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        connection.execute(text("UPDATE audit_head SET seq = 0, last_hash = :h"), {"h": "0" * 64})
        seed_default_protocols(connection)  # the catalogue the migration seeds
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "telerad.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_database")
    _reset_postgres(url)
    return url


def engine_test_operations() -> OperationRegistry:
    registry = OperationRegistry()
    registry.register("test.priority", lambda urgency: {"level": {"vital": 3, "urgent": 2, "scheduled": 1}[urgency]})
    return registry


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_ctx(database_url: str, clock: FakeClock) -> Iterator:
    made: list[EngineContext] = []

    def factory(**overrides: object) -> EngineContext:
        options = {"clock": clock, "operations": engine_test_operations(), "escalation": {"review": "PT1H"},
                   "forms": FormRegistry([DATA / "forms"])}
        options.update(overrides)
        ctx = build_context(database_url, **options)
        made.append(ctx)
        return ctx

    yield factory
    for ctx in made:
        ctx.engine.dispose()


@pytest.fixture
def ctx(make_ctx) -> EngineContext:
    return make_ctx()


@pytest.fixture
def deployed(ctx):
    """The engine context with the test diagrams of tests/data/bpmn deployed."""
    from engine.domain.actors import Actor
    from engine.services.definitions import deploy_library

    deploy_library(ctx, Actor("designer"), DATA / "bpmn")
    return ctx
