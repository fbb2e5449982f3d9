"""What administrators read: the message log (with filters) and the outbox (failures first).

A message carries a patient (PID, NK1, PV1, OBR...): its text is shown only to an actor who may see its case
(``engine.services.case_visibility``), or, for a message that made no case, who belongs to its site; anyone else,
administrators included, reads the header segments only (CH-5.3, CH-8.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, false, func, or_, select

from engine.domain.actors import Actor
from engine.errors import Forbidden
from engine.services.audit import record_global_event
from engine.services.case_visibility import may_see_case_column
from engine.services.context import EngineContext
from integrations.hl7.models import Hl7Message, Hl7Outbox

MAX_PAGE = 200
# Segments that say who sent what and how it was answered, never who the patient is: shown to every administrator.
HEADER_SEGMENTS = frozenset({"MSH", "MSA", "ERR", "EVN"})
MASK = "***"


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
    patient_visible: bool  # the actor may read the patient segments of this message


@dataclass(frozen=True)
class MessageView:
    line: MessageLine
    text: str  # the patient segments masked when not line.patient_visible


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


def patient_visible_column(actor: Actor) -> Any:
    """Per message row: the actor may see its case, or, for a message without a case, belongs to its site."""
    m = Hl7Message
    if actor.is_system:
        return m.id.is_not(None)
    no_case_own_site = and_(m.case_id.is_(None), m.site_id.in_(actor.sites)) if actor.sites else false()
    return case((or_(no_case_own_site, may_see_case_column(actor, m.case_id)), True), else_=False)


def masked_text(raw: str) -> str:
    """The message with every segment but the header ones reduced to its name: ``PID|***``."""
    field_separator = raw[3] if raw.startswith("MSH") and len(raw) > 3 else "|"
    lines = raw.replace("\r\n", "\r").replace("\n", "\r").split("\r")
    return "\r".join(line if line[:3] in HEADER_SEGMENTS or not line else
                     f"{line.split(field_separator, 1)[0][:3]}{field_separator}{MASK}" for line in lines)


def messages(ctx: EngineContext, actor: Actor, filters: MessageFilters, limit: int = 50,
             offset: int = 0) -> tuple[list[MessageLine], int]:
    """One page of the log, newest first, and the number of matching messages; whether `actor` may read each
    message's patient is a column of the same statement."""
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
                                      m.error, m.case_id, patient_visible_column(actor))
                               .where(*where).order_by(m.id.desc())
                               .limit(min(limit, MAX_PAGE)).offset(offset)).all()
    return [MessageLine(*row[:-1], bool(row[-1])) for row in rows], int(total)


def message_text(ctx: EngineContext, actor: Actor, message_id: int) -> MessageView | None:
    """One message with its text (administrators only, the read audited); the patient segments masked unless the
    actor may see the message's case."""
    if not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur peut lire les messages HL7.")
    with ctx.write() as session:
        found = session.execute(select(Hl7Message, patient_visible_column(actor))
                                .where(Hl7Message.id == message_id)).one_or_none()
        if found is None:
            return None
        row, visible = found[0], bool(found[1])
        line = MessageLine(row.id, row.direction, row.received_at, row.sending_application, row.sending_facility,
                           row.site_id, row.message_type, row.control_id, row.encoding, row.status, row.ack_code,
                           row.error, row.case_id, visible)
        text = row.raw if visible else masked_text(row.raw)
        record_global_event(session, actor.user_id, "hl7.message_read", {
            "message": message_id, "control_id": row.control_id, "patient_masked": not visible}, ctx.clock.now(),
            case_id=row.case_id)
        session.commit()
    return MessageView(line, text)


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
