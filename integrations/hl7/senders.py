"""Who may send us HL7 (application/facility pairs attached to a site) and where each site's reports go.

Changes are administrator-only, checked here whatever the entry point (page, CLI, demo), done in one transaction
and recorded in the global audit chain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.errors import Forbidden
from engine.services.audit import record_global_event
from engine.services.context import EngineContext
from engine.services.site_lookup import site_exists
from integrations.hl7.codec import CHARSETS
from integrations.hl7.models import Hl7Endpoint, Hl7Sender
from integrations.peers import AccessListError, clean_certificate_name, parse_networks

_NAME = re.compile(r"[^|^~\\&\x00-\x1f]{1,180}")
_HOST = re.compile(r"[A-Za-z0-9.\-:\[\]]{1,255}")
OUT_CHARSETS = tuple(c for c in CHARSETS if c)


class Hl7ConfigError(ValueError):
    """Refused with a French message."""


@dataclass(frozen=True)
class SenderView:
    id: int
    site_id: str
    sending_application: str
    sending_facility: str
    allowed_sources: str | None = None
    client_cert_name: str | None = None


@dataclass(frozen=True)
class SenderAccess:
    """What the listener checks for a message's sender: its site and where and how it may connect from."""

    site_id: str
    allowed_sources: str | None
    client_cert_name: str | None


@dataclass(frozen=True)
class EndpointView:
    site_id: str
    host: str
    port: int
    receiving_application: str
    receiving_facility: str
    charset: str
    active: bool


def _require_admin(actor: Actor) -> None:
    if not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur peut configurer les échanges HL7.")


def _name(value: str, what: str) -> str:
    value = (value or "").strip()
    if not _NAME.fullmatch(value):
        raise Hl7ConfigError(f"{what} : 1 à 180 caractères, sans | ^ ~ \\ &.")
    return value


def _site(session: Session, site_id: str) -> None:
    if not site_exists(session, site_id):
        raise Hl7ConfigError(f"Site inconnu : {site_id}.")


def _restrictions(allowed_sources: str | None, client_cert_name: str | None) -> tuple[str | None, str | None]:
    try:
        return parse_networks(allowed_sources), clean_certificate_name(client_cert_name)
    except AccessListError as err:
        raise Hl7ConfigError(str(err)) from None


def add_sender(ctx: EngineContext, actor: Actor, site_id: str, application: str, facility: str, *,
               allowed_sources: str | None = None, client_cert_name: str | None = None) -> int:
    """Attach a sender to a site; `allowed_sources` (addresses or CIDR networks) and `client_cert_name` (the
    CN or DNS name of its TLS client certificate), when given, restrict where and how it may connect."""
    _require_admin(actor)
    application = _name(application, "Application émettrice (MSH-3)")
    facility = _name(facility, "Établissement émetteur (MSH-4)")
    sources, cert_name = _restrictions(allowed_sources, client_cert_name)
    with ctx.write() as session:
        _site(session, site_id)
        taken = session.execute(select(Hl7Sender).where(Hl7Sender.sending_application == application,
                                                        Hl7Sender.sending_facility == facility)).scalar_one_or_none()
        if taken is not None:
            raise Hl7ConfigError(f"{application}/{facility} est déjà rattaché au site {taken.site_id}.")
        row = Hl7Sender(site_id=site_id, sending_application=application, sending_facility=facility,
                        created_at=ctx.clock.now(), created_by=actor.user_id, allowed_sources=sources,
                        client_cert_name=cert_name)
        session.add(row)
        session.flush()
        record_global_event(session, actor.user_id, "hl7.sender_added", {
            "site": site_id, "application": application, "facility": facility, "allowed_sources": sources,
            "client_cert_name": cert_name}, ctx.clock.now())
        session.commit()
        return row.id


def set_sender_access(ctx: EngineContext, actor: Actor, sender_id: int, allowed_sources: str | None,
                      client_cert_name: str | None) -> None:
    """Replace where a sender may connect from and the certificate name it must present (empty: no check)."""
    _require_admin(actor)
    sources, cert_name = _restrictions(allowed_sources, client_cert_name)
    with ctx.write() as session:
        row = session.get(Hl7Sender, sender_id)
        if row is None:
            raise Hl7ConfigError("Cet expéditeur n'existe plus.")
        row.allowed_sources, row.client_cert_name = sources, cert_name
        record_global_event(session, actor.user_id, "hl7.sender_access_set", {
            "site": row.site_id, "application": row.sending_application, "facility": row.sending_facility,
            "allowed_sources": sources, "client_cert_name": cert_name}, ctx.clock.now())
        session.commit()


