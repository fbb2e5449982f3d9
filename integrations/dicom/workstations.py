"""The radiologists' viewing stations: the DICOM AE titles that may query and retrieve images (C-FIND, C-GET) and
receive them (C-MOVE destinations), each owned by one radiologist (issue 18, CH-4.1.11).

A radiologist registers and removes his own stations; an administrator does it for anyone. A station acts for its
owner: an association from its AE title is accepted only from its registered host, and only while the owner's
account is active and still holds a radiologist's role. Every change is on the global audit chain.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from engine.domain.actors import Actor
from engine.errors import Forbidden, NotFound, TeleradError
from engine.services.accounts import load_profile
from engine.services.audit import record_global_event
from engine.services.context import EngineContext
from integrations.dicom.callers import AE_TITLE
from integrations.dicom.models import DicomCallingAE, DicomWorkstation

# The people who interpret images (engine.domain.account_roles): they may register viewing stations.
WORKSTATION_ROLES = frozenset({"radiologist", "local_radiologist", "tele_expert"})
HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
                      r"[A-Za-z0-9])?)*$")
MAX_STATIONS_PER_OWNER = 20


class WorkstationError(TeleradError):
    """Refused with a French message meant for the person registering the station."""


@dataclass(frozen=True)
class Workstation:
    id: int
    owner: str
    ae_title: str
    host: str
    port: int
    created_at: datetime
    created_by: str


def is_administrator(actor: Actor) -> bool:
    return actor.is_system or "administrator" in actor.roles


def may_register(actor: Actor) -> bool:
    """Whether the actor may register stations (his own, or anyone's for an administrator)."""
    return is_administrator(actor) or bool(actor.roles & WORKSTATION_ROLES)


def _require_manager(actor: Actor, owner: str) -> None:
    if is_administrator(actor):
        return
    if actor.user_id != owner or not actor.roles & WORKSTATION_ROLES:
        raise Forbidden("Réservé aux radiologues (pour leurs propres stations) et aux administrateurs.")


def clean_host(raw: str) -> str:
    """An IP address or a DNS name."""
    host = (raw or "").strip()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not HOSTNAME.match(host) or host.replace(".", "").isdigit():
        raise WorkstationError("Adresse invalide : une adresse IP ou un nom DNS (par exemple 10.29.4.17 ou "
                               "station1.chu.fr).")
    return host.lower()


def clean_port(raw: str | int) -> int:
    try:
        port = int(str(raw).strip())
    except ValueError:
        raise WorkstationError("Port invalide : un nombre entre 1 et 65535.") from None
    if not 1 <= port <= 65535:
        raise WorkstationError("Port invalide : un nombre entre 1 et 65535.")
    return port


def _clean_title(raw: str) -> str:
    title = (raw or "").strip()
    if not AE_TITLE.match(title):
        raise WorkstationError("Titre AE invalide : 1 à 16 caractères ASCII imprimables, sans barre oblique inverse.")
    return title


def _row(row: DicomWorkstation) -> Workstation:
    return Workstation(int(row.id), row.owner, row.ae_title, row.host, int(row.port), row.created_at,
                       row.created_by)


def list_workstations(ctx: EngineContext, actor: Actor, owner: str | None = None) -> list[Workstation]:
    """The actor's own stations; an administrator sees everyone's (or `owner`'s)."""
    if not is_administrator(actor):
        owner = actor.user_id
    query = select(DicomWorkstation).order_by(DicomWorkstation.owner, DicomWorkstation.ae_title)
    if owner is not None:
        query = query.where(DicomWorkstation.owner == owner)
    with ctx.read() as session:
        return [_row(row) for row in session.execute(query).scalars()]


def add_workstation(ctx: EngineContext, actor: Actor, owner: str, ae_title: str, host: str, port: str | int) -> int:
    """Register a viewing station for `owner` (a radiologist); its id."""
    owner = (owner or "").strip()
    _require_manager(actor, owner)
    if not owner or len(owner) > 128 or not owner.isprintable():
        raise WorkstationError("Compte inconnu ou désactivé.")
    title, address, number = _clean_title(ae_title), clean_host(host), clean_port(port)
    profile = load_profile(ctx, owner)
    if profile is None or not profile.active:
        raise WorkstationError("Compte inconnu ou désactivé.")
    if not profile.roles & WORKSTATION_ROLES:
        raise WorkstationError("Seul un radiologue peut avoir des stations de visualisation.")
    now = ctx.clock.now()
    with ctx.write() as session:
        if session.execute(select(DicomCallingAE.id).where(DicomCallingAE.ae_title == title)).first():
            raise WorkstationError(f"Le titre AE {title} est celui d'une modalité autorisée : choisissez-en un autre.")
        if session.execute(select(DicomWorkstation.id).where(DicomWorkstation.ae_title == title)).first():
            raise WorkstationError(f"Le titre AE {title} est déjà enregistré (un titre AE désigne une seule station).")
        owned = session.execute(select(DicomWorkstation.id).where(DicomWorkstation.owner == owner)).all()
        if len(owned) >= MAX_STATIONS_PER_OWNER:
            raise WorkstationError(f"{MAX_STATIONS_PER_OWNER} stations au plus par radiologue.")
        row = DicomWorkstation(owner=owner, ae_title=title, host=address, port=number, created_at=now,
                               created_by=actor.user_id)
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            raise WorkstationError(f"Le titre AE {title} est déjà enregistré.") from None
        record_global_event(session, actor.user_id, "dicom.workstation_added",
                            {"owner": owner, "ae_title": title, "host": address, "port": number}, now)
        session.commit()
        return int(row.id)


def remove_workstation(ctx: EngineContext, actor: Actor, workstation_id: int) -> None:
    if not 0 < workstation_id < 2**63:
        raise NotFound("station introuvable")
    now = ctx.clock.now()
    with ctx.write() as session:
        row = session.get(DicomWorkstation, workstation_id)
        if row is None:
            raise NotFound("station introuvable")
        if not is_administrator(actor) and row.owner != actor.user_id:
            raise NotFound("station introuvable")  # another's station is not even said to exist
        _require_manager(actor, row.owner)
        detail = {"owner": row.owner, "ae_title": row.ae_title, "host": row.host, "port": row.port}
        session.execute(delete(DicomWorkstation).where(DicomWorkstation.id == workstation_id))
        record_global_event(session, actor.user_id, "dicom.workstation_removed", detail, now)
        session.commit()


def workstation_by_title(ctx: EngineContext, ae_title: str) -> Workstation | None:
    with ctx.read() as session:
        row = session.execute(select(DicomWorkstation).where(
            DicomWorkstation.ae_title == (ae_title or "").strip())).scalar_one_or_none()
        return _row(row) if row is not None else None


def owner_actor(ctx: EngineContext, station: Workstation) -> Actor | None:
    """Who the station acts for: its owner, while his account is active and holds a radiologist's role."""
    profile = load_profile(ctx, station.owner)
    if profile is None or not profile.active or not profile.roles & WORKSTATION_ROLES:
        return None
    return profile.actor


def _normalised(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        parsed = ipaddress.ip_address(address.strip("[]").split("%")[0])
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def host_matches(host: str, address: str) -> bool:
    """Whether a connection from `address` comes from the station's registered host (an IP address, or a DNS
    name resolved now)."""
    peer = _normalised(address)
    if peer is None:
        return False
    registered = _normalised(host)
    if registered is not None:
        return registered == peer
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return any(_normalised(str(info[4][0])) == peer for info in infos)


def telerad_endpoint(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(AE title, port) a station calls Telerad's DICOM service at (TELERAD_DICOM_AE_TITLE, _PORT), to show."""
    env = os.environ if env is None else env
    return (env.get("TELERAD_DICOM_AE_TITLE") or "TELERAD").strip(), (env.get("TELERAD_DICOM_PORT") or "11112").strip()
