"""HL7 administrator pages and `telerad hl7` commands: senders and endpoints per site, the message log with its
filters, the outbox with failures and "retry now"; administrators only (CH-5.1, CH-5.3)."""

from __future__ import annotations

import html
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.store.models import AuditEvent
from integrations.hl7.inbound import InboundHandler
from integrations.hl7.models import Hl7Message, Hl7Outbox
from integrations.hl7.outbox import deliver_pending
from integrations.hl7.queries import masked_text
from integrations.hl7.senders import list_endpoints, list_senders, set_endpoint
from tests.demo_app import login, web_app
from tests.integration.hl7_support import demo_hl7_ctx, free_port, sample
from tests.web.admin.site_admins import add_admin
from web.cli.hl7 import hl7


@pytest.fixture
def hl7_ctx(request, make_ctx, database_url):
    return demo_hl7_ctx(request, make_ctx, database_url)


@pytest.fixture
def app(hl7_ctx, database_url, tmp_path):
    return web_app(hl7_ctx, database_url, tmp_path)


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_pages_are_for_administrators_only(app, hl7_ctx, clock):
    client = login(app, hl7_ctx, clock, "dr.martin")
    for url in ("/admin/hl7/", "/admin/hl7/messages", "/admin/hl7/messages/1", "/admin/hl7/outbox"):
        assert client.get(url).status_code == 403, url
    for url in ("/admin/hl7/outbox/retry", "/admin/hl7/senders/1/delete", "/admin/hl7/endpoints/ch-brest/delete"):
        assert client.post(url).status_code == 403, url
    assert len(list_senders(hl7_ctx)) == 3
    assert app.test_client().get("/admin/hl7/").status_code == 302  # to the login page


@pytest.mark.charter("CH-5.1")
def test_admin_attaches_a_sender_and_sets_an_endpoint(app, hl7_ctx, clock):
    client = login(app, hl7_ctx, clock, "admin")
    page = text(client.get("/admin/hl7/"))
    assert "RIS_BREST" in page and "CH_BREST" in page  # the demo data configures its sites
    response = client.post("/admin/hl7/", data={"sender-site_id": "ch-morlaix", "sender-application": "XPLORE",
                                                 "sender-facility": "CH_MORLAIX_IMAGERIE", "sender-submit": "1"})
    assert response.status_code == 302
    assert ("ch-morlaix", "XPLORE") in {(s.site_id, s.sending_application) for s in list_senders(hl7_ctx)}
    again = text(client.post("/admin/hl7/", data={"sender-site_id": "ch-brest", "sender-application": "XPLORE",
                                                  "sender-facility": "CH_MORLAIX_IMAGERIE", "sender-submit": "1"}))
    assert "déjà rattaché au site ch-morlaix" in again and 'value="XPLORE"' in again  # refused, input kept
    response = client.post("/admin/hl7/", data={
        "endpoint-site_id": "ch-brest", "endpoint-host": "ris.chu-brest.local", "endpoint-port": "6661",
        "endpoint-receiving_application": "RIS_BREST", "endpoint-receiving_facility": "CH_BREST",
        "endpoint-charset": "8859/1", "endpoint-active": "y", "endpoint-submit": "1"})
    assert response.status_code == 302
    [endpoint] = list_endpoints(hl7_ctx)
    assert (endpoint.host, endpoint.port, endpoint.charset, endpoint.active) == ("ris.chu-brest.local", 6661,
                                                                                 "8859/1", True)
    bad_port = text(client.post("/admin/hl7/", data={"endpoint-site_id": "ch-brest", "endpoint-host": "x",
                                                     "endpoint-port": "70000", "endpoint-submit": "1"}))
    assert "Un nombre entre 1 et 65535." in bad_port
    sender_id = next(s.id for s in list_senders(hl7_ctx) if s.sending_application == "XPLORE")
    assert client.post(f"/admin/hl7/senders/{sender_id}/delete").status_code == 302
    assert "XPLORE" not in {s.sending_application for s in list_senders(hl7_ctx)}


