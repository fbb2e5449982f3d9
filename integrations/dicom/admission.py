"""Who gets a place on the DICOM port: peers that connect and never send an A-ASSOCIATE-RQ cannot lock the
modalities out (issue 16: 10 idle sockets blocked every association for about 30 s).

A connection is *silent* until its association request arrives. When a new connection would make more than
`max_silent` silent connections (or `max_silent_per_peer` from one address), the oldest silent one of that
scope is closed to make room; a connection that has sent its request is never closed for a newcomer, and a
silent one is closed anyway after the ACSE timeout.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    host: str
    opened: float
    spoke: bool = False


class Admission:
    def __init__(self, max_silent: int = 32, max_silent_per_peer: int = 16):
        self.max_silent, self.max_silent_per_peer = max_silent, max_silent_per_peer
        self._entries: dict[Any, _Entry] = {}
        self._lock = threading.Lock()

    def admit(self, assoc: Any, host: str) -> None:
        """Register a new connection, closing the oldest silent ones over the limits."""
        with self._lock:
            self._entries[assoc] = _Entry(host, time.monotonic())
            evicted = self._over_limit(host)
        for victim in evicted:
            log.warning("DICOM: silent connection from %s closed to make room", host)
            _close(victim)

    def spoke(self, assoc: Any) -> None:
        with self._lock:
            entry = self._entries.get(assoc)
            if entry is not None:
                entry.spoke = True

    def closed(self, assoc: Any) -> None:
        """The peer closed the connection: a silent association is ended at once rather than at the ACSE
        timeout (connections opened and closed in a loop would otherwise pile up threads)."""
        with self._lock:
            entry = self._entries.pop(assoc, None)
        if entry is not None and not entry.spoke:
            _wake(assoc)

    def forget(self, assoc: Any) -> None:
        """A connection that ends before its association starts (a failed TLS handshake)."""
        with self._lock:
            self._entries.pop(assoc, None)

    def close_silent(self) -> None:
        """Close every connection that has not sent its request (the server is stopping)."""
        with self._lock:
            silent = [assoc for assoc, entry in self._entries.items() if not entry.spoke]
            for assoc in silent:
                del self._entries[assoc]
        for assoc in silent:
            _close(assoc)

    def _over_limit(self, host: str) -> list[Any]:
        evicted = []
        for limit, of_host in ((self.max_silent_per_peer, True), (self.max_silent, False)):
            silent = sorted((entry.opened, id(assoc), assoc) for assoc, entry in self._entries.items()
                            if not entry.spoke and (not of_host or entry.host == host))
            for _opened, _key, assoc in silent[:max(len(silent) - limit, 0)]:
                del self._entries[assoc]
                evicted.append(assoc)
        return evicted


def _close(assoc: Any) -> None:
    """Close the connection under a silent association, and wake its thread: pynetdicom's acceptor waits for
    the request on the DUL's queue until the ACSE timeout, and an empty item there means "no request" to it,
    which ends the association."""
    dul = getattr(assoc, "dul", None)
    raw = getattr(getattr(dul, "socket", None), "socket", None)
    if raw is not None:
        with contextlib.suppress(OSError):
            if isinstance(raw, ssl.SSLSocket):  # SSLSocket.shutdown drops the TLS state first: not that one
                socket.socket.shutdown(raw, socket.SHUT_RDWR)
            else:
                raw.shutdown(socket.SHUT_RDWR)
    _wake(assoc)


def _wake(assoc: Any) -> None:
    queue = getattr(getattr(assoc, "dul", None), "to_user_queue", None)
    if queue is not None:
        queue.put(None)
