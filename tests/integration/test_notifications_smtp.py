"""Notifications by email through a real SMTP server on loopback (aiosmtpd): the urgent offer reaches the on-call
radiologist at night, in French, with a link and no patient data; written with the save or not at all; retried
with backoff while the server is down, nothing lost; STARTTLS with a throwaway certificate."""

from __future__ import annotations

import ssl

import pytest

from engine.errors import Conflict
from engine.services.notification_contacts import EMAIL, URGENT_OFFER, WEBHOOK, update_contact
from engine.services.notification_outbox import backoff
from integrations.notify.delivery import deliver_notifications, install
from tests.integration.notify_support import (
    PUBLIC_URL,
    free_port,
    night_ctx,
    outbox,
    settings_for,
    smtp_server,
    urgent_case,
)
from tests.integration.tls_support import pki

__all__ = ["night_ctx", "pki"]


@pytest.mark.charter("CH-5.5")
@pytest.mark.charter("CH-3.3")
def test_an_urgent_offer_at_night_reaches_the_on_call_radiologist_by_email(night_ctx):
    controller, mailbox = smtp_server()
    try:
        settings = settings_for(controller.port)
        assert install(night_ctx, settings)
        case_id = urgent_case(night_ctx)
        rows = outbox(night_ctx, case_id=case_id)
        assert [(r.recipient, r.event, r.channel, r.status) for r in rows] == [
            ("dr.legall", URGENT_OFFER, EMAIL, "pending")]
        report = deliver_notifications(night_ctx, settings)
    finally:
        controller.stop()
    assert report.sent == 1
    (message,) = mailbox.to("dr.legall@telerad.localhost")
    body = message.get_content()
    assert message["From"] == "alertes@telerad.localhost"
    # he is told he is reached as the territory's on-call radiologist
    assert message["Subject"] == f"[Telerad] Garde : dossier urgent proposé (urgence vitale) — dossier n° {case_id}"
    assert "radiologue de garde du territoire" in body
    assert f"{PUBLIC_URL}/cases/{case_id}" in body and "CH de Brest (urgences)" in body
    for clinical in ("Kermarrec", "Yann", "Hématome", "anticoagulant", "1948"):
        assert clinical not in body and clinical not in message["Subject"]
    (row,) = outbox(night_ctx, case_id=case_id)
    assert row.status == "sent" and row.attempts == 1 and row.sent_at is not None


def test_a_save_rolled_back_writes_no_notification(night_ctx):
    settings = settings_for(free_port())
    install(night_ctx, settings)

    def refuse(session, saved, data):
        raise Conflict("refused after the notification hook")

    night_ctx.save_hooks.append(refuse)
    with pytest.raises(Conflict):
        urgent_case(night_ctx)
    night_ctx.save_hooks.remove(refuse)
    assert outbox(night_ctx) == []
    urgent_case(night_ctx)
    assert len(outbox(night_ctx)) == 1


def test_server_down_retried_with_backoff_then_delivered_nothing_lost(night_ctx, clock):
    port = free_port()
    settings = settings_for(port)
    install(night_ctx, settings)
    case_id = urgent_case(night_ctx)
    first = deliver_notifications(night_ctx, settings)
    assert (first.sent, first.retried) == (0, 1)
    (row,) = outbox(night_ctx, case_id=case_id)
    assert row.status == "pending" and row.attempts == 1 and "injoignable" in row.last_error
    assert row.next_attempt_at == clock.now() + backoff(1)
    assert deliver_notifications(night_ctx, settings).retried == 0  # not due yet
    clock.advance(seconds=backoff(1).total_seconds())
    assert deliver_notifications(night_ctx, settings).retried == 1
    (row,) = outbox(night_ctx, case_id=case_id)
    assert row.attempts == 2 and row.next_attempt_at == clock.now() + backoff(2) and backoff(2) > backoff(1)
    controller, mailbox = smtp_server(port)
    try:
        clock.advance(seconds=backoff(2).total_seconds())
        assert deliver_notifications(night_ctx, settings).sent == 1
    finally:
        controller.stop()
    assert len(mailbox.to("dr.legall@telerad.localhost")) == 1
    assert outbox(night_ctx, case_id=case_id)[0].status == "sent"


def test_given_up_after_the_last_attempt_visible_as_failed(night_ctx, clock):
    settings = settings_for(free_port(), TELERAD_NOTIFY_MAX_ATTEMPTS="2")
    install(night_ctx, settings)
    urgent_case(night_ctx)
    deliver_notifications(night_ctx, settings)
    clock.advance(hours=2)
    assert deliver_notifications(night_ctx, settings).given_up == 1
    (row,) = outbox(night_ctx)
    assert row.status == "failed" and row.attempts == 2
    clock.advance(days=1)
    assert deliver_notifications(night_ctx, settings).given_up == 0  # given up: not tried again by itself


def test_a_row_claimed_by_a_worker_that_died_is_sent_after_the_lease(night_ctx, clock):
    from engine.services.notification_outbox import LEASE, claim_due

    controller, mailbox = smtp_server()
    try:
        settings = settings_for(controller.port)
        install(night_ctx, settings)
        urgent_case(night_ctx)
        assert len(claim_due(night_ctx)) == 1  # claimed, then the worker dies before sending
        assert deliver_notifications(night_ctx, settings).sent == 0
        clock.advance(seconds=LEASE.total_seconds())
        assert deliver_notifications(night_ctx, settings).sent == 1
    finally:
        controller.stop()
    assert len(mailbox.messages) == 1


