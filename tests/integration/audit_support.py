"""What an attacker holding the database does to the audit trail: rewrite events, drop some, and recompute every
chain and head so that the database is consistent again (with plain SHA-256, or with a MAC key)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from sqlalchemy import text

from engine.services.audit import bind_keys
from engine.services.cases import case_record
from engine.services.instances import start_instance
from engine.services.tasks import complete_task
from engine.store.audit import GENESIS_HASH, canonical
from tests.integration.test_engine_services import REQUESTER, SUBMIT, only_task

Row = dict
Hasher = Callable[[str, str], tuple[str, str]]  # (prev_hash, content) -> (key_id, hash)


def plain_sha256(prev_hash: str, content: str) -> tuple[str, str]:
    return "sha256", hashlib.sha256(f"{prev_hash}\n{content}".encode()).hexdigest()


def same_key_id_plain_sha256(key_id: str) -> Hasher:
    return lambda prev, content: (key_id, plain_sha256(prev, content)[1])


def with_key(key_id: str, material: bytes) -> Hasher:
    return lambda prev, content: (key_id, hmac.new(material, f"{prev}\n{content}".encode(),
                                                    hashlib.sha256).hexdigest())


def busy_case(ctx, views: int = 2) -> int:
    """A case started, its first task completed, and its record read `views` times."""
    bind_keys(ctx)
    case_id = start_instance(ctx, REQUESTER, "engine_flow", {}, site_id="site-a")
    complete_task(ctx, REQUESTER, only_task(ctx, REQUESTER).id, dict(SUBMIT))
    for _ in range(views):
        case_record(ctx, REQUESTER, case_id)
    return case_id


def rewrite(ctx, hasher: Hasher, change: Callable[[Row], Row | None]) -> int:
    """Apply `change` to every event (None drops it), renumber and recompute every chain with `hasher`, and
    put the heads back (audit_head, process_instance): returns the number of events changed or dropped."""
    touched = 0
    with ctx.engine.begin() as connection:
        rows = [dict(row._mapping) for row in connection.execute(text(
            "SELECT id, chain, seq, at, actor, action, instance_id, detail, prev_hash, hash, key_id "
            "FROM audit_event ORDER BY chain, seq"))]
        kept: list[Row] = []
        for row in rows:
            changed = change(dict(row))
            touched += changed != row
            if changed is not None:
                kept.append(changed)
        heads: dict[int, tuple[int, str]] = {}
        for row in kept:
            seq, last = heads.get(row["chain"], (0, GENESIS_HASH))
            at = row["at"] if isinstance(row["at"], str) else row["at"]
            row["seq"], row["prev_hash"] = seq + 1, last
            content = canonical(row["chain"], row["seq"], _aware(at), row["actor"], row["action"],
                                row["instance_id"], row["detail"])
            row["key_id"], row["hash"] = hasher(last, content)
            heads[row["chain"]] = (row["seq"], row["hash"])
        connection.execute(text("DELETE FROM audit_event"))
        if kept:
            connection.execute(text(
                "INSERT INTO audit_event (id, chain, seq, at, actor, action, instance_id, detail, prev_hash, hash, "
                "key_id) VALUES (:id, :chain, :seq, :at, :actor, :action, :instance_id, :detail, :prev_hash, "
                ":hash, :key_id)"), kept)
        for chain, (seq, digest) in heads.items():
            if chain == 0:
                connection.execute(text("UPDATE audit_head SET seq = :s, last_hash = :h WHERE id = 1"),
                                   {"s": seq, "h": digest})
            else:
                connection.execute(text("UPDATE process_instance SET audit_seq = :s, audit_hash = :h WHERE id = :c"),
                                   {"s": seq, "h": digest, "c": chain})
    return touched


def _aware(at):
    from datetime import UTC, datetime

    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def rewrite_actor(row: Row) -> Row:
    if row["action"] == "task.completed":
        row["actor"] = "someone.else"
    return row


def drop_case_views(row: Row) -> Row | None:
    return None if row["action"] == "case.viewed" else row
