"""MLLP (VT message FS CR) over TCP: our own threaded listener and a small client.

hl7apy's MLLPServer is not used (UTF-8 only, one message per connection, byte-by-byte reads, no ACK when the
handler fails). This listener keeps each connection open across messages, reads in blocks, answers every
frame (an ACK built from the frame header when the handler raises) and refuses frames over 1 MiB with AR.
With a TLS context (integrations.peers) each connection's handshake runs in its own thread and counts against the
first-frame timeout; the handler gets the peer's address and certificate names (`Peer`).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from integrations.hl7.codec import fallback_ack
from integrations.peers import PeerIdentity, tls_identity

log = logging.getLogger(__name__)

START, END = b"\x0b", b"\x1c\x0d"
MAX_MESSAGE = 1024 * 1024
# handler(payload, truncated, peer) -> the bytes of the ACK (without framing)
Handler = Callable[[bytes, bool, str], bytes]


def frame(message: bytes) -> bytes:
    return START + message + END


class Peer(str):
    """The "host:port" of a connection (what handlers log and store), carrying who the peer is: its address and,
    over TLS, the names of its verified client certificate."""

    identity: PeerIdentity

    def __new__(cls, identity: PeerIdentity, port: int) -> Peer:
        peer = super().__new__(cls, f"{identity.host}:{port}")
        peer.identity = identity
        return peer


def identity_of(peer: str) -> PeerIdentity:
    """The identity a listener gave; for a plain "host:port" text, the address alone."""
    identity = getattr(peer, "identity", None)
    if isinstance(identity, PeerIdentity):
        return identity
    return PeerIdentity(peer.rsplit(":", 1)[0] if ":" in peer else peer)


def _shutdown(conn: socket.socket, how: int) -> None:
    """Shut the connection down under TLS too: SSLSocket.shutdown would drop the TLS state first, and an ACK
    still being written would then go out in clear."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(conn, how)


class FrameReader:
    """Splits a byte stream into MLLP frames; bytes outside frames are dropped, long frames are truncated."""

    def __init__(self, max_size: int = MAX_MESSAGE):
        self.max_size = max_size
        self._buffer = bytearray()
        self._inside = False
        self._overflow = False

    def feed(self, data: bytes) -> list[tuple[bytes, bool]]:
        self._buffer += data
        frames: list[tuple[bytes, bool]] = []
        while True:
            if not self._inside:
                start = self._buffer.find(START)
                if start < 0:
                    self._buffer.clear()  # noise between frames
                    return frames
                del self._buffer[:start + 1]
                self._inside, self._overflow = True, False
            end = self._buffer.find(END)
            if end < 0:
                if len(self._buffer) > self.max_size + 1:  # keep the head (its MSH makes the ACK), drop the rest
                    del self._buffer[self.max_size:-1]
                    self._overflow = True
                return frames
            restart = self._buffer.rfind(START, 0, end)
            if restart >= 0:  # a frame abandoned by the sender, then a new one: keep the new one
                del self._buffer[:restart + 1]
                end -= restart + 1
            payload, truncated = bytes(self._buffer[:end]), self._overflow or end > self.max_size
            frames.append((payload[:self.max_size], truncated))
            del self._buffer[:end + len(END)]
            self._inside = False

    @property
    def pending(self) -> bool:
        return self._inside


@dataclass
class _Connection:
    peer_host: str
    thread: threading.Thread
    opened: float
    spoke: bool = False  # a complete frame arrived: a RIS at work, never evicted for a newcomer


