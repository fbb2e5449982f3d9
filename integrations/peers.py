"""Who is at the other end of an MLLP or DICOM connection, and whether a registered sender may be them.

- TLS for the listeners (`tls_context_from_env`): `<PREFIX>CERT` and `<PREFIX>KEY` (PEM, both or neither) turn
  TLS on, `<PREFIX>CA` verifies client certificates, `<PREFIX>CLIENT_CERT` = none | optional | required (default
  required when a CA is given). TLS 1.2 at least. A bad setting raises ValueError naming the variable.
- A sender (HL7 application/facility, DICOM calling AE title) may carry a list of allowed source addresses or
  networks and the name its client certificate must bear (subject CN or a DNS subject alternative name);
  `access_refusal` says, in French, why a connection does not match them (None when it does).
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLIENT_CERT_MODES = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
CERT_NAME = re.compile(r"[A-Za-z0-9*][A-Za-z0-9 .\-_*@]{0,199}")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AccessListError(ValueError):
    """An allow-list or certificate name an administrator typed is refused (French message)."""


@dataclass(frozen=True)
class PeerIdentity:
    """The source address of a connection and, over TLS, the names of its verified client certificate."""

    host: str
    tls: bool = False
    names: tuple[str, ...] = ()


def _readable(env: Mapping[str, str], name: str) -> Path | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    path = Path(raw)
    try:
        with path.open("rb"):
            pass
    except OSError as err:
        raise ValueError(f"{name}: cannot read {raw}: {err.strerror or err}") from None
    return path


def tls_context_from_env(env: Mapping[str, str], prefix: str) -> ssl.SSLContext | None:
    """The server TLS context of a listener from `<prefix>CERT`, `KEY`, `CA`, `CLIENT_CERT`; None without CERT."""
    cert, key = _readable(env, f"{prefix}CERT"), _readable(env, f"{prefix}KEY")
    ca = _readable(env, f"{prefix}CA")
    mode = (env.get(f"{prefix}CLIENT_CERT") or "").strip().lower() or ("required" if ca else "none")
    if (cert is None) != (key is None):
        raise ValueError(f"{prefix}CERT and {prefix}KEY must be set together (the server certificate and its key)")
    if mode not in CLIENT_CERT_MODES:
        raise ValueError(f"{prefix}CLIENT_CERT must be none, optional or required, got {mode!r}")
    if cert is None or key is None:
        if ca is not None or env.get(f"{prefix}CLIENT_CERT"):
            raise ValueError(f"{prefix}CA and {prefix}CLIENT_CERT need {prefix}CERT and {prefix}KEY (TLS is off)")
        return None
    if mode != "none" and ca is None:
        raise ValueError(f"{prefix}CLIENT_CERT={mode} needs {prefix}CA (the CA that signs the client certificates)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as err:
        raise ValueError(f"{prefix}CERT / {prefix}KEY: not a PEM certificate and its private key ({err})") from None
    if ca is not None:
        try:
            context.load_verify_locations(cafile=str(ca))
        except (ssl.SSLError, OSError) as err:
            raise ValueError(f"{prefix}CA: not a PEM CA bundle ({err})") from None
    context.verify_mode = CLIENT_CERT_MODES[mode]
    return context


def certificate_names(peer_cert: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The subject common names and DNS alternative names of a verified certificate (ssl getpeercert())."""
    if not peer_cert:
        return ()
    names = [value for rdn in peer_cert.get("subject", ()) for key, value in rdn if key == "commonName"]
    names += [value for kind, value in peer_cert.get("subjectAltName", ()) if kind == "DNS"]
    return tuple(dict.fromkeys(names))


def tls_identity(sock: Any, host: str) -> PeerIdentity:
    """The identity of an accepted socket (an ssl.SSLSocket whose handshake is done, or a plain socket)."""
    if isinstance(sock, ssl.SSLSocket):
        try:
            return PeerIdentity(host, True, certificate_names(sock.getpeercert()))
        except (ValueError, OSError):
            return PeerIdentity(host, True)
    return PeerIdentity(host)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_networks(text: str | None) -> str | None:
    """An administrator's list of addresses or networks (CIDR; commas, spaces or new lines between them),
    normalised ("10.1.2.0/24, 192.0.2.7/32"); None when empty."""
    networks: list[str] = []
    for item in re.split(r"[\s,;]+", text or ""):
        if not item:
            continue
        try:
            network: Network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise AccessListError(f"Adresse ou réseau invalide : {item[:60]}") from None
        if str(network) not in networks:
            networks.append(str(network))
    if len(", ".join(networks)) > 2000:
        raise AccessListError("Liste d'adresses trop longue (2000 caractères au plus).")
    return ", ".join(networks) or None


def clean_certificate_name(text: str | None) -> str | None:
    """The client certificate name a sender must present (CN or DNS name), None when empty."""
    name = (text or "").strip()
    if not name:
        return None
    if not CERT_NAME.fullmatch(name):
        raise AccessListError(f"Nom de certificat invalide : {name[:60]} (lettres, chiffres, . - _ @, "
                              "200 caractères au plus).")
    return name


def address_allowed(networks: str | None, host: str) -> bool:
    if not networks:
        return True
    address = _address(host)
    if address is None:
        return False
    return any(address in ipaddress.ip_network(item) for item in networks.split(", "))


def access_refusal(allowed_sources: str | None, certificate_name: str | None, peer: PeerIdentity) -> str | None:
    """Why `peer` may not act for a sender with these restrictions (French), None when it may."""
    if not address_allowed(allowed_sources, peer.host):
        return f"l'adresse {peer.host or 'inconnue'} n'est pas autorisée pour cet expéditeur ({allowed_sources})"
    if certificate_name:
        if not peer.tls:
            return f"un certificat client TLS au nom de {certificate_name} est exigé (connexion sans TLS)"
        if not any(name.lower() == certificate_name.lower() for name in peer.names):
            shown = ", ".join(peer.names) or "aucun certificat"
            return f"un certificat client au nom de {certificate_name} est exigé (présenté : {shown})"
    return None
