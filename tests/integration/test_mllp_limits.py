"""Idle or hostile peers cannot lock the RIS out of the MLLP port (issue 16: 64 idle sockets to the MLLP port
made new connections fail for up to 10 minutes, no login needed): a connection must deliver its first frame
quickly, and when the listener is full a newcomer takes the place of the oldest connection that never spoke,
while connections that have spoken keep theirs."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest

from integrations.hl7.mllp import MllpClient, MllpListener, frame
from integrations.hl7.service import Hl7Service
from tests.integration.hl7_support import case_count, demo_hl7_ctx, msa, sample

ACK = b"MSH|^~\\&|TELERAD|TELERAD|RIS|CH|20260101000000||ACK|1|P|2.5\rMSA|AA|1"


def idle_sockets(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


@pytest.fixture
def listener():
    server = MllpListener("127.0.0.1", 0, lambda payload, truncated, peer: ACK, max_connections=8, max_per_peer=4,
                          first_frame_timeout=0.5)
    server.start()
    yield server
    server.stop()


@pytest.mark.charter("CH-5.1", negative=True)
def test_an_allowed_ris_is_served_while_64_idle_sockets_are_open(request, make_ctx, database_url):
    ctx = demo_hl7_ctx(request, make_ctx, database_url)
    service = Hl7Service(ctx, "127.0.0.1", 0, delivery_interval=3600)
    service.start()
    sockets = idle_sockets(service.port, 64)
    try:
        with MllpClient("127.0.0.1", service.port, timeout=10) as ris:
            assert msa(ris.send(sample("orm_o01_2.5_nw_utf8.hl7")))[0] == "AA"
            more = idle_sockets(service.port, 64)  # a second wave while the RIS keeps its connection
            sockets += more
            assert msa(ris.send(sample("orm_o01_2.5_nw_utf8.hl7").replace(b"BRE000102", b"BRE000199")))[0] \
                in ("AA", "AE")
        assert case_count(ctx, "ACC-BRE-0002") == 1
    finally:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        service.stop()


@pytest.mark.charter("CH-5.1", negative=True)
def test_a_connection_that_never_completes_a_frame_is_closed(listener):
    silent, trickling = idle_sockets(listener.port, 2)
    assert closed_by_server(silent, within=5)
    trickling.sendall(b"\x0bMSH|")  # a frame started, never finished
    assert closed_by_server(trickling, within=5)


def test_newcomers_replace_the_oldest_silent_connection_never_one_that_spoke(listener):
    with MllpClient("127.0.0.1", listener.port, timeout=5) as ris:
        assert ris.send(b"MSH|^~\\&|RIS|CH|TELERAD|TELERAD|20260101||ORM^O01|1|P|2.5") == ACK
        crowd = idle_sockets(listener.port, 20)  # far over both limits
        time.sleep(0.1)
        assert ris.send(b"MSH|^~\\&|RIS|CH|TELERAD|TELERAD|20260101||ORM^O01|2|P|2.5") == ACK
        assert closed_by_server(crowd[0], within=2)  # the oldest silent ones made room
        for sock in crowd:
            sock.close()


def test_when_every_connection_is_active_a_newcomer_is_refused(listener):
    clients = [MllpClient("127.0.0.1", listener.port, timeout=5) for _ in range(4)]  # the per-peer limit
    try:
        for client in clients:
            assert client.send(b"MSH|^~\\&|RIS|CH|TELERAD|TELERAD|20260101||ORM^O01|1|P|2.5") == ACK
        [newcomer] = idle_sockets(listener.port, 1)
        assert closed_by_server(newcomer, within=2)
        newcomer.close()
        assert clients[0].send(b"MSH|^~\\&|RIS|CH|TELERAD|TELERAD|20260101||ORM^O01|2|P|2.5") == ACK
    finally:
        for client in clients:
            client.close()


def test_frames_are_still_answered_on_a_long_lived_connection(listener):
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as sock:
        for _ in range(3):
            sock.sendall(frame(b"MSH|^~\\&|RIS|CH|TELERAD|TELERAD|20260101||ORM^O01|1|P|2.5"))
            assert sock.recv(65536) == frame(ACK)
            time.sleep(0.6)  # longer than the first-frame timeout: a connection that spoke is not held to it
