"""Signed audit chain heads, exported to an append-only file outside the database, and checked against it.

Each export appends one JSON line: the head (seq, hash) of the global chain and of every case chain that grew
since the previous export, the SHA-256 of the previous line, and an Ed25519 signature of all that with the
newest signing key of the key file (engine.services.keyring). Whoever rewrites the database, even holding the
audit MAC key, cannot make an exported head match again: `verify_heads` trusts the file, never the database.
The file is opened O_APPEND and fsynced; make it append-only (`chattr +a`) and ship it off the machine.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from engine.services.audit_outbox import advance, read_cursor, settled_events
from engine.services.context import EngineContext
from engine.store import audit
from engine.store.models import AuditEvent

HEADS_EXPORT = "heads"
FORMAT = 1
BATCH_EVENTS = 50_000  # events looked at per export; the rest waits for the next one
HEADS_PER_LINE = 80  # a line stays under 8 KB, the message size RFC 5425 receivers should accept


@dataclass(frozen=True)
class HeadsProblem:
    line: int
    chain: int | None
    seq: int | None
    message: str


@dataclass(frozen=True)
class HeadsCheck:
    lines: int
    heads: int
    problems: list[HeadsProblem]


def signed_bytes(document: dict[str, Any]) -> bytes:
    """What the signature covers: the line without its key id and signature, in canonical JSON."""
    body = {k: v for k, v in document.items() if k not in ("key_id", "signature")}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def export_heads(ctx: EngineContext, sink: Path, *, force: bool = False) -> list[str]:
    """Append signed lines of heads to `sink` (HEADS_PER_LINE heads a line); none when no event was written since
    the last export, unless `force`. Returns the lines written."""
    cursor = read_cursor(ctx, HEADS_EXPORT)
    now = ctx.clock.now()
    with ctx.read() as session:
        rows = settled_events(session, cursor.position, BATCH_EVENTS, now)
        if not rows and not force:
            return []
        chains = {audit.GLOBAL_CHAIN} | {row.chain for row in rows}
        heads = [[chain, head.seq, head.hash] for chain, head in sorted(_current_heads(session, chains).items())]
    position = rows[-1].id if rows else cursor.position
    previous, lines = _last_line_digest(sink), []
    for start in range(0, max(len(heads), 1), HEADS_PER_LINE):
        document: dict[str, Any] = {"format": FORMAT, "exported_at": now.isoformat(), "events_upto": position,
                                    "prev": previous, "heads": heads[start:start + HEADS_PER_LINE]}
        document["key_id"], document["signature"] = ctx.keys.sign(signed_bytes(document))
        line = json.dumps(document, separators=(",", ":"))
        append_line(sink, line)
        previous = hashlib.sha256(line.encode()).hexdigest()
        lines.append(line)
    advance(ctx, cursor, position)
    return lines


def _current_heads(session: Any, chains: set[int]) -> dict[int, audit.ChainHead]:
    events = AuditEvent.__table__
    heads: dict[int, audit.ChainHead] = {}
    ordered = sorted(chains)
    for start in range(0, len(ordered), 500):
        part = ordered[start:start + 500]
        last = (select(events.c.chain, func.max(events.c.seq).label("seq"))
                .where(events.c.chain.in_(part)).group_by(events.c.chain).subquery())
        for row in session.connection().execute(
                select(events.c.chain, events.c.seq, events.c.hash)
                .join(last, (events.c.chain == last.c.chain) & (events.c.seq == last.c.seq))):
            heads[row.chain] = audit.ChainHead(row.seq, row.hash)
    return heads


def append_line(sink: Path, line: str) -> None:
    """One line at the end of the sink, on disk before returning; the file is created 0600."""
    sink.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(sink, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _last_line_digest(sink: Path) -> str | None:
    try:
        with sink.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 1_000_000))
            tail = handle.read().rstrip(b"\n")
    except FileNotFoundError:
        return None
    if not tail:
        return None
    return hashlib.sha256(tail.rsplit(b"\n", 1)[-1]).hexdigest()


def verify_heads(ctx: EngineContext, lines: Iterable[bytes]) -> HeadsCheck:
    """Check every line of a sink: its signature, its link to the line before, and that the database chain holds,
    at each exported (chain, seq), exactly the exported hash (a chain shorter than its head lost events)."""
    problems: list[HeadsProblem] = []
    exported: dict[tuple[int, int], tuple[str, int]] = {}
    previous: bytes | None = None
    count = 0
    for number, raw in enumerate(lines, start=1):
        raw = raw.rstrip(b"\n")
        if not raw:
            continue
        count += 1
        problems.extend(_check_line(ctx, number, raw, previous, exported))
        previous = raw
    with ctx.read() as session:
        found = audit.hashes_at(session, exported)
    for (chain, seq), (expected, number) in sorted(exported.items()):
        actual = found.get((chain, seq))
        if actual is None:
            problems.append(HeadsProblem(number, chain, seq, "exported head missing: events were removed"))
        elif actual != expected:
            problems.append(HeadsProblem(number, chain, seq, "chain rewritten since this head was exported"))
    return HeadsCheck(count, len(exported), problems)


def _check_line(ctx: EngineContext, number: int, raw: bytes, previous: bytes | None,
                exported: dict[tuple[int, int], tuple[str, int]]) -> list[HeadsProblem]:
    try:
        document = json.loads(raw)
        heads = [(int(chain), int(seq), str(digest)) for chain, seq, digest in document["heads"]]
        key_id, signature = str(document["key_id"]), str(document["signature"])
    except (ValueError, KeyError, TypeError):
        return [HeadsProblem(number, None, None, "unreadable line")]
    problems = []
    if not ctx.keys.verify_signature(key_id, signed_bytes(document), signature):
        problems.append(HeadsProblem(number, None, None, f"bad signature (signing key {key_id!r})"))
        return problems  # an unsigned line anchors nothing
    expected_prev = hashlib.sha256(previous).hexdigest() if previous is not None else None
    if document.get("prev") != expected_prev and not (previous is None and number == 1):
        problems.append(HeadsProblem(number, None, None, "the line before it was removed or altered"))
    for chain, seq, digest in heads:
        exported[(chain, seq)] = (digest, number)
    return problems
