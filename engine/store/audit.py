"""Append-only, hash-chained audit events, written in the transaction of the change they record.

Chain 0 is global and its head is the locked ``audit_head`` row. Each case has its own chain whose head
(seq, hash) lives on its ``process_instance`` row, which every change of the case already locks and
updates: recording a task completion costs one INSERT and no extra lock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from engine.domain.charter import enforces
from engine.store.db import GENESIS_HASH
from engine.store.driver import DriverStatement
from engine.store.models import AuditEvent, AuditHead, ProcessInstance, table_of

GLOBAL_CHAIN = 0
_EVENTS = table_of(AuditEvent)
_INSERT_EVENTS = DriverStatement(insert(_EVENTS), ["chain", "seq", "at", "actor", "action", "instance_id", "detail",
                                                   "prev_hash", "hash"])


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


def chain_hash(prev_hash: str, content: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{content}".encode()).hexdigest()


@enforces("CH-5.3", "CH-8.1")
def build_rows(chain: int, head: ChainHead, entries: Iterable[AuditEntry],
               at: datetime) -> tuple[list[dict[str, Any]], ChainHead]:
    """The rows to insert after ``head``, and the new head."""
    seq, last_hash = head.seq, head.hash
    rows = []
    for entry in entries:
        seq += 1
        detail = json.dumps(entry.detail, sort_keys=True, ensure_ascii=False, default=str)
        digest = chain_hash(last_hash, canonical(chain, seq, at, entry.actor, entry.action, entry.instance_id,
                                                 detail))
        rows.append({"chain": chain, "seq": seq, "at": at, "actor": entry.actor, "action": entry.action,
                     "instance_id": entry.instance_id, "detail": detail, "prev_hash": last_hash, "hash": digest})
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
    rows, new_head = build_rows(GLOBAL_CHAIN, ChainHead(head.seq, head.last_hash), entries, at)
    insert_rows(session, rows)
    session.connection().execute(
        update(AuditHead).where(AuditHead.id == 1).values(seq=new_head.seq, last_hash=new_head.hash))


@dataclass(frozen=True)
class ChainProblem:
    chain: int
    seq: int
    message: str


@enforces("CH-5.3")
def verify(session: Session, batch: int = 5000) -> tuple[int, list[ChainProblem]]:
    """Recompute every chain; return (events checked, problems found)."""
    problems: list[ChainProblem] = []
    heads: dict[int, ChainHead] = {}
    started: set[int] = set()
    checked = 0
    last_key = (-1, 0)
    current_chain, expected = -1, ChainHead(0, GENESIS_HASH)
    while True:
        rows = session.connection().execute(
            select(_EVENTS).where((_EVENTS.c.chain > last_key[0])
                                  | ((_EVENTS.c.chain == last_key[0]) & (_EVENTS.c.seq > last_key[1])))
            .order_by(_EVENTS.c.chain, _EVENTS.c.seq).limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            checked += 1
            if row.chain != current_chain:
                current_chain, expected = row.chain, ChainHead(0, GENESIS_HASH)
            if row.seq != expected.seq + 1:
                problems.append(ChainProblem(row.chain, row.seq, f"sequence gap: expected {expected.seq + 1}"))
            if row.prev_hash != expected.hash:
                problems.append(ChainProblem(row.chain, row.seq, "previous hash does not match the preceding event"))
            content = canonical(row.chain, row.seq, row.at if row.at.tzinfo else _utc(row.at), row.actor, row.action,
                                row.instance_id, row.detail)
            if chain_hash(row.prev_hash, content) != row.hash:
                problems.append(ChainProblem(row.chain, row.seq, "content was altered (hash mismatch)"))
            if row.chain == GLOBAL_CHAIN and row.action == "instance.started" and row.instance_id is not None:
                started.add(row.instance_id)
            expected = ChainHead(row.seq, row.hash)
            heads[row.chain] = expected
            last_key = (row.chain, row.seq)
    problems.extend(_check_heads(session, heads, started))
    return checked, problems


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


def _utc(moment: datetime) -> datetime:
    from datetime import UTC

    return moment.replace(tzinfo=UTC)
