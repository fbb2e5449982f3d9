"""MLLP and DICOM over TLS (issue 16, item 5): a RIS with a certificate of our CA gets its ACK over TLS, DCMTK's
TLS echoscu/storescu are served; a peer without a client certificate (when one is required), with a
certificate of another CA, or speaking plain TCP to the TLS port is refused; peers that open TLS connections and
never handshake do not block an allowed peer. Certificates: tests/integration/tls_support.py (openssl)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time

import pytest

from integrations.dicom.service import DicomService
from integrations.hl7.mllp import MllpClient, frame
from integrations.hl7.service import Hl7Service, Hl7Settings
from integrations.peers import tls_context_from_env
from tests.integration import dicom_support
from tests.integration.dicom_support import ECHOSCU, STORESCU, counts, demo_case, for_case, require_dcmtk, rewrite
from tests.integration.hl7_support import case_count, demo_hl7_ctx, inbound_rows, msa, sample
from tests.integration.tls_support import Pki, pki

dicom_ctx, storage = dicom_support.dicom_ctx, dicom_support.storage  # fixtures
MLLP = "TELERAD_MLLP_TLS_"
DICOM = "TELERAD_DICOM_TLS_"
__all__ = ["pki"]


@pytest.fixture
def hl7_tls(request, make_ctx, database_url, pki):
    ctx = demo_hl7_ctx(request, make_ctx, database_url)
    service = Hl7Service(ctx, "127.0.0.1", 0, delivery_interval=3600, tls=tls_context_from_env(pki.env(MLLP), MLLP))
    service.start()
    yield ctx, service
    service.stop()


@pytest.fixture
def dicom_tls(dicom_ctx, storage, pki):
    service = DicomService(dicom_ctx, "TELERAD", "127.0.0.1", 0, storage, tls=tls_context_from_env(pki.env(DICOM),
                                                                                                    DICOM))
    service.start()
    yield service
    service.stop()


def tls_peer(tool: str, port: int, pki: Pki, *args: str, client: str | None = "modality",
             calling: str = "CT_BREST") -> subprocess.CompletedProcess[str]:
    """DCMTK's echoscu/storescu over TLS, trusting our test CA, with `client`'s certificate (anonymous if None)."""
    require_dcmtk()
    identity = ["+tls", str(pki.path(f"{client}.key")), str(pki.path(f"{client}.crt"))] if client else ["+tla"]
    return subprocess.run([tool, *identity, "+cf", str(pki.path("ca.crt")), "-to", "10", "-ta", "10",
                           "-aet", calling, "-aec", "TELERAD", "127.0.0.1", str(port), *args],
                          capture_output=True, text=True, timeout=60, check=False)


# --- MLLP ---------------------------------------------------------------------------------------------------

@pytest.mark.charter("CH-8.1")
def test_an_order_over_tls_gets_its_ack(hl7_tls, pki):
    ctx, service = hl7_tls
    with MllpClient("127.0.0.1", service.port, tls=pki.client_context("ris")) as ris:
        assert msa(ris.send(sample("orm_o01_2.5_nw_utf8.hl7")))[0] == "AA"
    assert case_count(ctx, "ACC-BRE-0002") == 1


@pytest.mark.charter("CH-8.1")
def test_openssl_s_client_gets_the_ack(hl7_tls, pki):
    ctx, service = hl7_tls
    message = b"\x0b" + sample("orm_o01_2.5_nw_utf8.hl7").replace(b"\r\n", b"\r").replace(b"\n", b"\r") + b"\x1c\r"
    client = subprocess.Popen(["openssl", "s_client", "-quiet", "-no_ign_eof", "-connect", f"127.0.0.1:{service.port}",
                               "-CAfile", str(pki.path("ca.crt")), "-cert", str(pki.path("ris.crt")),
                               "-key", str(pki.path("ris.key"))], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    assert client.stdin is not None and client.stdout is not None
    client.stdin.write(message)
    client.stdin.flush()
    answer = b""
    watchdog = threading.Timer(20, client.kill)  # an unanswered read must not hang the suite
    watchdog.start()
    try:
        while b"\x1c\r" not in answer:
            chunk = client.stdout.read1(65536)  # type: ignore[attr-defined]
            if not chunk:
                break
            answer += chunk
    finally:
        watchdog.cancel()
        client.kill()
        client.communicate(timeout=10)
    assert msa(answer.strip(b"\x0b\x1c\r"))[0] == "AA"
    assert case_count(ctx, "ACC-BRE-0002") == 1


@pytest.mark.charter("CH-8.1", negative=True)
@pytest.mark.parametrize("client, ca", [(None, "ca"), ("impostor", "ca")], ids=["no-certificate", "other-ca"])
def test_a_peer_without_a_certificate_of_our_ca_is_refused(hl7_tls, pki, client, ca):
    ctx, service = hl7_tls
    with pytest.raises(OSError), MllpClient("127.0.0.1", service.port, timeout=5,
                                            tls=pki.client_context(client, ca)) as ris:
        ris.send(sample("orm_o01_2.5_nw_utf8.hl7"))
    assert inbound_rows(ctx) == [] and case_count(ctx, "ACC-BRE-0002") == 0


@pytest.mark.charter("CH-8.1", negative=True)
def test_plain_tcp_to_the_tls_port_gets_no_ack(hl7_tls):
    ctx, service = hl7_tls
    with socket.create_connection(("127.0.0.1", service.port), timeout=5) as sock:
        sock.sendall(frame(sample("orm_o01_2.5_nw_utf8.hl7")))
        with contextlib.suppress(OSError):
            assert b"MSA" not in sock.recv(65536)
    assert inbound_rows(ctx) == []


@pytest.mark.charter("CH-5.1", negative=True)
def test_idle_tls_connections_that_never_handshake_do_not_block_a_ris(request, make_ctx, database_url, pki):
    ctx = demo_hl7_ctx(request, make_ctx, database_url)
    tls = tls_context_from_env(pki.env(MLLP), MLLP)
    service = Hl7Service(ctx, "127.0.0.1", 0, delivery_interval=3600, tls=tls)
    service.start()
    idle = [socket.create_connection(("127.0.0.1", service.port), timeout=5) for _ in range(64)]
    try:
        started = time.monotonic()
        with MllpClient("127.0.0.1", service.port, timeout=10, tls=pki.client_context("ris")) as ris:
            assert msa(ris.send(sample("orm_o01_2.5_nw_utf8.hl7")))[0] == "AA"
        assert time.monotonic() - started < 5
    finally:
        for sock in idle:
            sock.close()
        service.stop()


def test_tls_settings_are_checked_at_start(pki, tmp_path):
    env = pki.env(MLLP)
    assert Hl7Settings.from_env({"TELERAD_MLLP_PORT": "0", **env}).tls is not None
    assert Hl7Settings.from_env({}).tls is None
    bad = [({**env, f"{MLLP}CERT": str(tmp_path / "missing.crt")}, "TELERAD_MLLP_TLS_CERT: cannot read"),
           ({f"{MLLP}CERT": env[f"{MLLP}CERT"]}, "must be set together"),
           ({**env, f"{MLLP}KEY": env[f"{MLLP}CA"]}, "not a PEM certificate and its private key"),
           ({**env, f"{MLLP}CLIENT_CERT": "maybe"}, "none, optional or required"),
           ({f"{MLLP}CERT": env[f"{MLLP}CERT"], f"{MLLP}KEY": env[f"{MLLP}KEY"], f"{MLLP}CLIENT_CERT": "required"},
            "needs TELERAD_MLLP_TLS_CA"),
           ({f"{MLLP}CA": env[f"{MLLP}CA"]}, "TLS is off")]
    for values, message in bad:
        with pytest.raises(ValueError, match=message):
            Hl7Settings.from_env(values)
    optional = tls_context_from_env({**env, f"{MLLP}CLIENT_CERT": "optional"}, MLLP)
    assert optional is not None and optional.minimum_version.name == "TLSv1_2"


def test_dicom_tls_settings_are_checked_at_start(dicom_ctx, pki, tmp_path):
    from web.ops.listeners import dicom_service

    service = dicom_service(dicom_ctx, tmp_path, {"TELERAD_DICOM_PORT": "0", **pki.env(DICOM)})
    assert service.scp.tls is not None and service.scp.tls.verify_mode.name == "CERT_REQUIRED"
    with pytest.raises(ValueError, match="TELERAD_DICOM_TLS_KEY: cannot read"):
        dicom_service(dicom_ctx, tmp_path, {**pki.env(DICOM), f"{DICOM}KEY": str(tmp_path / "nope.key")})


# --- DICOM --------------------------------------------------------------------------------------------------

@pytest.mark.charter("CH-8.1")
def test_dcmtk_echo_and_store_over_tls(dicom_tls, dicom_ctx, pki, tmp_path):
    _case_id, accession = demo_case(dicom_ctx)
    image = rewrite(tmp_path / "src", "CT_small.dcm", **for_case(accession))
    echo = tls_peer(ECHOSCU, dicom_tls.port, pki)
    assert echo.returncode == 0, echo.stdout + echo.stderr
    sent = tls_peer(STORESCU, dicom_tls.port, pki, str(image))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert counts(dicom_ctx)[2] == 1


@pytest.mark.charter("CH-8.1", negative=True)
def test_dcmtk_without_client_certificate_or_in_clear_is_refused(dicom_tls, dicom_ctx, pki, tmp_path):
    _case_id, accession = demo_case(dicom_ctx)
    image = rewrite(tmp_path / "src", "CT_small.dcm", **for_case(accession))
    anonymous = tls_peer(STORESCU, dicom_tls.port, pki, str(image), client=None)
    assert anonymous.returncode != 0
    plain = dicom_support.storescu(dicom_tls.port, image, options=("-to", "5", "-ta", "5"))
    assert plain.returncode != 0
    assert counts(dicom_ctx)[2] == 0
    echo = tls_peer(ECHOSCU, dicom_tls.port, pki)  # the listener still serves a proper peer
    assert echo.returncode == 0, echo.stdout + echo.stderr


@pytest.mark.charter("CH-5.1", negative=True)
def test_idle_sockets_that_never_handshake_do_not_block_a_modality(dicom_tls, pki):
    idle = [socket.create_connection(("127.0.0.1", dicom_tls.port), timeout=5) for _ in range(64)]
    try:
        started = time.monotonic()
        echo = tls_peer(ECHOSCU, dicom_tls.port, pki)
        assert echo.returncode == 0, echo.stdout + echo.stderr
        assert time.monotonic() - started < 8
    finally:
        for sock in idle:
            sock.close()
