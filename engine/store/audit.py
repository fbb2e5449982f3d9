"""Append-only, hash-chained audit events, written in the transaction of the change they record."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from engine.store.db import GENESIS_HASH
from engine.store.models import AuditEvent, AuditHead


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    action: str
    instance_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def canonical(seq: int, at: datetime, actor: str, action: str, instance_id: int | None, detail: str) -> str:
    return json.dumps(
        {"seq": seq, "at": at.isoformat(), "actor": actor, "action": action, "instance_id": instance_id,
         "detail": detail},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )


def chain_hash(prev_hash: str, content: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{content}".encode()).hexdigest()


def ensure_head(session: Session) -> None:
    if session.get(AuditHead, 1) is None:
        session.add(AuditHead(id=1, seq=0, last_hash=GENESIS_HASH))
        session.flush()


def append(session: Session, entries: Iterable[AuditEntry], at: datetime) -> None:
    entries = list(entries)
    if not entries:
        return
    head = session.execute(
        select(AuditHead.seq, AuditHead.last_hash).where(AuditHead.id == 1).with_for_update()
    ).one_or_none()
    if head is None:
        raise RuntimeError("audit chain is not initialised: run 'telerad db upgrade'")
    seq, last_hash = head
    rows = []
    for entry in entries:
        seq += 1
        detail = json.dumps(entry.detail, sort_keys=True, ensure_ascii=False, default=str)
        digest = chain_hash(last_hash, canonical(seq, at, entry.actor, entry.action, entry.instance_id, detail))
        rows.append({"seq": seq, "at": at, "actor": entry.actor, "action": entry.action,
                     "instance_id": entry.instance_id, "detail": detail, "prev_hash": last_hash, "hash": digest})
        last_hash = digest
    session.execute(insert(AuditEvent), rows)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, last_hash=last_hash))


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    message: str


def verify(session: Session, batch: int = 5000) -> tuple[int, list[ChainProblem]]:
    """Recompute the whole chain; return (events checked, problems found)."""
    problems: list[ChainProblem] = []
    expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
    last_seen = 0
    while True:
        rows = session.execute(
            select(AuditEvent).where(AuditEvent.seq > last_seen).order_by(AuditEvent.seq).limit(batch)
        ).scalars().all()
        if not rows:
            break
        for row in rows:
            checked += 1
            if row.seq != expected_seq:
                problems.append(ChainProblem(row.seq, f"sequence gap: expected {expected_seq}"))
            if row.prev_hash != expected_prev:
                problems.append(ChainProblem(row.seq, "previous hash does not match the preceding event"))
            content = canonical(row.seq, row.at, row.actor, row.action, row.instance_id, row.detail)
            if chain_hash(row.prev_hash, content) != row.hash:
                problems.append(ChainProblem(row.seq, "content was altered (hash mismatch)"))
            expected_prev, expected_seq, last_seen = row.hash, row.seq + 1, row.seq
        session.expunge_all()
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != last_seen or head.last_hash != expected_prev):
        problems.append(ChainProblem(last_seen, "chain head does not match the last event (events removed?)"))
    return checked, problems
