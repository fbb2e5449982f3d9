"""Notification settings (TELERAD_SMTP_*, TELERAD_WEBHOOK_*), the French message and the webhook signature,
without a database: bad settings refused with the variable's name, the SMTP password never shown, no patient data
in a message, contacts validated."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.services.notification_contacts import (
    DEFAULT_PREFERENCES,
    EMAIL,
    URGENT_OFFER,
    WEBHOOK,
    normalise_phone,
    parse_preferences,
)
from engine.services.notification_outbox import MAX_DELAY, OutboxRow, backoff
from integrations.notify.channels import sign
from integrations.notify.messages import compose
from integrations.notify.settings import NotifySettings, NotifySettingsError, parse_smtp_url

NOW = datetime(2026, 1, 5, 2, 10, tzinfo=UTC)


def test_smtp_urls():
    assert parse_smtp_url("") is None
    plain = parse_smtp_url("smtp://127.0.0.1:8025")
    assert (plain.host, plain.port, plain.implicit_tls, plain.starttls) == ("127.0.0.1", 8025, False, "auto")
    gateway = parse_smtp_url("smtp://dr%40ch:p%40ss@mssante.ch.fr:587?starttls=required")
    assert (gateway.username, gateway.password, gateway.starttls) == ("dr@ch", "p@ss", "required")
    tls = parse_smtp_url("smtps://u:secret-pw@mail.example.fr")
    assert tls.implicit_tls and tls.port == 465
    assert "secret-pw" not in str(tls) and "secret-pw" not in repr(tls) and str(tls) == "smtps://u@mail.example.fr:465"
    for bad in ("http://mail", "smtp://", "smtp://host:99999", "smtp://host?starttls=maybe"):
        with pytest.raises(NotifySettingsError, match="TELERAD_SMTP_URL"):
            parse_smtp_url(bad)


def test_settings_checked_when_read():
    off = NotifySettings.from_env({})
    assert not off.enabled and off.channels == ()
    both = NotifySettings.from_env({"TELERAD_SMTP_URL": "smtp://127.0.0.1:25", "TELERAD_WEBHOOK_URL": "https://sms.example.fr/in",
                                    "TELERAD_WEBHOOK_SECRET": "k" * 32, "TELERAD_PUBLIC_URL": "https://telerad.fr/"})
    assert both.channels == (EMAIL, WEBHOOK) and both.public_url == "https://telerad.fr"
    assert "k" * 32 not in repr(both)
    refused = [
        ({"TELERAD_WEBHOOK_URL": "http://sms.example.fr/in", "TELERAD_WEBHOOK_SECRET": "k" * 32}, "https"),
        ({"TELERAD_WEBHOOK_URL": "https://sms.example.fr/in", "TELERAD_WEBHOOK_SECRET": "short"}, "SECRET"),
        ({"TELERAD_SMTP_FROM": "not an address"}, "TELERAD_SMTP_FROM"),
        ({"TELERAD_SMTP_TIMEOUT": "soon"}, "numbers"),
        ({"TELERAD_NOTIFY_MAX_ATTEMPTS": "0"}, "MAX_ATTEMPTS"),
        ({"TELERAD_SMTP_CA_FILE": "/nonexistent/ca.pem"}, "TELERAD_SMTP_CA_FILE"),
    ]
    for env, named in refused:
        with pytest.raises(NotifySettingsError, match=named):
            NotifySettings.from_env(env)


def _row(**changes):
    values = dict(id=7, event=URGENT_OFFER, event_key="task:abc", case_id=42, site_id="ch-brest", urgency="vital",
                  recipient="dr.legall", channel=EMAIL, address="dr.legall@telerad.localhost", status="pending",
                  attempts=0, next_attempt_at=NOW, last_error=None, created_at=NOW, sent_at=None)
    values.update(changes)
    return OutboxRow(**values)


def test_the_message_names_the_case_the_urgency_and_the_site_only():
    message = compose(_row(), "CH de Brest (urgences)", "https://telerad.example.fr")
    assert message.subject == "[Telerad] Dossier urgent proposé (urgence vitale) — dossier n° 42"
    assert "Dossier n° 42 — CH de Brest (urgences), urgence vitale." in message.body
    assert "https://telerad.example.fr/cases/42" in message.body and "aucune donnée de santé" in message.body
    assert len(message.short) <= 160 and message.link == "https://telerad.example.fr/cases/42"
    reminder = compose(_row(event="no_radiologist", event_key="notice:3:reminder:20260105T0310"), None, "")
    assert reminder.subject.startswith("[Telerad] Rappel : aucun radiologue disponible")


def test_backoff_grows_and_is_capped():
    delays = [backoff(n) for n in range(1, 12)]
    assert delays == sorted(delays) and delays[0].total_seconds() == 30 and delays[-1] == MAX_DELAY


def test_webhook_signature_covers_the_timestamp_and_the_body():
    assert sign(b"k", 1, b"{}") != sign(b"k", 2, b"{}") != sign(b"k", 1, b"{ }")
    assert sign(b"k", 1, b"{}").startswith("sha256=") and len(sign(b"k", 1, b"{}")) == 7 + 64


def test_contacts_normalised_and_defaults_for_a_night_on_call():
    assert normalise_phone("06 12 34 56 78") == "+33612345678"
    assert normalise_phone("+44 20 7946 0000") == "+442079460000"
    assert DEFAULT_PREFERENCES[URGENT_OFFER] == (EMAIL, WEBHOOK)
    stored = parse_preferences('{"urgent_offer": ["email", "carrier-pigeon"], "unknown": ["email"]}')
    assert stored[URGENT_OFFER] == (EMAIL,) and "unknown" not in stored
