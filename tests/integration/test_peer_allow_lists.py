"""Authenticated senders (issue 16, item 5: "HL7 senders are identified only by MSH-3/MSH-4 ...; DICOM callers
only by AE title"): a sender or calling AE title bound to source addresses, or to a client certificate name, is
refused from another address or without that certificate (HL7: AR, the message kept, no case; DICOM:
A-ASSOCIATE-RJ, nothing stored), and served when it matches. Loopback addresses only (127.0.0.1 vs 127.0.0.2)."""

from __future__ import annotations

import pytest

from engine.domain.actors import Actor
from integrations.dicom.callers import list_calling_aes, set_caller_access
from integrations.dicom.service import DicomService
from integrations.hl7.mllp import MllpClient
from integrations.hl7.senders import list_senders, set_sender_access
from integrations.hl7.service import Hl7Service
from integrations.peers import PeerIdentity, access_refusal, parse_networks, tls_context_from_env
from tests.integration import dicom_support
from tests.integration.dicom_support import ECHOSCU, STORESCU, counts, demo_case, echoscu, for_case, rewrite
from tests.integration.hl7_support import case_count, demo_hl7_ctx, inbound_rows, msa, sample
from tests.integration.test_tls_listeners import tls_peer
from tests.integration.tls_support import pki

dicom_ctx, scp, storage = dicom_support.dicom_ctx, dicom_support.scp, dicom_support.storage  # fixtures
__all__ = ["pki"]
ADMIN = Actor("admin", frozenset({"administrator"}), frozenset())
ORDER = "orm_o01_2.5_nw_utf8.hl7"
ACCESSION = "ACC-BRE-0002"


def order(control_id: str) -> bytes:
    return sample(ORDER).replace(b"BRE000102", control_id.encode())


def restrict_sender(ctx, sources: str | None = None, cert_name: str | None = None) -> None:
    sender = next(s for s in list_senders(ctx) if s.sending_application == "RIS_BREST")
    set_sender_access(ctx, ADMIN, sender.id, sources, cert_name)


def restrict_caller(ctx, sources: str | None = None, cert_name: str | None = None) -> None:
    caller = next(c for c in list_calling_aes(ctx) if c.ae_title == "CT_BREST")
    set_caller_access(ctx, ADMIN, caller.id, sources, cert_name)


@pytest.fixture
def hl7_ctx(request, make_ctx, database_url):
    return demo_hl7_ctx(request, make_ctx, database_url)


def started(ctx, tls=None) -> Hl7Service:
    service = Hl7Service(ctx, "127.0.0.1", 0, delivery_interval=3600, tls=tls)
    service.start()
    return service


def refusal_text(ack: bytes) -> str:
    """The ERR segment of a UTF-8 ACK."""
    return next(segment for segment in ack.decode().split("\r") if segment.startswith("ERR|"))


# --- HL7 ----------------------------------------------------------------------------------------------------

@pytest.mark.charter("CH-5.3", negative=True)
def test_an_hl7_sender_is_refused_from_an_address_it_is_not_allowed_from(hl7_ctx):
    restrict_sender(hl7_ctx, "127.0.0.2")
    service = started(hl7_ctx)
    try:
        with MllpClient("127.0.0.1", service.port, source_address=("127.0.0.1", 0)) as intruder:
            ack = intruder.send(order("BRE000102"))
        assert msa(ack)[0] == "AR"
        assert "l'adresse 127.0.0.1 n'est pas autorisée" in refusal_text(ack)
        assert case_count(hl7_ctx, ACCESSION) == 0
        [row] = inbound_rows(hl7_ctx)  # kept, with its exact text, like any refused message
        assert row.status == "rejected" and row.ack_code == "AR" and row.raw == order("BRE000102").decode()
        assert row.site_id == "ch-brest" and "127.0.0.1" in (row.error or "") and row.peer.startswith("127.0.0.1:")
        with MllpClient("127.0.0.1", service.port, source_address=("127.0.0.2", 0)) as ris:
            assert msa(ris.send(order("BRE000103")))[0] == "AA"
        assert case_count(hl7_ctx, ACCESSION) == 1
    finally:
        service.stop()


