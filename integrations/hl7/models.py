"""HL7 tables: who may send us orders, where reports go, every message in and out, and the report outbox.

The tables live on the engine's metadata (engine.store.models.Base), the one exception to "adapters import
engine.services only": they migrate with Alembic and commit in the same transaction as the case they belong to
(the report outbox row is queued by the save hook of the release).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models import Base, BigId, UTCDateTime, table_of


class Hl7Sender(Base):
    """A sending application/facility pair (MSH-3/MSH-4) an administrator attached to a site."""

    __tablename__ = "hl7_sender"
    __table_args__ = (UniqueConstraint("sending_application", "sending_facility", name="uq_hl7_sender_pair"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id"), index=True)
    sending_application: Mapped[str] = mapped_column(String(180))
    sending_facility: Mapped[str] = mapped_column(String(180))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    # When set: the source addresses/networks it may send from ("10.0.0.0/24, 192.0.2.7/32") and the name
    # (certificate CN or DNS name) its TLS client certificate must bear (integrations.peers).
    allowed_sources: Mapped[str | None] = mapped_column(Text)
    client_cert_name: Mapped[str | None] = mapped_column(String(200))


class Hl7Endpoint(Base):
    """Where the reports of a site's cases are delivered (the site's RIS, over MLLP)."""

    __tablename__ = "hl7_endpoint"

    site_id: Mapped[str] = mapped_column(ForeignKey("site.id"), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    receiving_application: Mapped[str] = mapped_column(String(180), default="")
    receiving_facility: Mapped[str] = mapped_column(String(180), default="")
    charset: Mapped[str] = mapped_column(String(20), default="UNICODE UTF-8")  # MSH-18 of what we send
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(128))


class Hl7Message(Base):
    """Every message received (stored before it is processed) or sent, with the acknowledgement."""

    __tablename__ = "hl7_message"
    __table_args__ = (
        UniqueConstraint("direction", "sending_application", "sending_facility", "control_id",
                         name="uq_hl7_message_control_id"),
        Index("ix_hl7_message_log", "direction", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))  # in, out
    control_id: Mapped[str | None] = mapped_column(String(199))  # MSH-10; none when unreadable
    sending_application: Mapped[str | None] = mapped_column(String(180))
    sending_facility: Mapped[str | None] = mapped_column(String(180))
    site_id: Mapped[str | None] = mapped_column(String(64), index=True)
    message_type: Mapped[str | None] = mapped_column(String(32))  # e.g. ORM^O01
    version: Mapped[str | None] = mapped_column(String(16))
    encoding: Mapped[str | None] = mapped_column(String(32))  # MSH-18 as sent
    raw: Mapped[str] = mapped_column(Text)  # decoded text, line endings as received
    raw_bytes: Mapped[bytes | None] = mapped_column(LargeBinary)  # kept only when the text could not be decoded
    peer: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), index=True)  # received, processed, rejected, error
    ack_code: Mapped[str | None] = mapped_column(String(2))  # AA, AE, AR
    error_code: Mapped[int | None] = mapped_column(Integer)  # HL7 table 0357, as sent in ERR-3
    error: Mapped[str | None] = mapped_column(Text)  # the reason sent in ERR (or what was done, for AA)
    case_id: Mapped[int | None] = mapped_column(BigInteger, index=True)


class Hl7Outbox(Base):
    """A report to deliver (ORU^R01), queued in the transaction of the release; never lost, retried with backoff."""

    __tablename__ = "hl7_outbox"
    __table_args__ = (
        UniqueConstraint("case_id", "kind", "release_key", name="uq_hl7_outbox_release"),
        Index("ix_hl7_outbox_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(BigInteger, index=True)
    site_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))  # ORU
    release_key: Mapped[str] = mapped_column(String(64))  # the release it reports (released_at)
    control_id: Mapped[str] = mapped_column(String(64))  # MSH-10, the same on every attempt
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending, sent, failed (failed rows are retried)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    ack_code: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


OUTBOX = table_of(Hl7Outbox)  # the Core table, for the save hook's insert

STATUSES_IN = ("received", "processed", "rejected", "error")
STATUSES_OUT = ("pending", "sent", "failed")