class MllpListener:
    """A threaded MLLP server: one thread per connection, connections kept open, every frame answered.

    Peers that connect and say nothing cannot lock the RIS out: a connection must deliver its first frame within
    `first_frame_timeout`, and when the listener is full (`max_connections`, or `max_per_peer` from one address)
    a newcomer takes the place of the oldest connection that has not sent a frame yet. A connection that has
    spoken keeps its place until it has been idle for `idle_timeout`.
    """

    def __init__(self, host: str, port: int, handler: Handler, *, max_connections: int = 64,
                 max_per_peer: int = 16, first_frame_timeout: float = 10.0, idle_timeout: float = 600.0,
                 max_message: int = MAX_MESSAGE, tls: ssl.SSLContext | None = None):
        self.host, self.requested_port, self.handler, self.tls = host, port, handler, tls
        self.max_connections, self.max_per_peer = max_connections, max_per_peer
        self.first_frame_timeout, self.idle_timeout, self.max_message = first_frame_timeout, idle_timeout, max_message
        self._server: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._connections: dict[socket.socket, _Connection] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.port: int | None = None

    def start(self) -> None:
        server = socket.create_server((self.host, self.requested_port), reuse_port=False, backlog=128)
        server.settimeout(0.5)
        self._server, self.port = server, server.getsockname()[1]
        self._stopping.clear()
        self._accept_thread = threading.Thread(target=self._accept, name=f"mllp-accept-{self.port}", daemon=True)
        self._accept_thread.start()
        log.info("MLLP listener on %s:%s%s", self.host, self.port, " (TLS)" if self.tls is not None else "")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting; messages being handled are finished and acknowledged, then connections close."""
        self._stopping.set()
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
        if self._server is not None:
            self._server.close()
        with self._lock:
            connections = dict(self._connections)
        for conn in connections:
            _shutdown(conn, socket.SHUT_RD)  # wakes a blocked recv; an ACK being written still goes out
        for connection in connections.values():
            connection.thread.join(timeout)
        self._server, self._accept_thread = None, None

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stopping.is_set():
            try:
                conn, address = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            peer = f"{address[0]}:{address[1]}"
            if self.tls is not None:  # the handshake itself runs in the connection's thread
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
                except (OSError, ValueError):
                    conn.close()
                    continue
            with self._lock:
                if not self._make_room(address[0]):
                    log.warning("MLLP: %s connections open (%s from %s), every one of them active: refusing %s",
                                len(self._connections), self._count(address[0]), address[0], peer)
                    conn.close()
                    continue
                thread = threading.Thread(target=self._serve, args=(conn, address), name=f"mllp-{peer}",
                                          daemon=True)
                self._connections[conn] = _Connection(address[0], thread, time.monotonic())
            thread.start()

    def _make_room(self, host: str) -> bool:
        """Whether a new connection from `host` may be served, closing the oldest silent connection (of that
        host when it is its own limit that is reached) to make room; called with the lock held."""
        for full, of_host in ((self._count(host) >= self.max_per_peer, True),
                              (len(self._connections) >= self.max_connections, False)):
            if not full:
                continue
            silent = [(c.opened, conn) for conn, c in self._connections.items()
                      if not c.spoke and (not of_host or c.peer_host == host)]
            if not silent:
                return False
            _opened, oldest = min(silent, key=lambda item: item[0])
            del self._connections[oldest]  # its thread ends on the closed socket
            _shutdown(oldest, socket.SHUT_RDWR)
        return True

    def _count(self, host: str) -> int:
        return sum(1 for c in self._connections.values() if c.peer_host == host)

    def _serve(self, conn: socket.socket, address: tuple[str, int]) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(self.first_frame_timeout)
        opened = time.monotonic()
        reader = FrameReader(self.max_message)
        peer: str = f"{address[0]}:{address[1]}"
        try:
            if isinstance(conn, ssl.SSLSocket):
                conn.do_handshake()  # within the first-frame timeout; an evicted connection fails here
                conn.settimeout(max(0.01, opened + self.first_frame_timeout - time.monotonic()))
            peer = Peer(tls_identity(conn, address[0]), address[1])
            while not self._stopping.is_set() or reader.pending:
                try:
                    data = conn.recv(65536)
                except (TimeoutError, OSError):
                    break
                if not data:
                    break
                if not self._has_spoken(conn) and time.monotonic() > opened + self.first_frame_timeout:
                    break  # bytes trickling in without ever completing a frame
                for payload, truncated in reader.feed(data):
                    self._spoke(conn)
                    conn.sendall(frame(self._answer(payload, truncated, peer)))
        except ssl.SSLError as err:
            log.warning("MLLP TLS connection %s refused or broken: %s", peer, err.reason or err)
        except OSError as err:
            log.info("MLLP connection %s closed: %s", peer, err)
        finally:
            with self._lock:
                self._connections.pop(conn, None)
            with contextlib.suppress(OSError):
                conn.close()

    def _has_spoken(self, conn: socket.socket) -> bool:
        connection = self._connections.get(conn)
        return connection is not None and connection.spoke

    def _spoke(self, conn: socket.socket) -> None:
        with self._lock:
            connection = self._connections.get(conn)
            if connection is not None and not connection.spoke:
                connection.spoke = True
                conn.settimeout(self.idle_timeout)

    def _answer(self, payload: bytes, truncated: bool, peer: str) -> bytes:
        try:
            return self.handler(payload, truncated, peer)
        except Exception:  # never leave a message without an ACK
            log.exception("MLLP handler failed for a message from %s", peer)
            return fallback_ack(payload, "AE", "Erreur interne de Telerad : le message n'a pas été traité, "
                                               "renvoyez-le plus tard.")


class MllpError(OSError):
    pass


class MllpClient:
    """Sends a message and waits for its ACK, on a connection kept open between messages."""

    def __init__(self, host: str, port: int, timeout: float = 10.0, *, tls: ssl.SSLContext | None = None,
                 source_address: tuple[str, int] | None = None):
        self.host, self.port, self.timeout, self.tls = host, port, timeout, tls
        self.source_address = source_address
        self._sock: socket.socket | None = None
        self._reader = FrameReader()

    def connect(self) -> None:
        if self._sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout,
                                            source_address=self.source_address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                try:
                    sock = self.tls.wrap_socket(sock, server_hostname=self.host)
                except OSError:
                    sock.close()
                    raise
            self._sock = sock
            self._reader = FrameReader()

    def send(self, message: bytes | str, encoding: str = "utf-8") -> bytes:
        """Send one message (str is encoded with `encoding`); return the ACK payload. Raises OSError on failure,
        after which the connection is closed (the next send reconnects)."""
        data = message.encode(encoding) if isinstance(message, str) else message
        try:
            self.connect()
            assert self._sock is not None
            self._sock.sendall(frame(data))
            while True:
                chunk = self._sock.recv(65536)
                if not chunk:
                    raise MllpError("connection closed by the peer before the acknowledgement")
                answers = self._reader.feed(chunk)
                if answers:
                    return answers[0][0]
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