def test_preferences_respected_and_channels_without_address_skipped(night_ctx):
    from engine.domain.actors import Actor

    settings = settings_for(free_port(), webhook="http://127.0.0.1:9/hook")
    install(night_ctx, settings)
    update_contact(night_ctx, Actor("dr.legall"), "dr.legall", "yann.legall@telerad.localhost", "06 12 34 56 78",
                   {URGENT_OFFER: [WEBHOOK]})
    first = urgent_case(night_ctx)
    assert [(r.channel, r.address) for r in outbox(night_ctx, case_id=first)] == [(WEBHOOK, "+33612345678")]
    update_contact(night_ctx, Actor("dr.legall"), "dr.legall", "yann.legall@telerad.localhost", "", {
        URGENT_OFFER: [EMAIL, WEBHOOK]})
    second = urgent_case(night_ctx)
    assert [(r.channel, r.address) for r in outbox(night_ctx, case_id=second)] == [
        (EMAIL, "yann.legall@telerad.localhost")]  # no phone: no webhook row
    update_contact(night_ctx, Actor("dr.legall"), "dr.legall", "yann.legall@telerad.localhost", "", {})
    assert outbox(night_ctx, case_id=urgent_case(night_ctx)) == []


def test_no_channel_configured_writes_nothing(night_ctx):
    assert not install(night_ctx, settings_for())
    urgent_case(night_ctx)
    assert outbox(night_ctx) == []


def test_starttls_required_with_a_throwaway_certificate(night_ctx, pki):
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(pki.path("server.crt"), pki.path("server.key"))
    controller, mailbox = smtp_server(tls_context=server_tls, require_starttls=True)
    try:
        port = controller.port
        settings = settings_for(TELERAD_SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=required",
                                TELERAD_SMTP_CA_FILE=str(pki.path("ca.crt")))
        install(night_ctx, settings)
        urgent_case(night_ctx)
        assert deliver_notifications(night_ctx, settings).sent == 1
        untrusted = settings_for(TELERAD_SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=required",
                                 TELERAD_SMTP_CA_FILE=str(pki.path("rogue.crt")))
        urgent_case(night_ctx)
        report = deliver_notifications(night_ctx, untrusted)
    finally:
        controller.stop()
    assert len(mailbox.messages) == 1 and report.retried == 1
    (refused,) = [row for row in outbox(night_ctx) if row.status == "pending"]
    assert "certificate" in refused.last_error.lower()  # the server's certificate is not from the CA we trust


def test_the_worker_scheduler_sends_the_outbox_when_given_the_settings(night_ctx):
    from web.ops.scheduler import TimerScheduler

    assert TimerScheduler(night_ctx, 3600)._scheduler.get_job("deliver_notifications") is None
    assert TimerScheduler(night_ctx, 3600, notify=settings_for())._scheduler.get_job("deliver_notifications") is None
    controller, mailbox = smtp_server()
    try:
        settings = settings_for(controller.port, TELERAD_NOTIFY_SECONDS="2")
        scheduler = TimerScheduler(night_ctx, 3600, notify=settings)
        assert scheduler._scheduler.get_job("deliver_notifications").trigger.interval.total_seconds() == 2
        install(night_ctx, settings)
        urgent_case(night_ctx)
        scheduler.send_notifications()
    finally:
        controller.stop()
    assert len(mailbox.to("dr.legall@telerad.localhost")) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.filterwarnings("ignore:Session.login_data is deprecated")
def test_smtps_with_login_and_the_password_never_shown(night_ctx, pki, caplog):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticator(server, session, envelope, mechanism, data):
        good = isinstance(data, LoginPassword) and (data.login, data.password) == (b"telerad", b"s3cr3t-Pa55")
        return AuthResult(success=good, handled=False)  # handled=False: aiosmtpd answers 535 itself

    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(pki.path("server.crt"), pki.path("server.key"))
    controller, mailbox = smtp_server(ssl_context=server_tls, server_hostname="localhost",
                                      authenticator=authenticator, auth_required=True,
                                      auth_require_tls=False,  # aiosmtpd only counts STARTTLS as TLS
                                      auth_exclude_mechanism=["LOGIN"])  # its LOGIN stalls smtplib's 2nd try
    try:
        ca = str(pki.path("ca.crt"))
        settings = settings_for(TELERAD_SMTP_URL=f"smtps://telerad:s3cr3t-Pa55@127.0.0.1:{controller.port}",
                                TELERAD_SMTP_CA_FILE=ca)
        assert "s3cr3t" not in repr(settings) and "s3cr3t" not in str(settings.smtp)
        install(night_ctx, settings)
        urgent_case(night_ctx)
        assert deliver_notifications(night_ctx, settings).sent == 1
        wrong = settings_for(TELERAD_SMTP_URL=f"smtps://telerad:wrong-Pa55@127.0.0.1:{controller.port}",
                             TELERAD_SMTP_CA_FILE=ca)
        urgent_case(night_ctx)
        assert deliver_notifications(night_ctx, wrong).retried == 1
    finally:
        controller.stop()
    assert len(mailbox.messages) == 1
    (refused,) = [row for row in outbox(night_ctx) if row.status == "pending"]
    assert "authentification refusée" in refused.last_error and "wrong-Pa55" not in refused.last_error
    assert "Pa55" not in caplog.text


def test_rows_written_before_a_restart_are_sent_by_the_next_process(night_ctx, make_ctx):
    from forms import default_registry

    settings = settings_for(free_port())
    install(night_ctx, settings)
    case_id = urgent_case(night_ctx)
    night_ctx.engine.dispose()  # the process stops before sending
    controller, mailbox = smtp_server()
    try:
        restarted = make_ctx(operations=None, forms=default_registry(), escalation=None)
        assert deliver_notifications(restarted, settings_for(controller.port)).sent == 1
    finally:
        controller.stop()
    assert f"n° {case_id}" in mailbox.to("dr.legall@telerad.localhost")[0]["Subject"]
