"""Whether the configured peers answer now (CH-5.5, the administrator's link health page): each site's MLLP
endpoint (where reports go, integrations.hl7.senders) by a TCP connection, and each site's PACS
(integrations.dicom.pacs) by a DICOM C-ECHO (Verification) with pynetdicom. Every probe has a short timeout and
they run side by side, so the page waits a few seconds at most whatever the number of peers."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from engine.services.context import EngineContext
from integrations.dicom.pacs import list_pacs
from integrations.hl7.senders import list_endpoints

TIMEOUT = 3.0
MAX_WORKERS = 16
VERIFICATION = "1.2.840.10008.1.1"


@dataclass(frozen=True)
class Peer:
    kind: str  # MLLP | DICOM
    site_id: str
    host: str
    port: int
    ae_title: str = ""


@dataclass(frozen=True)
class Probe:
    peer: Peer
    reachable: bool
    detail: str  # French: why not, or what answered


def configured_peers(ctx: EngineContext) -> list[Peer]:
    peers = [Peer("MLLP", e.site_id, e.host, e.port) for e in list_endpoints(ctx) if e.active]
    peers += [Peer("DICOM", p.site_id, p.host, p.port, p.ae_title) for p in list_pacs(ctx)]
    return peers


def tcp_probe(host: str, port: int, timeout: float = TIMEOUT) -> str | None:
    """None when a TCP connection opens, else why not (French)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        return f"pas de réponse en {timeout:g} s"
    except OSError as err:
        return f"connexion impossible ({err.strerror or err})"


def echo_probe(peer: Peer, calling_ae: str, timeout: float = TIMEOUT) -> str | None:
    """None when the PACS answers a C-ECHO with success, else why not (French)."""
    from pynetdicom import AE

    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.connection_timeout = timeout
    ae.add_requested_context(VERIFICATION)
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title)
    if not assoc.is_established:
        return "association DICOM refusée ou PACS injoignable"
    try:
        status = assoc.send_c_echo()
        code = getattr(status, "Status", None)
        return None if code == 0 else f"C-ECHO sans succès (statut {code})"
    finally:
        assoc.release()


def _probe(peer: Peer, calling_ae: str, timeout: float) -> Probe:
    why = tcp_probe(peer.host, peer.port, timeout)
    if why is None and peer.kind == "DICOM":
        why = echo_probe(peer, calling_ae, timeout)
    return Probe(peer, why is None, why or ("C-ECHO réussi" if peer.kind == "DICOM" else "connexion TCP ouverte"))


def probe_peers(peers: list[Peer], calling_ae: str = "TELERAD", timeout: float = TIMEOUT) -> list[Probe]:
    if not peers:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(peers))) as pool:
        return list(pool.map(lambda peer: _probe(peer, calling_ae, timeout), peers))
