"""Site quality records (CH-5.6, CH-5.2): each radiologist's visits to the sites he serves under a convention, the
imaging devices of each site with their validation by a radiologist bound to the site, and each radiologist's
reading workstations with their declared display conformity (engine.services.site_visits, site_devices,
reading_stations). Rows are written by audited use cases only."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models import Base, BigId, UTCDateTime


class SiteVisitRow(Base):
    """A radiologist's visit to a requesting site: installations checked, protocol knowledge reviewed (CH-5.6)."""

    __tablename__ = "site_visit"
    __table_args__ = (Index("ix_site_visit_site_radiologist", "site_id", "radiologist", "visited_on"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id"))
    radiologist: Mapped[str] = mapped_column(ForeignKey("app_user.username"))
    visited_on: Mapped[date] = mapped_column(Date)
    findings: Mapped[str] = mapped_column(Text)
    protocols_reviewed: Mapped[str] = mapped_column(Text)  # JSON array of protocol ids (engine.services.protocols)
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SiteDeviceRow(Base):
    """An imaging device of a site and, once done, its validation by a radiologist bound to the site (CH-5.6)."""

    __tablename__ = "site_device"
    __table_args__ = (Index("ix_site_device_site", "site_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id"))
    modality: Mapped[str] = mapped_column(String(8))
    manufacturer: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(200))
    serial: Mapped[str] = mapped_column(String(100))  # serial number or the site's inventory id
    installed_on: Mapped[date] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    validated_on: Mapped[date | None] = mapped_column(Date)
    validated_by: Mapped[str | None] = mapped_column(ForeignKey("app_user.username"))
    validation_remarks: Mapped[str | None] = mapped_column(Text)
    validation_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReadingStationRow(Base):
    """A radiologist's reading workstation and his declaration that its display meets the diagnostic display
    requirements (CH-5.2: declared, not checked by software). Not a DICOM station (dicom_workstation)."""

    __tablename__ = "reading_station"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("app_user.username"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    display_model: Mapped[str] = mapped_column(String(200))
    conformity_declared: Mapped[bool] = mapped_column(Boolean, default=False)
    declared_on: Mapped[date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(Text)  # the standard or reference and the quality controls done
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