@pytest.mark.charter("CH-8.1", negative=True)
def test_an_hl7_sender_bound_to_a_certificate_needs_that_certificate(hl7_ctx, pki):
    restrict_sender(hl7_ctx, cert_name="ris.ch-brest.test")
    plain = started(hl7_ctx)
    try:
        with MllpClient("127.0.0.1", plain.port) as ris:
            ack = ris.send(order("PLAIN1"))
        assert msa(ack)[0] == "AR" and "connexion sans TLS" in refusal_text(ack)
    finally:
        plain.stop()
    env = pki.env("TELERAD_MLLP_TLS_", client_cert="optional")
    service = started(hl7_ctx, tls_context_from_env(env, "TELERAD_MLLP_TLS_"))
    try:
        for client, control_id in (("modality", "WRONGCN"), (None, "NOCERT")):
            with MllpClient("127.0.0.1", service.port, tls=pki.client_context(client)) as peer:
                ack = peer.send(order(control_id))
            assert msa(ack)[0] == "AR" and "ris.ch-brest.test est exigé" in refusal_text(ack), client
        assert case_count(hl7_ctx, ACCESSION) == 0
        with MllpClient("127.0.0.1", service.port, tls=pki.client_context("ris")) as ris:
            assert msa(ris.send(order("GOODCN")))[0] == "AA"
        restrict_sender(hl7_ctx, "127.0.0.0/8", "ris-backup.ch-brest.test")  # a DNS alternative name counts too
        with MllpClient("127.0.0.1", service.port, tls=pki.client_context("ris")) as ris:
            assert msa(ris.send(order("GOODSAN")))[0] == "AA"
        assert case_count(hl7_ctx, ACCESSION) == 1
    finally:
        service.stop()


def test_allow_lists_are_parsed_and_matched():
    assert parse_networks(" 10.1.2.3, 10.1.2.0/24;192.0.2.0/24\n2001:db8::/32 10.1.2.3") == \
        "10.1.2.3/32, 10.1.2.0/24, 192.0.2.0/24, 2001:db8::/32"
    assert parse_networks("  ") is None
    for bad in ("10.1.2.300", "example.org", "10.0.0.0/33"):
        with pytest.raises(ValueError, match="Adresse ou réseau invalide"):
            parse_networks(bad)
    assert access_refusal("10.1.2.0/24", None, PeerIdentity("10.1.2.9")) is None
    assert access_refusal("10.1.2.0/24", None, PeerIdentity("::ffff:10.1.2.9")) is None
    assert access_refusal("10.1.2.0/24", None, PeerIdentity("10.1.3.9")) is not None
    assert access_refusal("10.1.2.0/24", None, PeerIdentity("")) is not None
    assert access_refusal(None, "RIS.example", PeerIdentity("h", True, ("ris.example",))) is None


# --- DICOM --------------------------------------------------------------------------------------------------

@pytest.mark.charter("CH-5.3", negative=True)
def test_a_calling_ae_is_rejected_from_an_address_it_is_not_allowed_from(scp, dicom_ctx, tmp_path):
    _case_id, accession = demo_case(dicom_ctx)
    image = rewrite(tmp_path / "src", "CT_small.dcm", **for_case(accession))
    restrict_caller(dicom_ctx, "10.0.0.0/8, 127.0.0.2")
    assert echoscu(scp.port).returncode != 0
    refused = dicom_support.storescu(scp.port, image)
    assert refused.returncode != 0 and counts(dicom_ctx) == (0, 0, 0)
    assert not dicom_support.stored_files(scp.storage)
    restrict_caller(dicom_ctx, "127.0.0.1/32")
    sent = dicom_support.storescu(scp.port, image)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert counts(dicom_ctx)[2] == 1


@pytest.mark.charter("CH-8.1", negative=True)
def test_a_calling_ae_bound_to_a_certificate_needs_that_certificate(dicom_ctx, storage, pki, tmp_path):
    _case_id, accession = demo_case(dicom_ctx)
    image = rewrite(tmp_path / "src", "CT_small.dcm", **for_case(accession))
    restrict_caller(dicom_ctx, cert_name="ct-brest.test")
    env = pki.env("TELERAD_DICOM_TLS_", client_cert="optional")
    service = DicomService(dicom_ctx, "TELERAD", "127.0.0.1", 0, storage,
                           tls=tls_context_from_env(env, "TELERAD_DICOM_TLS_"))
    service.start()
    try:
        for client in ("ris", None):
            refused = tls_peer(STORESCU, service.port, pki, str(image), client=client)
            assert refused.returncode != 0, client
        assert counts(dicom_ctx) == (0, 0, 0)
        echo = tls_peer(ECHOSCU, service.port, pki, client="modality")
        assert echo.returncode == 0, echo.stdout + echo.stderr
        sent = tls_peer(STORESCU, service.port, pki, str(image), client="modality")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert counts(dicom_ctx)[2] == 1
    finally:
        service.stop()
