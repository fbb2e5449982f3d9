"""DICOM tables: calling AE titles allowed per site, the radiologists' viewing stations, and the index of received
studies, series and instances.

The files themselves are stored content-addressed on disk (see storage.py); these rows are written in one
transaction after the file is safely on disk, so nothing is ever half-indexed.

The tables live on the engine's metadata (engine.store.models.Base), the one exception to "adapters import
engine.services only": they migrate with Alembic and commit in the same transaction as the case they belong to.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models import Base, BigId, UTCDateTime, table_of

# Study status: no case found yet / held (the case's identity not checked yet, or the images' identity differs:
# waiting for the technologist, CH-4.1.6) / part of its case / refused by the technologist.
STUDY_STATUSES = ("receiving", "held", "attached", "rejected")


class DicomCallingAE(Base):
    """A modality or PACS allowed to send images, and the site its images belong to (one site per title)."""

    __tablename__ = "dicom_calling_ae"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id"), index=True)
    ae_title: Mapped[str] = mapped_column(String(16), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    # When set: the source addresses/networks it may call from and the name its TLS client certificate must
    # bear (integrations.peers).
    allowed_sources: Mapped[str | None] = mapped_column(Text)
    client_cert_name: Mapped[str | None] = mapped_column(String(200))


class DicomWorkstation(Base):
    """A radiologist's viewing station: it may query and retrieve (C-FIND, C-GET) the studies its owner may see,
    from the host registered, and receive the C-MOVEs of studies its owner may see."""

    __tablename__ = "dicom_workstation"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    owner: Mapped[str] = mapped_column(ForeignKey("app_user.username"), index=True)
    ae_title: Mapped[str] = mapped_column(String(16), unique=True)
    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))


class DicomStudy(Base):
    __tablename__ = "dicom_study"
    __table_args__ = (Index("ix_dicom_study_pending", "status", "notified_at", "last_received_at"),)

    uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), index=True)
    site_id: Mapped[str | None] = mapped_column(String(64), index=True)
    accession_number: Mapped[str | None] = mapped_column(String(64), index=True)
    patient_id: Mapped[str | None] = mapped_column(String(64))
    patient_name: Mapped[str | None] = mapped_column(String(324))
    patient_birth_date: Mapped[str | None] = mapped_column(String(10))
    patient_sex: Mapped[str | None] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    hold_reason: Mapped[str | None] = mapped_column(String(300))
    identity_case_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), index=True)
    first_received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    match_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last search for a case (tick)


class DicomSeries(Base):
    __tablename__ = "dicom_series"

    uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    study_uid: Mapped[str] = mapped_column(ForeignKey("dicom_study.uid"), index=True)
    modality: Mapped[str | None] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(String(200))
    number: Mapped[int | None] = mapped_column(Integer)


class DicomInstance(Base):
    __tablename__ = "dicom_instance"

    sop_instance_uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    series_uid: Mapped[str] = mapped_column(ForeignKey("dicom_series.uid"), index=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    instance_number: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    transfer_syntax: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[int | None] = mapped_column(Integer)
    frames: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))  # dicom (C-STORE) or upload (web)
    calling_ae: Mapped[str | None] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DicomHeldInstance(Base):
    """An instance naming a known study but sent by another site, carrying another patient's traits or sent to
    another case than the study's: stored (its file is kept) but never indexed into that study (CH-4.1.6,
    CH-8.1), with the reason, for reconciliation."""

    __tablename__ = "dicom_held_instance"

    sop_instance_uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    study_uid: Mapped[str] = mapped_column(String(64), index=True)
    series_uid: Mapped[str] = mapped_column(String(64))
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    transfer_syntax: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), index=True)  # the study's case
    site_id: Mapped[str | None] = mapped_column(String(64))  # the sender's
    source: Mapped[str] = mapped_column(String(16))
    calling_ae: Mapped[str | None] = mapped_column(String(16))
    patient_id: Mapped[str | None] = mapped_column(String(64))
    patient_name: Mapped[str | None] = mapped_column(String(324))
    patient_birth_date: Mapped[str | None] = mapped_column(String(10))
    patient_sex: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(300))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


# The Core tables, for the per-instance hot path and the stability tick (written with SQLAlchemy Core).
STUDY = table_of(DicomStudy)
SERIES = table_of(DicomSeries)
INSTANCE = table_of(DicomInstance)
HELD = table_of(DicomHeldInstance)
WORKSTATION = table_of(DicomWorkstation)
