"""Reports to the sites' RIS: queued with the release (a save hook, same transaction), delivered over MLLP.

A row is claimed by moving its next attempt past a lease before sending, so two processes never send it at the
same time and a process dying mid-send leaves it to be retried after the lease (at least once; its MSH-10 stays
the same on every attempt so the RIS can recognise a repeat). A failure (peer down, timeout, ACK AE/AR, no
endpoint) is recorded on the row, visible to administrators, and retried after 30 s x 2^(attempts - 1), at
most one hour apart, until it is delivered: nothing is dropped, across restarts too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.errors import Forbidden
from engine.services.audit import record_global_event
from engine.services.context import EngineContext
from engine.services.persistence import InstanceRow
from integrations.hl7.codec import ack_code_of, encode, new_control_id, normalise
from integrations.hl7.mllp import MllpClient
from integrations.hl7.models import OUTBOX, Hl7Endpoint, Hl7Message, Hl7Outbox
from integrations.hl7.report import SENDING_APPLICATION, SENDING_FACILITY, address, build_oru
from integrations.hl7.senders import endpoint_of

log = logging.getLogger(__name__)
BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
LEASE = timedelta(minutes=5)


def backoff(attempts: int) -> timedelta:
    """Delay before the next attempt after `attempts` failed ones."""
    return min(BASE_DELAY * 2 ** max(attempts - 1, 0), MAX_DELAY)


class ReportHook:
    """The save hook: a case whose data holds a new `release` gets one ORU^R01 row (idempotent per release)."""

    def __init__(self, ctx: EngineContext):
        self.ctx = ctx

    def __call__(self, session: Session, saved: InstanceRow, data: Mapping[str, Any]) -> None:
        release = data.get("release")
        if not isinstance(release, dict) or not release.get("released_at"):
            return
        key = str(release["released_at"])[:64]
        earlier = set(session.execute(select(Hl7Outbox.release_key).where(
            Hl7Outbox.case_id == saved.id, Hl7Outbox.kind == "ORU")).scalars())
        if key in earlier:
            return
        if "hl7" not in data and (saved.site_id is None or session.get(Hl7Endpoint, saved.site_id) is None):
            return  # neither ordered over HL7 nor a site that takes reports over HL7
        now = self.ctx.clock.now()
        control_id = new_control_id()
        session.execute(insert(OUTBOX).values(
            case_id=saved.id, site_id=saved.site_id, kind="ORU", release_key=key, control_id=control_id,
            payload=build_oru(data, control_id=control_id, now=now, corrected=bool(earlier)), status="pending",
            attempts=0, next_attempt_at=now, created_at=now))


class AddendumHook:
    """An addendum signed after the release: the report sent again with every addendum so far, as a correction
    (OBR-25 C), to the RIS that took the report (idempotent per addendum)."""

    def __init__(self, ctx: EngineContext):
        self.ctx = ctx

    def __call__(self, session: Session, case: InstanceRow, data: Mapping[str, Any], addenda: list[Any]) -> None:
        if not addenda or not isinstance(data.get("release"), dict):
            return
        key = f"addendum:{addenda[-1].id}"
        sent = session.execute(select(Hl7Outbox.id).where(
            Hl7Outbox.case_id == case.id, Hl7Outbox.kind == "ORU", Hl7Outbox.release_key == key)).first()
        if sent is not None:
            return
        if "hl7" not in data and (case.site_id is None or session.get(Hl7Endpoint, case.site_id) is None):
            return
        now = self.ctx.clock.now()
        control_id = new_control_id()
        session.execute(insert(OUTBOX).values(
            case_id=case.id, site_id=case.site_id, kind="ORU", release_key=key, control_id=control_id,
            payload=build_oru(data, control_id=control_id, now=now, addenda=addenda), status="pending",
            attempts=0, next_attempt_at=now, created_at=now))


def install(ctx: EngineContext) -> None:
    """Register the report hooks on a context (idempotent). Every process that saves cases needs them."""
    if not any(isinstance(hook, ReportHook) for hook in ctx.save_hooks):
        ctx.save_hooks.append(ReportHook(ctx))
    if not any(isinstance(hook, AddendumHook) for hook in ctx.addendum_hooks):
        ctx.addendum_hooks.append(AddendumHook(ctx))


@dataclass(frozen=True)
class DeliveryReport:
    sent: int = 0
    failed: int = 0


def _claim(ctx: EngineContext, now: datetime, limit: int) -> list[int]:
    with ctx.write() as session:
        query = (select(Hl7Outbox.id, Hl7Outbox.next_attempt_at)
                 .where(Hl7Outbox.status.in_(("pending", "failed")), Hl7Outbox.next_attempt_at <= now)
                 .order_by(Hl7Outbox.next_attempt_at, Hl7Outbox.id).limit(limit))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claimed = []
        for row in session.execute(query).all():
            moved = session.execute(update(Hl7Outbox).where(
                Hl7Outbox.id == row.id, Hl7Outbox.next_attempt_at == row.next_attempt_at).values(
                next_attempt_at=now + LEASE))
            if moved.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(row.id)
        session.commit()
    return claimed


def deliver_pending(ctx: EngineContext, now: datetime | None = None, *, limit: int = 100,
                    timeout: float = 10.0) -> DeliveryReport:
    """Send the rows that are due; one connection per endpoint; an endpoint that fails is not retried in this
    run (its other rows are failed with the same reason)."""
    now = now or ctx.clock.now()
    sent = failed = 0
    clients: dict[tuple[str, int], MllpClient] = {}
    broken: dict[tuple[str, int], str] = {}
    try:
        for row_id in _claim(ctx, now, limit):
            with ctx.read() as session:
                row = session.get(Hl7Outbox, row_id)
                assert row is not None
                case_id, site_id, payload, attempts = row.case_id, row.site_id, row.payload, row.attempts
                control_id = row.control_id
            endpoint = endpoint_of(ctx, site_id)
            if endpoint is None or not endpoint.active:
                _failed(ctx, row_id, attempts, now, f"Aucun point de livraison HL7 actif pour le site {site_id}.")
                failed += 1
                continue
            target = (endpoint.host, endpoint.port)
            text = address(payload, endpoint.receiving_application, endpoint.receiving_facility, endpoint.charset)
            if target in broken:
                _failed(ctx, row_id, attempts, now, broken[target])
                failed += 1
                continue
            client = clients.setdefault(target, MllpClient(*target, timeout=timeout))
            try:
                ack = client.send(encode(text, endpoint.charset))
            except OSError as err:
                broken[target] = f"{endpoint.host}:{endpoint.port} injoignable : {err or type(err).__name__}"
                _failed(ctx, row_id, attempts, now, broken[target])
                failed += 1
                continue
            code = ack_code_of(ack)
            if code in ("AA", "CA"):
                _sent(ctx, row_id, attempts, now, code, text, case_id, site_id, control_id, endpoint.charset)
                sent += 1
            else:
                _failed(ctx, row_id, attempts, now, f"Refusé par le destinataire (MSA-1 {code or 'absent'}) : "
                                                    f"{normalise(ack.decode('latin-1'))[:500]}")
                failed += 1
    finally:
        for client in clients.values():
            client.close()
    return DeliveryReport(sent, failed)


def _failed(ctx: EngineContext, row_id: int, attempts: int, now: datetime, reason: str) -> None:
    log.warning("HL7 outbox row %s: attempt %s failed: %s", row_id, attempts + 1, reason)
    with ctx.write() as session:
        session.execute(update(Hl7Outbox).where(Hl7Outbox.id == row_id).values(
            status="failed", attempts=attempts + 1, last_error=reason, next_attempt_at=now + backoff(attempts + 1)))
        session.commit()


def _sent(ctx: EngineContext, row_id: int, attempts: int, now: datetime, code: str, text: str, case_id: int,
          site_id: str | None, control_id: str, charset: str) -> None:
    with ctx.write() as session:
        session.execute(update(Hl7Outbox).where(Hl7Outbox.id == row_id).values(
            status="sent", attempts=attempts + 1, sent_at=now, ack_code=code, last_error=None))
        logged = session.execute(select(Hl7Message.id).where(
            Hl7Message.direction == "out", Hl7Message.sending_application == SENDING_APPLICATION,
            Hl7Message.sending_facility == SENDING_FACILITY, Hl7Message.control_id == control_id)).first()
        if logged is None:
            session.add(Hl7Message(
                direction="out", control_id=control_id, sending_application=SENDING_APPLICATION,
                sending_facility=SENDING_FACILITY, site_id=site_id, message_type="ORU^R01", version="2.5",
                encoding=charset, raw=text, received_at=now, processed_at=now, status="processed", ack_code=code,
                case_id=case_id))
        session.commit()


def retry_now(ctx: EngineContext, actor: Actor, row_id: int | None = None) -> int:
    """Make failed rows (one, or all) due now; returns how many. Administrators only, audited."""
    if not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur peut relancer les envois HL7.")
    now = ctx.clock.now()
    with ctx.write() as session:
        query = update(Hl7Outbox).where(Hl7Outbox.status == "failed")
        if row_id is not None:
            query = query.where(Hl7Outbox.id == row_id)
        count = session.execute(query.values(next_attempt_at=now)).rowcount  # type: ignore[attr-defined]
        record_global_event(session, actor.user_id, "hl7.outbox_retry", {"row": row_id, "rows": count}, now)
        session.commit()
    return int(count)
