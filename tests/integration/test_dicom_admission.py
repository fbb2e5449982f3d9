"""Idle peers cannot lock the modalities out of the DICOM port (issue 16: 10 idle TCP sockets blocked every
association for about 30 s, no login needed): silent connections beyond the limits give way to newcomers, and
an allowed modality is still served while 64 idle sockets are open."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest

from integrations.dicom.admission import Admission
from tests.integration import dicom_support
from tests.integration.dicom_support import counts, demo_case, echoscu, for_case, rewrite, storescu

dicom_ctx, scp, storage = dicom_support.dicom_ctx, dicom_support.scp, dicom_support.storage  # fixtures


def idle_sockets(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]


@pytest.mark.charter("CH-5.1", negative=True)
def test_an_allowed_modality_is_served_while_64_idle_sockets_are_open(scp, dicom_ctx, storage, tmp_path):
    _case_id, accession = demo_case(dicom_ctx)
    image = rewrite(tmp_path / "src", "CT_small.dcm", **for_case(accession))
    sockets = idle_sockets(scp.port, 64)
    try:
        echo = echoscu(scp.port)
        assert echo.returncode == 0, echo.stdout + echo.stderr
        sent = storescu(scp.port, image)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert counts(dicom_ctx)[2] == 1
    finally:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()


class FakeAssociation:
    def __init__(self):
        self.closed = False

        class Raw:
            def shutdown(inner, how):
                self.closed = True

        self.dul = type("Dul", (), {"socket": type("Sock", (), {"socket": Raw()})()})()


def test_the_oldest_silent_connections_give_way_never_one_that_spoke():
    admission = Admission(max_silent=3, max_silent_per_peer=2)
    first, second, third = FakeAssociation(), FakeAssociation(), FakeAssociation()
    admission.admit(first, "10.0.0.1")
    admission.spoke(first)  # its association request arrived
    admission.admit(second, "10.0.0.1")
    admission.admit(third, "10.0.0.1")
    assert not first.closed and not second.closed and not third.closed  # two silent from 10.0.0.1: the limit
    fourth = FakeAssociation()
    admission.admit(fourth, "10.0.0.1")
    assert second.closed and not first.closed and not third.closed and not fourth.closed
    others = [FakeAssociation() for _ in range(2)]
    for assoc in others:
        admission.admit(assoc, "10.0.0.2")
    assert third.closed and not first.closed  # three silent in all at most: the oldest silent anywhere went
    admission.closed(fourth)
    assert not any(assoc.closed for assoc in others)


@pytest.mark.charter("CH-5.1", negative=True)
def test_connections_opened_and_closed_in_a_loop_leave_no_waiting_associations(scp, dicom_ctx):
    for _ in range(150):
        socket.create_connection(("127.0.0.1", scp.port), timeout=5).close()
    deadline = time.monotonic() + 5  # the ACSE timeout (10 s) would keep them until later
    while scp.ae.active_associations and time.monotonic() < deadline:
        time.sleep(0.05)
    assert scp.ae.active_associations == []
    assert echoscu(scp.port).returncode == 0
