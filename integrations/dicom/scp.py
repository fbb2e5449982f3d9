"""The C-STORE / C-ECHO service class provider (pynetdicom), CH-5.1, and the query/retrieve SCP of the
radiologists' viewing stations (C-FIND, C-GET, C-MOVE: integrations.dicom.query_retrieve, CH-4.1.11).

- Every storage SOP class is accepted with every transfer syntax (pynetdicom's defaults accept only the
  uncompressed ones, so JPEG, JPEG-LS, JPEG 2000 and RLE studies would fail), plus Verification (C-ECHO).
- The called AE title must be ours; the calling AE title must be on the allow-list, which also says which
  site the images come from, or be a radiologist's registered viewing station (integrations.dicom.workstations),
  calling from its registered host, whose owner the association then acts for. An unknown caller gets an
  A-ASSOCIATE-RJ (rejected-permanent, service-user, calling AE title not recognised). A modality may not query
  or retrieve, a station may not store (0x0124, refused: not authorised).
- Each association runs in its own threads: the store handler opens its own database sessions (the engine
  context hands out a new one per use case).
- The received dataset is written as sent (file meta + the encoded bytes): no decode and re-encode. It streams
  to disk as its PDUs arrive (pynetdicom's STORE_RECV_CHUNKED_DATASET, a process-wide setting on while a
  StorageSCP runs), is checked there without its pixel data being read (storage.parse_instance_file) and moved into the
  storage: the memory an instance needs is the same whatever its size.
- With a TLS context (TELERAD_DICOM_TLS_*, integrations.peers) the handshake runs in the association's own
  thread, after the connection was admitted and within the ACSE timeout, so peers that never finish it cannot
  hold the accept loop (pynetdicom's server would do it there, blocking every other caller). A calling AE title
  may also be bound to source addresses and a client certificate name: an association from elsewhere, or
  without that certificate, is rejected like an unknown caller.
- TCP_QUICKACK is set on the receiving socket before each read: without it Linux delays the ACK of the
  command PDU by ~40 ms, the sender's Nagle holds the dataset meanwhile, and reception stalls at ~20
  instances/s whatever the sender.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, _config, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import RequestHandler, ThreadedAssociationServer

from engine.services.context import EngineContext
from integrations.dicom.admission import Admission
from integrations.dicom.callers import caller_access
from integrations.dicom.ingest import StorageFailure, ingest_file
from integrations.dicom.query_retrieve import NOT_AUTHORISED, QR_SOP_CLASSES, QueryRetrieveHandlers
from integrations.dicom.workstations import host_matches, owner_actor, workstation_by_title
from integrations.peers import access_refusal, tls_identity

log = logging.getLogger(__name__)

STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700  # could not store: the sender may retry
STATUS_CANNOT_UNDERSTAND = 0xC000  # malformed or truncated instance: refused
STATUS_PROCESSING_FAILURE = 0x0110
STATUS_DUPLICATE_SOP_INSTANCE = 0x0111  # resent under the same SOP Instance UID with other content: refused
REJECT_CALLING_AE = (0x01, 0x01, 0x03)  # rejected-permanent, service-user, calling AE title not recognised
MAX_ASSOCIATIONS = 96
ACSE_TIMEOUT = 10.0
MAX_PDU_SIZE = 256 * 1024


def quickack_recv(recv: Callable[[int], bytearray], raw: socket.socket) -> Callable[[int], bytearray]:
    """Wrap AssociationSocket.recv so that each read acknowledges at once (TCP_QUICKACK is not sticky)."""
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is None:  # not Linux
        return recv

    def receive(nr_bytes: int) -> bytearray:
        with contextlib.suppress(OSError):
            raw.setsockopt(socket.IPPROTO_TCP, quickack, 1)
        return recv(nr_bytes)

    return receive


class QuickAckRequestHandler(RequestHandler):
    """pynetdicom's request handler, with the TCP_QUICKACK read wrapper on each accepted association, the
    admission of the connection (integrations.dicom.admission) when the server has one, and the TLS handshake
    (counted as silence by the admission, bounded by the ACSE timeout, which the rest of the wait shares)."""

    def handle(self) -> None:
        assoc = self._create_association()
        if isinstance(self.request, ssl.SSLSocket) and not self._handshake(assoc, self.request):
            return
        evt.trigger(assoc, evt.EVT_CONN_OPEN, {"address": self.client_address})
        assoc.start()

    def _handshake(self, assoc: Any, sock: ssl.SSLSocket) -> bool:
        started, limit = time.monotonic(), assoc.acse_timeout or ACSE_TIMEOUT
        previous = sock.gettimeout()
        try:
            sock.settimeout(limit)
            sock.do_handshake()
            sock.settimeout(previous)
        except (OSError, ValueError) as err:
            reason = err.reason if isinstance(err, ssl.SSLError) else err
            log.warning("DICOM TLS handshake with %s failed: %s", self.client_address[0], reason)
            admission = getattr(self.server, "telerad_admission", None)
            if admission is not None:
                admission.forget(assoc)
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            sock.close()
            return False
        assoc.acse_timeout = max(0.5, limit - (time.monotonic() - started))
        return True

    def _create_association(self) -> Any:
        assoc = super()._create_association()
        sock = assoc.dul.socket
        if sock is not None and sock.socket is not None:
            sock.recv = quickack_recv(sock.recv, sock.socket)  # type: ignore[method-assign,assignment]
        admission = getattr(self.server, "telerad_admission", None)
        if admission is not None:
            admission.admit(assoc, str(self.client_address[0]))
        return assoc


class ContextTemplates(list[Any]):
    """The supported presentation contexts, copied for each association (pynetdicom deep-copies them for every
    connection: 41 ms of CPU for our 171 contexts x 45 transfer syntaxes, a cost any idle peer could make us pay).
    A context's only mutable part is its list of transfer syntaxes (UIDs are immutable strings), so a shallow
    copy with that list copied is a complete copy, in 0.3 ms."""

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        copies = []
        for context in self:
            duplicate = copy.copy(context)
            duplicate._transfer_syntax = list(context._transfer_syntax)
            copies.append(duplicate)
        return copies


class BackloggedAssociationServer(ThreadedAssociationServer):
    """socketserver's listen backlog is 5: a burst of connections (a modality opening several associations, or
    idle peers) made the kernel drop SYNs and the sender retry after seconds. Over TLS, the accepted socket is
    wrapped without its handshake, which the connection's thread does (QuickAckRequestHandler)."""

    request_queue_size = 128

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        assert self.socket is not None
        client, address = self.socket.accept()
        if self.ssl_context is not None:
            client = self.ssl_context.wrap_socket(client, server_side=True, do_handshake_on_connect=False)
        return client, address


