"""Tables. The workflow state is one blob per instance; the other tables are thin indexes written with it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table_of(model: type[Base]) -> Table:
    """The Core table of a model, for the hot paths written with SQLAlchemy Core."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class ProcessDefinition(Base):
    """An immutable version of a diagram bundle."""

    __tablename__ = "process_definition"
    __table_args__ = (
        UniqueConstraint("process_id", "version", name="uq_process_definition_version"),
        UniqueConstraint("process_id", "content_hash", name="uq_process_definition_hash"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    process_id: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(256))
    content_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deployed_by: Mapped[str] = mapped_column(String(128))


class ProcessInstance(Base):
    __tablename__ = "process_instance"
    # The quality indicators find the cases of a period whose version changed since they last read them, from the
    # index alone: a case row is mostly its state (engine.services.indicators_facts, migration 0027).
    __table_args__ = (Index("ix_process_instance_started", "started_at", "process_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definition.id"), index=True)
    process_id: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # running, completed, failed, cancelled
    site_id: Mapped[str | None] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)  # bumped by every save; a stale save is a Conflict
    error: Mapped[str | None] = mapped_column(Text)
    # What lists and searches show, copied from the case data on every save
    patient_name: Mapped[str | None] = mapped_column(String(300), index=True)
    patient_birth_date: Mapped[str | None] = mapped_column(String(10))
    urgency: Mapped[str | None] = mapped_column(String(16))
    accession_number: Mapped[str | None] = mapped_column(String(64), index=True)
    summary: Mapped[str | None] = mapped_column(String(300))
    patient_ref: Mapped[str | None] = mapped_column(String(64), index=True)  # the site's patient id (RIS PID-3)
    audit_seq: Mapped[int] = mapped_column(BigInteger, default=0)  # head of this case's audit chain
    audit_hash: Mapped[str] = mapped_column(String(64))
    started_by: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Task(Base):
    """A user task: open ones form the inboxes, completed and cancelled ones the history."""

    __tablename__ = "task"
    __table_args__ = (
        Index("ix_task_open_lane", "status", "lane", "site_id"),
        Index("ix_task_assignee", "assignee", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    spec_name: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(256))
    lane: Mapped[str | None] = mapped_column(String(64))
    form_key: Mapped[str | None] = mapped_column(String(128))
    site_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # open, completed, cancelled
    restricted: Mapped[bool] = mapped_column(default=False)  # offered to the task_candidate rows only
    assignee: Mapped[str | None] = mapped_column(String(128))
    urgency: Mapped[int] = mapped_column(Integer, default=9)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(128), index=True)  # case lists: cases one was involved in


class TaskCandidate(Base):
    """A user a task is offered to (routing); when a task has candidates, only they may claim it."""

    __tablename__ = "task_candidate"

    task_id: Mapped[str] = mapped_column(ForeignKey("task.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)


class Timer(Base):
    """A waiting timer event; the scheduler only loads instances with a due row here."""

    __tablename__ = "timer"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    spec_name: Mapped[str] = mapped_column(String(128))
    expression: Mapped[str] = mapped_column(Text)
    setting: Mapped[str | None] = mapped_column(String(64), index=True)  # escalation setting it came from
    armed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class EscalationSetting(Base):
    """An administrator's value for a named delay used by the diagrams (ISO 8601 duration)."""

    __tablename__ = "escalation_setting"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    duration: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(128))


class MessageSubscription(Base):
    __tablename__ = "message_subscription"
    __table_args__ = (Index("ix_subscription_route", "message_name", "correlation_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    message_name: Mapped[str] = mapped_column(String(128))
    correlation_key: Mapped[str] = mapped_column(String(512))


class InboundMessage(Base):
    """Every message offered to the engine, kept whether or not an instance was waiting for it."""

    __tablename__ = "inbound_message"
    __table_args__ = (Index("ix_inbound_pending", "status", "message_name", "correlation_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_name: Mapped[str] = mapped_column(String(128))
    correlation_key: Mapped[str] = mapped_column(String(512))
    payload: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))  # delivered, undelivered
    delivered_to: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """Append-only; each row's hash covers its content and the previous row's hash in its chain.

    Chain 0 is global (deployments, case creations, messages nobody waited for...); every case has its
    own chain numbered by its id, whose head is kept on the case row. Cases therefore never wait for one
    another to write their audit trail, and the global chain still anchors every case's existence.
    """

    __tablename__ = "audit_event"
    __table_args__ = (UniqueConstraint("chain", "seq", name="uq_audit_event_chain_seq"),
                      # The indicators count the period's events of a few actions (migration 0027).
                      Index("ix_audit_event_action_at", "action", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    chain: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    instance_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    detail: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The audit key (engine.services.keyring) whose HMAC is `hash`; "sha256": an unkeyed event from before 0016.
    key_id: Mapped[str] = mapped_column(String(64), server_default="sha256")


class AuditHead(Base):
    """One row: the global chain's last sequence number and hash, locked to serialize its appends."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditExport(Base):
    """Where each export of the audit trail stands ("heads": signed chain heads, "atna": events sent to the
    syslog server, "heads-syslog": sink lines sent there). Bookkeeping only: verification trusts the sink."""

    __tablename__ = "audit_export"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)  # last exported audit_event id (or sink line count)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")  # failed attempts in a row
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CaseNotice(Base):
    """An alert shown in the inboxes of the people who must act (a report past its due time, no radiologist left),
    written with the save that raised it and resolved by the save that ends it (engine.services.notices)."""

    __tablename__ = "case_notice"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    site_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    audience: Mapped[str] = mapped_column(Text)  # JSON {"users": [...], "roles": [...]}
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
