"""What administrators read: the message log (with filters) and the outbox (failures first)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from engine.domain.actors import Actor
from engine.errors import Forbidden
from engine.services.audit import record_global_event
from engine.services.context import EngineContext
from integrations.hl7.models import Hl7Message, Hl7Outbox

MAX_PAGE = 200


@dataclass(frozen=True)
class MessageFilters:
    direction: str | None = None  # in, out
    status: str | None = None
    ack_code: str | None = None
    site_id: str | None = None
    sender: str | None = None  # matches the sending application or facility
    control_id: str | None = None
    case_id: int | None = None


@dataclass(frozen=True)
class MessageLine:
    id: int
    direction: str
    received_at: datetime
    sending_application: str | None
    sending_facility: str | None
    site_id: str | None
    message_type: str | None
    control_id: str | None
    encoding: str | None
    status: str
    ack_code: str | None
    error: str | None
    case_id: int | None


@dataclass(frozen=True)
class OutboxLine:
    id: int
    case_id: int
    site_id: str | None
    kind: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    control_id: str


def messages(ctx: EngineContext, filters: MessageFilters, limit: int = 50,
             offset: int = 0) -> tuple[list[MessageLine], int]:
    """One page of the log, newest first, and the number of matching messages."""
    where = []
    m = Hl7Message
    for column, value in ((m.direction, filters.direction), (m.status, filters.status),
                          (m.ack_code, filters.ack_code), (m.site_id, filters.site_id),
                          (m.control_id, filters.control_id), (m.case_id, filters.case_id)):
        if value not in (None, ""):
            where.append(column == value)
    if filters.sender:
        where.append((m.sending_application == filters.sender) | (m.sending_facility == filters.sender))
    with ctx.read() as session:
        total = session.execute(select(func.count()).select_from(m).where(*where)).scalar_one()
        rows = session.execute(select(m.id, m.direction, m.received_at, m.sending_application, m.sending_facility,
                                      m.site_id, m.message_type, m.control_id, m.encoding, m.status, m.ack_code,
                                      m.error, m.case_id).where(*where).order_by(m.id.desc())
                               .limit(min(limit, MAX_PAGE)).offset(offset)).all()
    return [MessageLine(*row) for row in rows], int(total)


def message_text(ctx: EngineContext, actor: Actor, message_id: int) -> tuple[MessageLine, str] | None:
    """One message with its text (patient data: administrators only, and the read is audited)."""
    if not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur peut lire les messages HL7.")
    with ctx.write() as session:
        row = session.get(Hl7Message, message_id)
        if row is None:
            return None
        line = MessageLine(row.id, row.direction, row.received_at, row.sending_application, row.sending_facility,
                           row.site_id, row.message_type, row.control_id, row.encoding, row.status, row.ack_code,
                           row.error, row.case_id)
        text = row.raw
        record_global_event(session, actor.user_id, "hl7.message_read", {
            "message": message_id, "control_id": row.control_id}, ctx.clock.now(), case_id=row.case_id)
        session.commit()
    return line, text


def outbox(ctx: EngineContext, status: str | None = None, limit: int = 100) -> list[OutboxLine]:
    """Failed rows first (most attempts first), then pending, then the latest sent."""
    o = Hl7Outbox
    order = func.coalesce(o.sent_at, o.created_at)
    with ctx.read() as session:
        query = select(o.id, o.case_id, o.site_id, o.kind, o.status, o.attempts, o.next_attempt_at, o.last_error,
                       o.created_at, o.sent_at, o.control_id)
        if status:
            query = query.where(o.status == status)
        rows = session.execute(query.order_by((o.status == "sent"), (o.status == "pending"), order.desc())
                               .limit(min(limit, MAX_PAGE))).all()
    return [OutboxLine(*row) for row in rows]


def outbox_counts(ctx: EngineContext) -> dict[str, int]:
    with ctx.read() as session:
        rows = session.execute(select(Hl7Outbox.status, func.count()).group_by(Hl7Outbox.status)).all()
    return {status: int(count) for status, count in rows}