def test_message_log_filters_and_audited_reading(app, hl7_ctx, clock):
    handler = InboundHandler(hl7_ctx)
    handler(sample("orm_o01_2.5_nw_utf8.hl7"), False, "127.0.0.1:5000")
    handler(sample("siu_s12_2.5.hl7"), False, "127.0.0.1:5000")
    add_admin(hl7_ctx, "admin.brest", ("ch-brest",))  # the messages' site: he reads their patient
    client = login(app, hl7_ctx, clock, "admin.brest")
    page = text(client.get("/admin/hl7/messages"))
    assert "BRE000102" in page and "BRE000107" in page and "2 messages" in page
    rejected = text(client.get("/admin/hl7/messages?status=rejected"))
    assert "BRE000107" in rejected and "BRE000102" not in rejected and "non pris en charge" in rejected
    assert "N° de dossier : des chiffres seulement." in text(client.get("/admin/hl7/messages?case=abc"))
    detail = text(client.get("/admin/hl7/messages/1"))
    assert "LE BIHAN^Nolwenn" in detail and "sa lecture est tracée" in detail
    with hl7_ctx.read() as session:
        read = session.execute(select(AuditEvent).where(AuditEvent.action == "hl7.message_read")).scalar_one()
    assert read.actor == "admin.brest" and json.loads(read.detail)["patient_masked"] is False
    assert client.get("/admin/hl7/messages/999").status_code == 404


@pytest.mark.charter("CH-5.1")
def test_outbox_shows_failures_and_retry_now(app, hl7_ctx, clock):
    from tests.integration.test_hl7_outbound import queue

    set_endpoint(hl7_ctx, Actor.system(), "ch-brest", "127.0.0.1", free_port())
    queue(hl7_ctx)
    deliver_pending(hl7_ctx)
    client = login(app, hl7_ctx, clock, "admin")
    page = text(client.get("/admin/hl7/outbox"))
    assert "n’a pas pu être livré" in page and "injoignable" in page and "Relancer maintenant" in page
    clock.advance(seconds=5)
    response = client.post("/admin/hl7/outbox/1/retry", follow_redirects=True)
    assert "1 envoi(s) relancé(s)" in text(response)
    with hl7_ctx.read() as session:
        assert session.get(Hl7Outbox, 1).next_attempt_at == clock.now()


def test_cli_senders_endpoints_and_outbox(hl7_ctx, database_url, tmp_path):
    runner = CliRunner()
    env = {"TELERAD_DATABASE_URL": database_url, "TELERAD_INSTANCE_PATH": str(tmp_path / "instance")}
    result = runner.invoke(hl7, ["sender", "add", "ch-morlaix", "XPLORE", "CH_MORLAIX"], env=env)
    assert result.exit_code == 0, result.output
    result = runner.invoke(hl7, ["sender", "list", "--json"], env=env)
    assert {"site": "ch-morlaix", "application": "XPLORE", "facility": "CH_MORLAIX", "allowed_sources": None,
            "client_cert_name": None} in json.loads(result.output)
    result = runner.invoke(hl7, ["sender", "add", "nowhere", "A", "B"], env=env)
    assert result.exit_code == 1 and "Site inconnu" in result.output
    result = runner.invoke(hl7, ["sender", "access", "XPLORE", "CH_MORLAIX", "--allowed-sources", "10.0.0.300"],
                           env=env)
    assert result.exit_code == 1 and "Adresse ou réseau invalide" in result.output
    result = runner.invoke(hl7, ["sender", "access", "XPLORE", "CH_MORLAIX", "--allowed-sources", "10.29.4.0/24",
                                 "--client-cert-name", "ris.ch-morlaix.fr"], env=env)
    assert result.exit_code == 0, result.output
    listed = [s for s in json.loads(runner.invoke(hl7, ["sender", "list", "--json"], env=env).output)
              if s["application"] == "XPLORE"]
    assert (listed[0]["allowed_sources"], listed[0]["client_cert_name"]) == ("10.29.4.0/24", "ris.ch-morlaix.fr")
    result = runner.invoke(hl7, ["endpoint", "set", "ch-brest", "127.0.0.1", str(free_port()), "--charset", "8859/1"],
                           env=env)
    assert result.exit_code == 0, result.output
    from tests.integration.test_hl7_outbound import queue

    queue(hl7_ctx)
    result = runner.invoke(hl7, ["outbox", "retry", "--deliver"], env=env)
    assert result.exit_code == 0 and "0 envoyé(s), 1 en échec" in result.output
    result = runner.invoke(hl7, ["outbox", "retry"], env=env)
    assert "1 envoi(s) en échec remis en file." in result.output
    assert "injoignable" in runner.invoke(hl7, ["outbox", "list", "--status", "failed"], env=env).output


