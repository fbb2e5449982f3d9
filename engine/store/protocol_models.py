"""The protocol catalogue administrators edit (CH-4.1.9, CH-4.1.10): one row per acquisition protocol.

Rows are never deleted: cases keep the id of the protocol they used, so a protocol is deactivated instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Boolean, Connection, String, Text, insert
from sqlalchemy.orm import Mapped, mapped_column

from engine.domain.actors import SYSTEM_USER
from engine.domain.protocols import DEFAULT_PROTOCOLS, Protocol
from engine.store.models import Base, UTCDateTime, table_of


class ProtocolRow(Base):
    __tablename__ = "protocol"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    modality: Mapped[str] = mapped_column(String(8))
    body_region: Mapped[str] = mapped_column(String(64))
    agent_class: Mapped[str | None] = mapped_column(String(32))  # None: no injection
    patient_groups: Mapped[str] = mapped_column(Text)  # JSON array, e.g. ["adult", "child"]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(128))


def row_values(protocol: Protocol) -> dict[str, object]:
    """The columns of a protocol, updated_at and updated_by excepted."""
    return {"id": protocol.id, "label": protocol.label, "modality": protocol.modality,
            "body_region": protocol.body_region, "agent_class": protocol.agent_class,
            "patient_groups": json.dumps(list(protocol.patient_groups)), "active": protocol.active}


def protocol_of(row: ProtocolRow) -> Protocol:
    groups = json.loads(row.patient_groups or "[]")
    return Protocol(row.id, row.label, row.modality, row.body_region, row.agent_class,
                    tuple(g for g in groups if isinstance(g, str)), bool(row.active))


def seed_default_protocols(connection: Connection, protocols: Iterable[Protocol] = DEFAULT_PROTOCOLS,
                           at: datetime | None = None) -> None:
    """Insert the default catalogue into an empty protocol table (the migration; test databases once emptied)."""
    moment = at or datetime.now(UTC)
    rows = [{**row_values(p), "updated_at": moment, "updated_by": SYSTEM_USER} for p in protocols]
    if rows:
        connection.execute(insert(table_of(ProtocolRow)), rows)
