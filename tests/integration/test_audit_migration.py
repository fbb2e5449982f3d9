"""Migration 0016 (issue 16, item 3): the events already written keep their plain SHA-256 chain as unkeyed legacy
events ("sha256") and still verify; new events are MACed after them; the downgrade removes the key id and the
export positions."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from engine.services.audit import bind_keys, chain_report, record_global_event
from engine.services.bootstrap import build_context
from engine.services.keyring import KeyRing
from engine.store.audit import canonical
from engine.store.db import GENESIS_HASH, normalise_url
from engine.store.migrate import alembic_config
from tests.integration.test_session_migration import empty_database  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.charter("CH-5.3")]
THEN = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def _old_events(connection) -> None:
    """Two events chained as before 0016: SHA-256 of the previous hash and the canonical content."""
    last = GENESIS_HASH
    for seq, action in ((1, "auth.login"), (2, "setting.changed")):
        content = canonical(0, seq, THEN, "admin", action, None, "{}")
        digest = hashlib.sha256(f"{last}\n{content}".encode()).hexdigest()
        connection.execute(text(
            "INSERT INTO audit_event (chain, seq, at, actor, action, instance_id, detail, prev_hash, hash) "
            "VALUES (0, :seq, :at, 'admin', :action, NULL, '{}', :prev, :hash)"),
            {"seq": seq, "at": THEN, "action": action, "prev": last, "hash": digest})
        last = digest
    connection.execute(text("UPDATE audit_head SET seq = 2, last_hash = :h WHERE id = 1"), {"h": last})


def test_old_events_stay_verifiable_and_new_ones_are_keyed(empty_database):  # noqa: F811
    config = alembic_config(empty_database)
    command.upgrade(config, "0015")
    engine = create_engine(normalise_url(empty_database))
    try:
        with engine.begin() as connection:
            _old_events(connection)
        command.upgrade(config, "0016")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT key_id FROM audit_event")).scalars().all() == ["sha256"] * 2
        ring = KeyRing.generate(datetime(2026, 6, 1, tzinfo=UTC))  # made at the upgrade, after the old events
        ctx = build_context(empty_database, keys=ring)
        bind_keys(ctx)
        try:
            report = chain_report(ctx)
            assert report.problems == [] and report.legacy == 2
            with ctx.write() as session:
                record_global_event(session, "admin", "setting.changed", {"name": "x"}, datetime(2026, 7, 1,
                                                                                                    tzinfo=UTC))
                session.commit()
            report = chain_report(ctx)
            assert report.problems == [] and report.by_key == {"sha256": 2, ring.audit_key_id: 1}
        finally:
            ctx.engine.dispose()
        command.downgrade(config, "0015")
        inspector = inspect(engine)
        assert "key_id" not in {c["name"] for c in inspector.get_columns("audit_event")}
        assert "audit_export" not in inspector.get_table_names()
    finally:
        engine.dispose()
