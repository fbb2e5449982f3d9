"""MLLP (VT message FS CR) over TCP: our own threaded listener and a small client.

hl7apy's MLLPServer is not used (UTF-8 only, one message per connection, byte-by-byte reads, no ACK when the
handler fails). This listener keeps each connection open across messages, reads in blocks, answers every
frame (an ACK built from the frame header when the handler raises) and refuses frames over 1 MiB with AR.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable

from integrations.hl7.codec import fallback_ack

log = logging.getLogger(__name__)

START, END = b"\x0b", b"\x1c\x0d"
MAX_MESSAGE = 1024 * 1024
# handler(payload, truncated, peer) -> the bytes of the ACK (without framing)
Handler = Callable[[bytes, bool, str], bytes]


def frame(message: bytes) -> bytes:
    return START + message + END


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


class MllpListener:
    """A threaded MLLP server: one thread per connection, connections kept open, every frame answered."""

    def __init__(self, host: str, port: int, handler: Handler, *, max_connections: int = 64,
                 idle_timeout: float = 600.0, max_message: int = MAX_MESSAGE):
        self.host, self.requested_port, self.handler = host, port, handler
        self.max_connections, self.idle_timeout, self.max_message = max_connections, idle_timeout, max_message
        self._server: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.port: int | None = None

    def start(self) -> None:
        server = socket.create_server((self.host, self.requested_port), reuse_port=False, backlog=32)
        server.settimeout(0.5)
        self._server, self.port = server, server.getsockname()[1]
        self._stopping.clear()
        self._accept_thread = threading.Thread(target=self._accept, name=f"mllp-accept-{self.port}", daemon=True)
        self._accept_thread.start()
        log.info("MLLP listener on %s:%s", self.host, self.port)

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
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RD)  # wakes a blocked recv; an ACK being written still goes out
        for thread in connections.values():
            thread.join(timeout)
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
            with self._lock:
                if len(self._connections) >= self.max_connections:
                    log.warning("MLLP: too many connections, refusing %s", address)
                    conn.close()
                    continue
                thread = threading.Thread(target=self._serve, args=(conn, f"{address[0]}:{address[1]}"),
                                          name=f"mllp-{address[0]}:{address[1]}", daemon=True)
                self._connections[conn] = thread
            thread.start()

    def _serve(self, conn: socket.socket, peer: str) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(self.idle_timeout)
        reader = FrameReader(self.max_message)
        try:
            while not self._stopping.is_set() or reader.pending:
                try:
                    data = conn.recv(65536)
                except (TimeoutError, OSError):
                    break
                if not data:
                    break
                for payload, truncated in reader.feed(data):
                    conn.sendall(frame(self._answer(payload, truncated, peer)))
        except OSError as err:
            log.info("MLLP connection %s closed: %s", peer, err)
        finally:
            with self._lock:
                self._connections.pop(conn, None)
            with contextlib.suppress(OSError):
                conn.close()

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

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.host, self.port, self.timeout = host, port, timeout
        self._sock: socket.socket | None = None
        self._reader = FrameReader()

    def connect(self) -> None:
        if self._sock is None:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
