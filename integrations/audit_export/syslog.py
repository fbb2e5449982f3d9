"""Syslog messages (RFC 5424) sent over TCP with TLS (RFC 5425: octet-counting framing), one connection per run.

Syslog over TLS has no application acknowledgement: a batch counts as sent once every frame was written and the
TLS session closed cleanly. A refused connection, a failed handshake (unknown CA, wrong name) or a write error
raises SyslogError, and the caller keeps the batch for its next attempt.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from datetime import UTC, datetime

from integrations.audit_export.settings import SyslogTarget

APP_NAME = "telerad"
ATNA_MSGID = "IHE+RFC-3881"
HEADS_MSGID = "TELERAD-HEADS"
# Facility 10 (security/authorization), severity 5 (notice), as IHE ITI TF-2 3.20 suggests for audit records.
PRI = 10 * 8 + 5
BOM = b"\xef\xbb\xbf"
TIMEOUT = 10.0


class SyslogError(OSError):
    pass


def rfc5424(message: bytes, *, hostname: str, msgid: str, at: datetime, procid: str = "-") -> bytes:
    """<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - BOM MSG (no structured data)."""
    timestamp = at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    header = f"<{PRI}>1 {timestamp} {_field(hostname, 255)} {APP_NAME} {_field(procid, 128)} {_field(msgid, 32)} -"
    return header.encode("ascii") + b" " + BOM + message


def octet_counted(frame: bytes) -> bytes:
    """RFC 5425 (and RFC 6587 octet counting): MSG-LEN SP SYSLOG-MSG."""
    return str(len(frame)).encode("ascii") + b" " + frame


def send_frames(target: SyslogTarget, frames: Iterable[bytes], timeout: float = TIMEOUT) -> int:
    """Send every frame on one connection; the number sent. Raises SyslogError when not all were."""
    sent = 0
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout) as raw:
            connection: socket.socket = _tls(target).wrap_socket(raw, server_hostname=target.host) \
                if target.tls else raw
            for frame in frames:
                connection.sendall(octet_counted(frame))
                sent += 1
            _close_politely(connection)
    except (OSError, ssl.SSLError) as error:
        raise SyslogError(f"syslog {target.host}:{target.port}: {error} ({sent} message(s) written)") from error
    return sent


def _close_politely(connection: socket.socket) -> None:
    """Tell the server we are done and wait (bounded) for it to close: it has then read every frame. A server that
    drops the connection without a close_notify has read them too, so errors here do not fail the batch."""
    try:
        if isinstance(connection, ssl.SSLSocket):
            connection.unwrap()
        else:
            connection.shutdown(socket.SHUT_WR)
            connection.recv(1)
    except OSError:
        pass


def _tls(target: SyslogTarget) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(target.ca_file) if target.ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if target.cert_file is not None:
        context.load_cert_chain(str(target.cert_file), str(target.key_file) if target.key_file else None)
    return context


def _field(value: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, at most `limit` characters, "-" when empty."""
    cleaned = "".join(c if 33 <= ord(c) <= 126 else "_" for c in value)[:limit]
    return cleaned or "-"