def remove_sender(ctx: EngineContext, actor: Actor, sender_id: int) -> None:
    _require_admin(actor)
    with ctx.write() as session:
        row = session.get(Hl7Sender, sender_id)
        if row is None:
            raise Hl7ConfigError("Cet expéditeur n'existe plus.")
        record_global_event(session, actor.user_id, "hl7.sender_removed", {
            "site": row.site_id, "application": row.sending_application, "facility": row.sending_facility},
            ctx.clock.now())
        session.delete(row)
        session.commit()


def list_senders(ctx: EngineContext) -> list[SenderView]:
    with ctx.read() as session:
        rows = session.execute(select(Hl7Sender).order_by(Hl7Sender.site_id, Hl7Sender.sending_application,
                                                          Hl7Sender.sending_facility)).scalars()
        return [SenderView(r.id, r.site_id, r.sending_application, r.sending_facility, r.allowed_sources,
                           r.client_cert_name) for r in rows]


def site_of_sender(ctx: EngineContext, application: str, facility: str) -> str | None:
    access = sender_access(ctx, application, facility)
    return access.site_id if access is not None else None


def sender_access(ctx: EngineContext, application: str, facility: str) -> SenderAccess | None:
    with ctx.read() as session:
        row = session.execute(select(Hl7Sender.site_id, Hl7Sender.allowed_sources, Hl7Sender.client_cert_name).where(
            Hl7Sender.sending_application == application, Hl7Sender.sending_facility == facility)).first()
        return SenderAccess(row.site_id, row.allowed_sources, row.client_cert_name) if row is not None else None


def set_endpoint(ctx: EngineContext, actor: Actor, site_id: str, host: str, port: int, *,
                 receiving_application: str = "", receiving_facility: str = "", charset: str = "UNICODE UTF-8",
                 active: bool = True) -> None:
    """Create or replace where a site's reports are sent."""
    _require_admin(actor)
    host = (host or "").strip()
    if not _HOST.fullmatch(host):
        raise Hl7ConfigError("Hôte : un nom DNS ou une adresse IP.")
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise Hl7ConfigError("Port : un nombre entre 1 et 65535.")
    receiving_application = _name(receiving_application, "Application destinataire (MSH-5)") \
        if receiving_application else ""
    receiving_facility = _name(receiving_facility, "Établissement destinataire (MSH-6)") if receiving_facility else ""
    if charset not in OUT_CHARSETS:
        raise Hl7ConfigError(f"Jeu de caractères : {', '.join(OUT_CHARSETS)}.")
    now = ctx.clock.now()
    values = {"host": host, "port": port, "receiving_application": receiving_application,
              "receiving_facility": receiving_facility, "charset": charset, "active": active}
    with ctx.write() as session:
        _site(session, site_id)
        row = session.get(Hl7Endpoint, site_id)
        if row is None:
            session.add(Hl7Endpoint(site_id=site_id, updated_at=now, updated_by=actor.user_id, **values))
        else:
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at, row.updated_by = now, actor.user_id
        record_global_event(session, actor.user_id, "hl7.endpoint_set", {"site": site_id, **values}, now)
        session.commit()


def remove_endpoint(ctx: EngineContext, actor: Actor, site_id: str) -> None:
    _require_admin(actor)
    with ctx.write() as session:
        if session.execute(delete(Hl7Endpoint).where(Hl7Endpoint.site_id == site_id)).rowcount:  # type: ignore[attr-defined]
            record_global_event(session, actor.user_id, "hl7.endpoint_removed", {"site": site_id}, ctx.clock.now())
        session.commit()


def _view(row: Hl7Endpoint) -> EndpointView:
    return EndpointView(row.site_id, row.host, row.port, row.receiving_application, row.receiving_facility,
                        row.charset, row.active)


def list_endpoints(ctx: EngineContext) -> list[EndpointView]:
    with ctx.read() as session:
        return [_view(r) for r in session.execute(select(Hl7Endpoint).order_by(Hl7Endpoint.site_id)).scalars()]


def endpoint_of(ctx: EngineContext, site_id: str | None) -> EndpointView | None:
    if site_id is None:
        return None
    with ctx.read() as session:
        row = session.get(Hl7Endpoint, site_id)
        return _view(row) if row is not None else None