@pytest.mark.charter("CH-5.3", "CH-8.1", negative=True)
def test_an_administrator_who_may_not_see_the_case_reads_the_header_not_the_patient(app, hl7_ctx, clock):
    handler = InboundHandler(hl7_ctx)
    handler(sample("orm_o01_2.5_nw_utf8.hl7"), False, "127.0.0.1:5000")  # a case at ch-brest: LE BIHAN Nolwenn
    handler(sample("siu_s12_2.5.hl7"), False, "127.0.0.1:5000")  # refused, no case, from ch-brest's RIS
    with hl7_ctx.read() as session:
        case_id, site_id = session.execute(select(Hl7Message.case_id, Hl7Message.site_id)
                                           .where(Hl7Message.control_id == "BRE000102")).one()
    assert case_id and site_id == "ch-brest"
    add_admin(hl7_ctx, "admin.morlaix", ("ch-morlaix",))
    for username in ("admin", "admin.morlaix"):  # of no site; of another site
        client = login(app, hl7_ctx, clock, username)
        for query in ("", f"?case={case_id}", "?site=ch-brest", "?control_id=BRE000102", "?status=rejected"):
            page = text(client.get(f"/admin/hl7/messages{query}"))
            assert "BIHAN" not in page and "Nolwenn" not in page, (username, query)
        page = text(client.get(f"/admin/hl7/messages?case={case_id}"))
        assert f"n° {case_id}" in page and "CH de Brest (urgences)" in page and 'data-patient-visible="no"' in page
        for message_id in (1, 2):
            detail = text(client.get(f"/admin/hl7/messages/{message_id}"))
            assert "Contenu masqué : vous n'avez pas accès à ce dossier." in detail, (username, message_id)
            for secret in ("BIHAN", "Nolwenn", "IPP0077", "19790203", "Liberté", "Dyspnée"):
                assert secret not in detail, (username, message_id, secret)
            assert "MSH|^~\\&|RIS_BREST|CH_BREST" in detail and "PID|***" in detail
        detail = text(client.get("/admin/hl7/messages/1"))
        assert "BRE000102" in detail and f"n° {case_id}" in detail and "CH de Brest (urgences)" in detail
    with hl7_ctx.read() as session:
        reads = session.execute(select(AuditEvent).where(AuditEvent.action == "hl7.message_read")).scalars().all()
    assert reads and all(json.loads(r.detail)["patient_masked"] is True for r in reads)
    # The administrator of the case's site reads it all, the refused message of his site's RIS included.
    add_admin(hl7_ctx, "admin.brest", ("ch-brest",))
    client = login(app, hl7_ctx, clock, "admin.brest")
    detail = text(client.get("/admin/hl7/messages/1"))
    assert "Contenu masqué" not in detail and "PID|***" not in detail and "LE BIHAN^Nolwenn" in detail
    assert 'data-patient-visible="yes"' in text(client.get(f"/admin/hl7/messages?case={case_id}"))
    refused = text(client.get("/admin/hl7/messages/2"))
    assert "Contenu masqué" not in refused and "PID|***" not in refused


def test_masked_text_keeps_the_header_segments_only():
    raw = "MSH|^~\\&|RIS|CH|||20260105||ORM^O01|C1|P|2.5\rEVN|A08|20260105\rPID|1||IPP^^^CH||DOE^JOHN\r" \
          "NK1|1|DOE^JANE\rPV1|1|O\rOBR|1|X|Y|Z^Scanner\r"
    assert masked_text(raw) == ("MSH|^~\\&|RIS|CH|||20260105||ORM^O01|C1|P|2.5\rEVN|A08|20260105\rPID|***\r"
                                "NK1|***\rPV1|***\rOBR|***\r")
    assert masked_text("MSH#^~\\&#RIS\nPID#1#DOE") == "MSH#^~\\&#RIS\rPID#***"  # MSH-1 says the separator
    assert masked_text("garbage without segments") == "gar|***"
