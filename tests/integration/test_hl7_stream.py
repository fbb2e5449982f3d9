"""A stream of orders from a RIS that reconnects and re-sends what was not acknowledged, while our listener is
stopped and restarted (a new process on the same database): every message is stored exactly once and every new
order makes exactly one case (CH-5.1)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from sqlalchemy import select

from engine.services.instances import case_by_accession
from forms import default_registry
from integrations.hl7.inbound import InboundHandler
from integrations.hl7.mllp import MllpClient, frame
from integrations.hl7.models import Hl7Message
from integrations.hl7.service import Hl7Service
from tests.integration.hl7_support import case_count, demo_hl7_ctx, inbound_rows, msa, sample, wait_for

COUNT = 40


def order(number: int) -> tuple[str, bytes]:
    control_id = f"STREAM{number:03d}"
    return control_id, sample("orm_o01_2.5_nw_utf8.hl7", BRE000102=control_id,
                              **{"ACC-BRE-0002": f"ACC-STREAM-{number:03d}"})


class InterfaceEngine(threading.Thread):
    """What sits in front of a RIS: sends in order, waits for each ACK, and on any failure reconnects after a
    short delay and re-sends the message that was not acknowledged."""

    def __init__(self, port: int, messages: list[tuple[str, bytes]]):
        super().__init__(daemon=True)
        self.port, self.messages = port, messages
        self.acks: dict[str, tuple[str, str]] = {}
        self.failures = 0

    def run(self) -> None:
        client = MllpClient("127.0.0.1", self.port, timeout=15)
        for control_id, message in self.messages:
            while True:
                try:
                    self.acks[control_id] = msa(client.send(message))
                    break
                except OSError:
                    self.failures += 1
                    time.sleep(0.05)
        client.close()


@pytest.mark.charter("CH-5.1")
def test_a_listener_restart_in_the_middle_of_a_stream_loses_nothing_and_duplicates_nothing(
        request, make_ctx, database_url):
    ctx = demo_hl7_ctx(request, make_ctx, database_url)
    service = Hl7Service(ctx, "127.0.0.1", 0, delivery_interval=3600)
    service.start()
    port = service.port
    messages = [order(n) for n in range(COUNT)]
    ris = InterfaceEngine(port, messages)
    ris.start()
    wait_for(lambda: len(inbound_rows(ctx)) >= COUNT // 3, what="the first third of the stream")
    service.stop()  # the message being handled is finished and acknowledged; the others wait
    stopped_at = len(inbound_rows(ctx))
    assert stopped_at < COUNT
    time.sleep(0.3)  # the RIS finds nobody listening for a while
    restarted = Hl7Service(make_ctx(operations=None, forms=default_registry(), escalation=None), "127.0.0.1", port,
                           delivery_interval=3600)
    restarted.start()
    try:
        ris.join(120)
        assert not ris.is_alive()
    finally:
        restarted.stop()
    assert ris.failures > 0  # the restart was felt by the sender
    assert ris.acks == {control_id: ("AA", control_id) for control_id, _ in messages}
    rows = inbound_rows(ctx)
    assert sorted(row.control_id for row in rows) == sorted(control_id for control_id, _ in messages)
    assert all(row.status == "processed" for row in rows)
    assert all(case_count(ctx, f"ACC-STREAM-{n:03d}") == 1 for n in range(COUNT))


@pytest.mark.charter("CH-5.1")
def test_a_sender_that_gives_up_before_the_ack_and_re_sends_makes_one_case(request, make_ctx, database_url):
    ctx = demo_hl7_ctx(request, make_ctx, database_url)
    service = Hl7Service(ctx, "127.0.0.1", 0, delivery_interval=3600)
    service.start()
    try:
        control_id, message = order(1)
        with socket.create_connection(("127.0.0.1", service.port)) as sock:
            sock.sendall(frame(message))  # and hangs up without reading the ACK
        wait_for(lambda: [r for r in inbound_rows(ctx) if r.status != "received"], what="the first delivery")
        with MllpClient("127.0.0.1", service.port) as client:
            assert msa(client.send(message)) == ("AA", control_id)
    finally:
        service.stop()
    assert case_count(ctx, "ACC-STREAM-001") == 1
    assert len(inbound_rows(ctx)) == 1


@pytest.mark.charter("CH-5.1")
def test_a_message_left_unfinished_by_a_crash_is_applied_once_when_re_sent(request, make_ctx, database_url,
                                                                         monkeypatch):
    ctx = demo_hl7_ctx(request, make_ctx, database_url)
    control_id, message = order(2)
    crashing = InboundHandler(ctx)

    def power_cut(*args, **kwargs):
        raise KeyboardInterrupt("power cut after the case was created, before the message was marked")

    monkeypatch.setattr(crashing, "_finish", power_cut)
    with pytest.raises(KeyboardInterrupt):
        crashing(message, False, "127.0.0.1:1")
    case_id = case_by_accession(ctx, "ACC-STREAM-002")
    assert case_id is not None
    with ctx.read() as session:
        assert session.execute(select(Hl7Message.status)).scalar_one() == "received"
    service = Hl7Service(ctx, "127.0.0.1", 0, delivery_interval=3600)
    service.start()
    try:
        with MllpClient("127.0.0.1", service.port) as client:
            assert msa(client.send(message)) == ("AA", control_id)
    finally:
        service.stop()
    [row] = inbound_rows(ctx)
    assert (row.status, row.case_id) == ("processed", case_id)
    assert case_count(ctx, "ACC-STREAM-002") == 1
