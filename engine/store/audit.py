"""Append-only audit events, chained with a keyed MAC and written in the transaction of the change they record.

Chain 0 is global and its head is the locked ``audit_head`` row. Each case has its own chain whose head
(seq, hash) lives on its ``process_instance`` row, which every change of the case already locks and
updates: recording a task completion costs one INSERT and no extra lock.

Each event's hash is HMAC-SHA256, under the audit key named in its ``key_id`` column, of the previous hash and
the event's canonical content. The keys live outside the database (engine.services.keyring), so whoever can
only write the database cannot recompute the chain after rewriting it. Events written before migration 0016
carry the key id ``sha256``: their hash is the plain SHA-256 of the same bytes (unkeyed legacy events).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from engine.domain.charter import enforces
from engine.store.db import GENESIS_HASH
from engine.store.driver import DriverStatement
from engine.store.models import AuditEvent, AuditHead, ProcessInstance, table_of

GLOBAL_CHAIN = 0
LEGACY_KEY_ID = "sha256"  # events chained before keyed MACs: plain SHA-256, verified as such
KEYS_INFO = "telerad_audit_keys"  # Session.info entry holding the key ring of the context that made the session
_EVENTS = table_of(AuditEvent)
_INSERT_EVENTS = DriverStatement(insert(_EVENTS), ["chain", "seq", "at", "actor", "action", "instance_id", "detail",
                                                   "prev_hash", "hash", "key_id"])


class AuditKeys(Protocol):
    """The audit side of engine.services.keyring.KeyRing (the store cannot import the services)."""

    @property
    def audit_key_id(self) -> str: ...

    def mac(self, key_id: str, data: bytes) -> str | None: ...


_fallback_keys: list[AuditKeys] = []


def set_fallback_keys(keys: AuditKeys) -> None:
    """The ring used by sessions that carry none in their info (see engine.services.audit.bind_keys)."""
    _fallback_keys[:] = [keys]


def keys_of(session: Session) -> AuditKeys:
    keys = session.info.get(KEYS_INFO)
    if keys is None:
        if not _fallback_keys:
            raise RuntimeError("no audit keys: build the context with engine.services.bootstrap.build_context")
        keys = _fallback_keys[0]
    return keys  # type: ignore[no-any-return]


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    action: str
    instance_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChainHead:
    seq: int
    hash: str


def canonical(chain: int, seq: int, at: datetime, actor: str, action: str, instance_id: int | None,
              detail: str) -> str:
    return json.dumps(
        {"chain": chain, "seq": seq, "at": at.isoformat(), "actor": actor, "action": action,
         "instance_id": instance_id, "detail": detail},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )


def chain_hash(keys: AuditKeys, key_id: str, prev_hash: str, content: str) -> str | None:
    """The hash of an event under `key_id` (None when the ring does not hold that key)."""
    data = f"{prev_hash}\n{content}".encode()
    if key_id == LEGACY_KEY_ID:
        return hashlib.sha256(data).hexdigest()
    return keys.mac(key_id, data)


@enforces("CH-5.3", "CH-8.1")
def build_rows(chain: int, head: ChainHead, entries: Iterable[AuditEntry], at: datetime,
               keys: AuditKeys) -> tuple[list[dict[str, Any]], ChainHead]:
    """The rows to insert after ``head``, MACed with the newest audit key, and the new head."""
    seq, last_hash = head.seq, head.hash
    key_id = keys.audit_key_id
    rows = []
    for entry in entries:
        seq += 1
        detail = json.dumps(entry.detail, sort_keys=True, ensure_ascii=False, default=str)
        content = canonical(chain, seq, at, entry.actor, entry.action, entry.instance_id, detail)
        digest = keys.mac(key_id, f"{last_hash}\n{content}".encode())
        assert digest is not None  # the newest key is in its own ring
        rows.append({"chain": chain, "seq": seq, "at": at, "actor": entry.actor, "action": entry.action,
                     "instance_id": entry.instance_id, "detail": detail, "prev_hash": last_hash, "hash": digest,
                     "key_id": key_id})
        last_hash = digest
    return rows, ChainHead(seq, last_hash)


def insert_rows(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    _INSERT_EVENTS.execute(session, rows)


def append_global(session: Session, entries: Iterable[AuditEntry], at: datetime) -> None:
    entries = list(entries)
    if not entries:
        return
    head = session.connection().execute(
        select(AuditHead.seq, AuditHead.last_hash).where(AuditHead.id == 1).with_for_update()
    ).one_or_none()
    if head is None:
        raise RuntimeError("audit chain is not initialised: run 'telerad db upgrade'")
    rows, new_head = build_rows(GLOBAL_CHAIN, ChainHead(head.seq, head.last_hash), entries, at, keys_of(session))
    insert_rows(session, rows)
    session.connection().execute(
        update(AuditHead).where(AuditHead.id == 1).values(seq=new_head.seq, last_hash=new_head.hash))


@dataclass(frozen=True)
class ChainProblem:
    chain: int
    seq: int
    message: str


@dataclass
class ChainReport:
    checked: int = 0
    problems: list[ChainProblem] = field(default_factory=list)
    legacy: int = 0  # unkeyed events written before migration 0016
    by_key: dict[str, int] = field(default_factory=dict)  # events per audit key id
    heads: dict[int, ChainHead] = field(default_factory=dict)  # the last event of each chain


@enforces("CH-5.3")
def verify(session: Session, keys: AuditKeys | None = None, batch: int = 5000) -> tuple[int, list[ChainProblem]]:
    """Recompute every chain; return (events checked, problems found)."""
    report = verify_chains(session, keys or keys_of(session), batch)
    return report.checked, report.problems


@enforces("CH-5.3")
def verify_chains(session: Session, keys: AuditKeys, batch: int = 5000,
                  keyed_since: datetime | None = None) -> ChainReport:
    """Recompute every chain with the keys of the ring (each event names its key), and check the heads kept in
    the database. A rewrite recomputed without the key fails the MAC, or, recomputed as unkeyed legacy events,
    is dated after `keyed_since` (when the oldest audit key was made); one recomputed with the key is caught by
    the heads exported outside the database (engine.services.audit_heads)."""
    report = ChainReport()
    started: set[int] = set()
    last_key = (-1, 0)
    current_chain, expected, keyed_seen = -1, ChainHead(0, GENESIS_HASH), False
    while True:
        rows = session.connection().execute(
            select(_EVENTS).where((_EVENTS.c.chain > last_key[0])
                                  | ((_EVENTS.c.chain == last_key[0]) & (_EVENTS.c.seq > last_key[1])))
            .order_by(_EVENTS.c.chain, _EVENTS.c.seq).limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            report.checked += 1
            report.by_key[row.key_id] = report.by_key.get(row.key_id, 0) + 1
            if row.chain != current_chain:
                current_chain, expected, keyed_seen = row.chain, ChainHead(0, GENESIS_HASH), False
            report.problems.extend(_check_event(row, expected, keys, keyed_seen, keyed_since))
            if row.key_id == LEGACY_KEY_ID:
                report.legacy += 1
            else:
                keyed_seen = True
            if row.chain == GLOBAL_CHAIN and row.action == "instance.started" and row.instance_id is not None:
                started.add(row.instance_id)
            expected = ChainHead(row.seq, row.hash)
            report.heads[row.chain] = expected
            last_key = (row.chain, row.seq)
    report.problems.extend(_check_heads(session, report.heads, started))
    return report


def _check_event(row: Any, expected: ChainHead, keys: AuditKeys, keyed_seen: bool,
                 keyed_since: datetime | None) -> list[ChainProblem]:
    problems = []
    if row.seq != expected.seq + 1:
        problems.append(ChainProblem(row.chain, row.seq, f"sequence gap: expected {expected.seq + 1}"))
    if row.prev_hash != expected.hash:
        problems.append(ChainProblem(row.chain, row.seq, "previous hash does not match the preceding event"))
    if row.key_id == LEGACY_KEY_ID and keyed_seen:
        problems.append(ChainProblem(row.chain, row.seq, "unkeyed event after keyed ones (chain downgraded)"))
    at = row.at if row.at.tzinfo else _utc(row.at)
    if row.key_id == LEGACY_KEY_ID and keyed_since is not None and at >= keyed_since:
        problems.append(ChainProblem(row.chain, row.seq, "unkeyed event dated after the audit keys were made "
                                                         "(chain downgraded)"))
    content = canonical(row.chain, row.seq, at, row.actor, row.action, row.instance_id, row.detail)
    digest = chain_hash(keys, row.key_id, row.prev_hash, content)
    if digest is None:
        problems.append(ChainProblem(row.chain, row.seq, f"audit key {row.key_id!r} is not in the key file"))
    elif digest != row.hash:
        problems.append(ChainProblem(row.chain, row.seq, "content was altered (MAC mismatch)"))
    return problems


def _check_heads(session: Session, heads: dict[int, ChainHead], started: set[int]) -> list[ChainProblem]:
    problems = []
    global_head = session.get(AuditHead, 1)
    found = heads.get(GLOBAL_CHAIN, ChainHead(0, GENESIS_HASH))
    if global_head is not None and (global_head.seq, global_head.last_hash) != (found.seq, found.hash):
        problems.append(ChainProblem(GLOBAL_CHAIN, found.seq, "chain head does not match the last event "
                                                              "(events removed?)"))
    instances = {row.id: ChainHead(row.audit_seq, row.audit_hash) for row in session.connection().execute(
        select(ProcessInstance.id, ProcessInstance.audit_seq, ProcessInstance.audit_hash))}
    for instance_id, head in instances.items():
        if heads.get(instance_id, ChainHead(0, GENESIS_HASH)) != head:
            problems.append(ChainProblem(instance_id, head.seq, "case chain head does not match its last event "
                                                                "(events removed?)"))
        if instance_id not in started:
            problems.append(ChainProblem(GLOBAL_CHAIN, 0, f"case {instance_id} has no creation event"))
    for chain in heads:
        if chain != GLOBAL_CHAIN and chain not in instances:
            problems.append(ChainProblem(chain, 0, "audit events of a case that no longer exists"))
    for instance_id in started - instances.keys():
        problems.append(ChainProblem(GLOBAL_CHAIN, 0, f"case {instance_id} was created but has been removed"))
    return problems


def hashes_at(session: Session, positions: Iterable[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """The hash of the event at each (chain, seq) that exists."""
    found: dict[tuple[int, int], str] = {}
    by_chain: dict[int, list[int]] = {}
    for chain, seq in positions:
        by_chain.setdefault(chain, []).append(seq)
    chains = sorted(by_chain)
    for start in range(0, len(chains), 500):
        part = chains[start:start + 500]
        wanted = {(chain, seq) for chain in part for seq in by_chain[chain]}
        for row in session.connection().execute(
                select(_EVENTS.c.chain, _EVENTS.c.seq, _EVENTS.c.hash).where(
                    _EVENTS.c.chain.in_(part), _EVENTS.c.seq.in_({seq for c in part for seq in by_chain[c]}))):
            if (row.chain, row.seq) in wanted:
                found[(row.chain, row.seq)] = row.hash
    return found


def _utc(moment: datetime) -> datetime:
    from datetime import UTC

    return moment.replace(tzinfo=UTC)
