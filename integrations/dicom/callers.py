"""The calling AE titles allowed to send images, each bound to the site its images belong to."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from engine.domain.actors import Actor
from engine.errors import Forbidden, NotFound, TeleradError
from engine.services.audit import record_global_event
from engine.services.context import EngineContext
from engine.services.site_lookup import site_exists, with_site_name
from integrations.dicom.models import DicomCallingAE
from integrations.peers import AccessListError, clean_certificate_name, parse_networks

# Default character repertoire without backslash or control characters; 16 characters at most (PS3.5 AE VR).
AE_TITLE = re.compile(r"^[\x20-\x5B\x5D-\x7E]{1,16}$")


class CallerError(TeleradError):
    """Refused with a French message meant for the administrator."""


@dataclass(frozen=True)
class CallingAE:
    id: int
    site_id: str
    site_name: str
    ae_title: str
    created_at: datetime
    created_by: str
    allowed_sources: str | None = None
    client_cert_name: str | None = None


@dataclass(frozen=True)
class CallerAccess:
    """What the SCP checks for a calling AE title: its site and where and how it may connect from."""

    site_id: str
    allowed_sources: str | None
    client_cert_name: str | None


def _require_administrator(actor: Actor) -> None:
    if not actor.is_system and "administrator" not in actor.roles:
        raise Forbidden("Réservé aux administrateurs.")


def clean_ae_title(raw: str) -> str:
    title = (raw or "").strip()
    if not AE_TITLE.match(title):
        raise CallerError("Titre AE invalide : 1 à 16 caractères ASCII imprimables, sans barre oblique inverse.")
    return title


def _restrictions(allowed_sources: str | None, client_cert_name: str | None) -> tuple[str | None, str | None]:
    try:
        return parse_networks(allowed_sources), clean_certificate_name(client_cert_name)
    except AccessListError as err:
        raise CallerError(str(err)) from None


def site_for_calling_ae(ctx: EngineContext, ae_title: str) -> str | None:
    """The site of an allowed calling AE title, None for an unknown caller."""
    access = caller_access(ctx, ae_title)
    return access.site_id if access is not None else None


def caller_access(ctx: EngineContext, ae_title: str) -> CallerAccess | None:
    """The site and connection restrictions of an allowed calling AE title, None for an unknown caller."""
    with ctx.read() as session:
        row = session.execute(select(DicomCallingAE.site_id, DicomCallingAE.allowed_sources,
                                     DicomCallingAE.client_cert_name).where(
            DicomCallingAE.ae_title == (ae_title or "").strip())).first()
        return CallerAccess(row.site_id, row.allowed_sources, row.client_cert_name) if row is not None else None


def list_calling_aes(ctx: EngineContext) -> list[CallingAE]:
    with ctx.read() as session:
        rows = session.execute(with_site_name(select(DicomCallingAE), DicomCallingAE.site_id)
                               .order_by(DicomCallingAE.site_id, DicomCallingAE.ae_title)).all()
        return [CallingAE(r.id, r.site_id, name, r.ae_title, r.created_at, r.created_by, r.allowed_sources,
                          r.client_cert_name) for r, name in rows]


def add_calling_ae(ctx: EngineContext, actor: Actor, site_id: str, ae_title: str, *,
                   allowed_sources: str | None = None, client_cert_name: str | None = None) -> int:
    """Allow a calling AE title for a site; `allowed_sources` (addresses or CIDR networks) and
    `client_cert_name` (CN or DNS name of its TLS client certificate), when given, restrict its associations."""
    _require_administrator(actor)
    title = clean_ae_title(ae_title)
    sources, cert_name = _restrictions(allowed_sources, client_cert_name)
    now = ctx.clock.now()
    with ctx.write() as session:
        if not site_exists(session, site_id):
            raise CallerError("Site inconnu.")
        if session.execute(select(DicomCallingAE.id).where(DicomCallingAE.ae_title == title)).first():
            raise CallerError(f"Le titre AE {title} est déjà autorisé (un titre AE appartient à un seul site).")
        row = DicomCallingAE(site_id=site_id, ae_title=title, created_at=now, created_by=actor.user_id,
                             allowed_sources=sources, client_cert_name=cert_name)
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            raise CallerError(f"Le titre AE {title} est déjà autorisé.") from None
        record_global_event(session, actor.user_id, "dicom.caller_added", {
            "site_id": site_id, "ae_title": title, "allowed_sources": sources, "client_cert_name": cert_name}, now)
        session.commit()
        return int(row.id)


def set_caller_access(ctx: EngineContext, actor: Actor, caller_id: int, allowed_sources: str | None,
                      client_cert_name: str | None) -> None:
    """Replace where a calling AE may connect from and the certificate name it must present (empty: no check)."""
    _require_administrator(actor)
    sources, cert_name = _restrictions(allowed_sources, client_cert_name)
    now = ctx.clock.now()
    with ctx.write() as session:
        row = session.get(DicomCallingAE, caller_id)
        if row is None:
            raise NotFound("titre AE introuvable")
        row.allowed_sources, row.client_cert_name = sources, cert_name
        record_global_event(session, actor.user_id, "dicom.caller_access_set", {
            "site_id": row.site_id, "ae_title": row.ae_title, "allowed_sources": sources,
            "client_cert_name": cert_name}, now)
        session.commit()


def remove_calling_ae(ctx: EngineContext, actor: Actor, caller_id: int) -> None:
    _require_administrator(actor)
    now = ctx.clock.now()
    with ctx.write() as session:
        row = session.get(DicomCallingAE, caller_id)
        if row is None:
            raise NotFound("titre AE introuvable")
        detail = {"site_id": row.site_id, "ae_title": row.ae_title}
        session.execute(delete(DicomCallingAE).where(DicomCallingAE.id == caller_id))
        record_global_event(session, actor.user_id, "dicom.caller_removed", detail, now)
        session.commit()