_CHUNKED_LOCK = threading.Lock()
_CHUNKED_USERS = [0]


def _chunked_reception(change: int) -> None:
    """pynetdicom's chunked reception is a process-wide setting: on while a StorageSCP runs, back to pynetdicom's
    default when the last one stops (another pynetdicom SCP of the process then gets its datasets in memory)."""
    with _CHUNKED_LOCK:
        _CHUNKED_USERS[0] = max(0, _CHUNKED_USERS[0] + change)
        _config.STORE_RECV_CHUNKED_DATASET = _CHUNKED_USERS[0] > 0


class StorageSCP:
    def __init__(self, ctx: EngineContext, ae_title: str, host: str, port: int, storage: Path, *,
                 fsync: bool = True, tls: ssl.SSLContext | None = None):
        self.ctx = ctx
        self.tls = tls
        self.ae_title = ae_title
        self.address = (host, port)
        self.storage = storage
        self.fsync = fsync
        self.server: ThreadedAssociationServer | None = None
        self._thread: threading.Thread | None = None
        self._chunked = False
        self.ae = AE(ae_title=ae_title)
        self.ae.require_called_aet = True
        # Larger P-DATA PDUs than pynetdicom's 16 kB default: fewer PDUs to decode per instance (DCMTK caps at 128 kB).
        self.ae.maximum_pdu_size = MAX_PDU_SIZE
        # Silent connections are capped by the admission below, so the association limit is only ever reached by
        # peers at work; a silent connection waits ACSE_TIMEOUT for its request at most (pynetdicom: 30 s).
        self.ae.maximum_associations = MAX_ASSOCIATIONS
        self.ae.acse_timeout = ACSE_TIMEOUT
        self.admission = Admission()
        # The SCU role too: a C-GET sends its instances back on the requestor's association (role selection).
        for context in AllStoragePresentationContexts:
            self.ae.add_supported_context(str(context.abstract_syntax), ALL_TRANSFER_SYNTAXES, scu_role=True,
                                          scp_role=True)
        self.ae.add_supported_context(Verification)
        for sop_class in QR_SOP_CLASSES:
            self.ae.add_supported_context(sop_class)
        self.query_retrieve = QueryRetrieveHandlers(ctx, ae_title, storage)

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        return int(self.server.server_address[1]) if self.server is not None else self.address[1]

    def start(self) -> None:
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # INFO logs every PDU of every instance
        if not self._chunked:  # each C-STORE's dataset is written to a file as it arrives
            self._chunked = True
            _chunked_reception(+1)
        handlers: list[Any] = [(evt.EVT_REQUESTED, self._on_requested), (evt.EVT_C_STORE, self._on_store),
                               (evt.EVT_CONN_CLOSE, self._on_closed), (evt.EVT_C_FIND, self.query_retrieve.on_find),
                               (evt.EVT_C_GET, self.query_retrieve.on_get),
                               (evt.EVT_C_MOVE, self.query_retrieve.on_move)]
        server = self.ae.make_server(self.address, ae_title=self.ae_title, evt_handlers=handlers,
                                     contexts=ContextTemplates(self.ae.supported_contexts), ssl_context=self.tls,
                                     server_class=BackloggedAssociationServer, request_handler=QuickAckRequestHandler)
        server.telerad_admission = self.admission  # type: ignore[attr-defined]
        self.ae._servers.append(server)  # as AE.start_server does, so that AE.shutdown() stops it
        self.server = server
        self._thread = threading.Thread(target=server.serve_forever, name="dicom-scp", daemon=True)
        self._thread.start()
        log.info("DICOM SCP %s listening on %s:%s%s", self.ae_title, self.address[0], self.port,
                 " (TLS)" if self.tls is not None else "")

    def stop(self, grace_seconds: float = 5.0) -> None:
        """Stop accepting, let the associations in progress end by themselves, then abort the rest."""
        if self.server is not None:
            self.server.shutdown()  # also closes the listening socket
            self.server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.admission.close_silent()
        deadline = time.monotonic() + grace_seconds
        while self.ae.active_associations and time.monotonic() < deadline:
            time.sleep(0.02)
        for association in self.ae.active_associations:
            if association.is_established:  # aborting one that is closing (rejected, released) is invalid
                association.abort()
        if self._chunked:
            self._chunked = False
            _chunked_reception(-1)

    def _on_closed(self, event: Any) -> None:
        self.admission.closed(event.assoc)

    def _on_requested(self, event: Any) -> None:
        self.admission.spoke(event.assoc)
        calling = str(event.assoc.requestor.primitive.calling_ae_title).strip()
        address = str(event.assoc.requestor.address)
        refusal: str | None = None
        try:
            access = caller_access(self.ctx, calling)
        except Exception:
            log.exception("calling AE %s could not be checked", calling)
            access = None
        actor = None
        if access is None:
            refusal, actor = self._station_refusal(calling, address)
        else:  # CH-5.3, CH-8.1: a calling AE title is only trusted from where it was registered
            raw = getattr(event.assoc.dul.socket, "socket", None)
            refusal = access_refusal(access.allowed_sources, access.client_cert_name, tls_identity(raw, address))
        if refusal is not None:
            log.warning("DICOM association from calling AE %r (%s) rejected: %s", calling, address, refusal)
            event.assoc.acse.send_reject(*REJECT_CALLING_AE)
            event.assoc.kill()  # waits until the A-ASSOCIATE-RJ is sent, before the socket is closed
            return
        event.assoc.telerad_calling_ae = calling
        if access is None:
            event.assoc.telerad_actor = actor  # a viewing station, acting for its owner
            return
        event.assoc.telerad_site = access.site_id

    def _station_refusal(self, calling: str, address: str) -> tuple[str | None, Any]:
        """(why a calling AE title that is no modality may not associate, None when it may; its owner's actor)."""
        try:
            station = workstation_by_title(self.ctx, calling)
            if station is None:
                return "unknown calling AE", None
            if not host_matches(station.host, address):
                return f"viewing station {calling} registered for host {station.host}, not {address}", None
            actor = owner_actor(self.ctx, station)
        except Exception:
            log.exception("calling AE %s could not be checked", calling)
            return "unknown calling AE", None
        if actor is None:
            return f"the owner of viewing station {calling} may no longer use it", None
        return None, actor

    def _on_store(self, event: Any) -> int:
        if getattr(event.assoc, "telerad_actor", None) is not None:
            return NOT_AUTHORISED  # a viewing station retrieves images, it does not send them
        site_id = getattr(event.assoc, "telerad_site", None)
        calling = getattr(event.assoc, "telerad_calling_ae", None)
        try:
            result = ingest_file(self.ctx, Path(event.dataset_path), site_id, "dicom", storage=self.storage,
                                 calling_ae=calling, fsync=self.fsync, consume=True)
        except StorageFailure:
            return STATUS_OUT_OF_RESOURCES
        except Exception:
            log.exception("C-STORE from %s failed", calling)
            return STATUS_PROCESSING_FAILURE
        if result.status == "refused":
            return STATUS_CANNOT_UNDERSTAND
        if result.status == "conflict":
            return STATUS_DUPLICATE_SOP_INSTANCE
        return STATUS_SUCCESS
