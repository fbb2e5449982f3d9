"""People, places and agreements: users with roles and sites, territories, sites, conventions, API tokens,
plus what clinicians add to a case (messages, attachments), and how people are reached outside the browser
(their contacts and preferences, the notification outbox: engine.services.notifications)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models import Base, BigId, UTCDateTime


class TerritoryRow(Base):
    __tablename__ = "territory"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(8))
    region: Mapped[str] = mapped_column(String(64))


class TerritoryNeighbour(Base):
    __tablename__ = "territory_neighbour"

    territory_id: Mapped[str] = mapped_column(ForeignKey("territory.id"), primary_key=True)
    neighbour_id: Mapped[str] = mapped_column(ForeignKey("territory.id"), primary_key=True)


class SiteRow(Base):
    __tablename__ = "site"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    territory_id: Mapped[str] = mapped_column(ForeignKey("territory.id"))


class User(Base):
    __tablename__ = "app_user"

    username: Mapped[str] = mapped_column(String(128), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(256))
    totp_secret: Mapped[str] = mapped_column(String(255))  # Fernet token (engine.services.accounts_totp)
    totp_enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int] = mapped_column(BigId, default=0)  # refuses replay of a used code
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    language: Mapped[str] = mapped_column(String(8), default="fr")
    # Moves when the account's sessions must end (logout, password, second factor, roles or sites, deactivation):
    # a session carries the value it was opened with (engine.services.accounts.Profile.session_epoch).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Radiologists (CH-3.1, CH-3.2)
    rpps: Mapped[str | None] = mapped_column(String(11))
    authorization_expires: Mapped[date | None] = mapped_column(Date)
    insurance_expires: Mapped[date | None] = mapped_column(Date)
    extraterritorial: Mapped[bool] = mapped_column(Boolean, default=False)
    foreign_authorization_on_file: Mapped[bool] = mapped_column(Boolean, default=False)
    foreign_insurance_on_file: Mapped[bool] = mapped_column(Boolean, default=False)
    territory_id: Mapped[str | None] = mapped_column(ForeignKey("territory.id"))
    external_company: Mapped[str | None] = mapped_column(String(200))


    def end_sessions(self) -> None:
        """End every open session of this account (saved with the caller's transaction): a session row
        (UserSession) lives only while its epoch is the account's."""
        self.session_epoch = int(self.session_epoch or 0) + 1


class UserSession(Base):
    """A signed-in browser (engine.services.user_sessions). The cookie carries a random secret of which only the
    SHA-256 is stored; the session lives while ended_at is empty, its epoch is the account's, and it is younger
    than the absolute lifetime and more recently seen than the idle timeout."""

    __tablename__ = "user_session"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    username: Mapped[str] = mapped_column(ForeignKey("app_user.username"), index=True)
    epoch: Mapped[int] = mapped_column(Integer)  # the account's session_epoch when it was opened
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)  # refreshed at most once a minute
    client_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))

class UserRole(Base):
    __tablename__ = "user_role"

    username: Mapped[str] = mapped_column(ForeignKey("app_user.username"), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)


class UserSite(Base):
    __tablename__ = "user_site"

    username: Mapped[str] = mapped_column(ForeignKey("app_user.username"), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id"), primary_key=True)


class ConventionRow(Base):
    """Medico-organisational convention of a site (CH-6.1), active once validated and approved (CH-3.4)."""

    __tablename__ = "convention"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id"), index=True)
    cme_validated: Mapped[bool] = mapped_column(Boolean, default=False)
    approved_by_g4: Mapped[bool] = mapped_column(Boolean, default=False)
    approved_by_council: Mapped[bool] = mapped_column(Boolean, default=False)
    external_allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    tiers: Mapped[str] = mapped_column(String(16), default="1,2,3")
    # Its content (issue 19, item 5; engine.domain.convention_content): approvals with their dates (documents in
    # engine.store.convention_models), the pathway and duties (CH-6.1, CH-4.1.14), the technical part (CH-6.2),
    # the remuneration declaration (CH-6.4), expiry and renewal; an active convention migrated without them is
    # flagged legacy_incomplete (it keeps routing until completed or deactivated, docs/conventions.md).
    cme_validated_on: Mapped[date | None] = mapped_column(Date)
    g4_approved_on: Mapped[date | None] = mapped_column(Date)
    council_approved_on: Mapped[date | None] = mapped_column(Date)
    medical_lead: Mapped[str | None] = mapped_column(ForeignKey("app_user.username"))
    patient_pathway: Mapped[str | None] = mapped_column(Text)
    emergency_pathway: Mapped[str | None] = mapped_column(Text)
    emergency_duties: Mapped[str | None] = mapped_column(Text)
    travel_duties: Mapped[str | None] = mapped_column(Text)
    fallback_procedure: Mapped[str | None] = mapped_column(Text)
    equipment: Mapped[str | None] = mapped_column(Text)
    network_bandwidth_mbps: Mapped[int | None] = mapped_column(Integer)
    restoration_delay_hours: Mapped[int | None] = mapped_column(Integer)
    archiving: Mapped[str | None] = mapped_column(Text)
    remuneration_declared_by: Mapped[str | None] = mapped_column(String(128))
    remuneration_declared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_on: Mapped[date | None] = mapped_column(Date)
    renewal_on: Mapped[date | None] = mapped_column(Date)
    visit_interval_days: Mapped[int] = mapped_column(Integer, default=365, server_default="365")
    legacy_incomplete: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ConventionRadiologist(Base):
    __tablename__ = "convention_radiologist"

    convention_id: Mapped[int] = mapped_column(ForeignKey("convention.id"), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("app_user.username"), primary_key=True)


class OnCallSlotRow(Base):
    """A radiologist on duty for a territory over a period (permanence des soins)."""

    __tablename__ = "oncall_slot"
    __table_args__ = (Index("ix_oncall_territory_time", "territory_id", "starts_at", "ends_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    territory_id: Mapped[str] = mapped_column(ForeignKey("territory.id"))
    username: Mapped[str] = mapped_column(ForeignKey("app_user.username"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """A personal bearer token; only its SHA-256 is stored. It expires (renewable) and either only reads
    ("read": GET calls) or also acts ("act"): engine.services.accounts_tokens."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("app_user.username"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    scope: Mapped[str] = mapped_column(String(8), default="act", server_default="act")


class CaseMessage(Base):
    """The dialogue of a case (CH-4.1.5), kept in the record."""

    __tablename__ = "case_message"
    __table_args__ = (Index("ix_case_message_case", "instance_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"))
    author: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Attachment(Base):
    """A file stored with a case (prior reports, CH-4.1.8), content-addressed on disk."""

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigId)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str] = mapped_column(String(128))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NotificationContact(Base):
    """A person's email address, phone number (E.164) and notification preferences ({event: [channels]},
    NULL: the defaults of engine.services.notification_contacts)."""

    __tablename__ = "notification_contact"

    username: Mapped[str] = mapped_column(ForeignKey("app_user.username"), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(16))
    preferences: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NotificationOutbox(Base):
    """One message to one person on one channel, written in the transaction of the save that raised its event,
    sent by the worker (integrations.notify), retried with backoff until sent or given up (status failed)."""

    __tablename__ = "notification_outbox"
    __table_args__ = (
        UniqueConstraint("recipient", "channel", "event_key", name="uq_notification_once"),
        Index("ix_notification_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event: Mapped[str] = mapped_column(String(32))
    event_key: Mapped[str] = mapped_column(String(128))
    case_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    site_id: Mapped[str | None] = mapped_column(String(64))
    urgency: Mapped[str | None] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(16))  # pending, sent, failed (given up)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
