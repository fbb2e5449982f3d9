"""Shared pieces of the notification tests: a real SMTP server (aiosmtpd) and a real HTTP receiver on loopback,
the demo directory at night with an on-call radiologist, and an urgent case driven through the engine services."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.services.definitions import deploy_library
from engine.services.instances import start_instance
from engine.services.oncall import add_slot
from engine.store.directory_models import NotificationOutbox
from forms import default_registry
from integrations.notify.settings import NotifySettings
from web.cli.demo_data import create_demo, demo_request
from web.config import PROJECT_ROOT

WORKFLOWS = PROJECT_ROOT / "workflows" / "bpmn"
NIGHT = datetime(2026, 1, 5, 22, 30, tzinfo=UTC)  # 23:30 in Paris, a Monday: the on-call service answers
SECRET = "s" * 40
PUBLIC_URL = "https://telerad.example.fr"
REQUESTER = Actor("dr.martin", frozenset({"requester"}), frozenset({"ch-brest"}))
ADMIN = Actor("admin", frozenset({"administrator"}))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        with self.arrived:
            message = message_from_bytes(envelope.content, policy=policy.default)
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
            self.arrived.notify_all()
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for _, recipients, message in self.messages if address in recipients]


def smtp_server(port: int | None = None, **options: Any) -> tuple[Controller, Mailbox]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port or free_port(), **options)
    controller.start()
    return controller, mailbox


class Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]
    answer: int

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append({"body": body, "headers": dict(self.headers)})  # type: ignore[attr-defined]
        self.send_response(self.server.answer)  # type: ignore[attr-defined]
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def http_receiver(answer: int = 204) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.received = []  # type: ignore[attr-defined]
    server.answer = answer  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def verify_signature(request: dict[str, Any], secret: str = SECRET, now: int | None = None) -> dict[str, Any]:
    """What a receiver does: recompute the HMAC over "<timestamp>.<body>", refuse a stale timestamp."""
    timestamp = request["headers"]["X-Telerad-Timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + request["body"],
                                    hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, request["headers"]["X-Telerad-Signature"])
    payload = json.loads(request["body"])
    assert payload["timestamp"] == int(timestamp)
    if now is not None:
        assert abs(now - int(timestamp)) < 300
    return dict(payload)


def settings_for(smtp_port: int | None = None, webhook: str | None = None, **env: str) -> NotifySettings:
    values = {"TELERAD_SMTP_FROM": "alertes@telerad.localhost", "TELERAD_SMTP_TIMEOUT": "5", **env}
    if smtp_port is not None:
        values.setdefault("TELERAD_SMTP_URL", f"smtp://127.0.0.1:{smtp_port}")
    if webhook is not None:
        values.update(TELERAD_WEBHOOK_URL=webhook, TELERAD_WEBHOOK_SECRET=SECRET)
    return NotifySettings.from_env(values, public_url=PUBLIC_URL)


@pytest.fixture
def night_ctx(make_ctx, clock):
    """The demo at 23:30, dr.legall on call for the Brest territory until 08:00."""
    ctx = make_ctx(operations=None, forms=default_registry(), escalation=None)
    deploy_library(ctx, Actor("designer"), WORKFLOWS)
    create_demo(ctx)
    clock.set(NIGHT)
    add_slot(ctx, ADMIN, "brest", "dr.legall", NIGHT - timedelta(hours=4), NIGHT + timedelta(hours=10))
    return ctx


def urgent_case(ctx: Any, **overrides: Any) -> int:
    return int(start_instance(ctx, REQUESTER, "telediagnosis", {}, site_id="ch-brest",
                              first_task=demo_request(**overrides)))


def outbox(ctx: Any, **where: Any) -> list[NotificationOutbox]:
    with ctx.read() as session:
        query = select(NotificationOutbox).order_by(NotificationOutbox.id)
        for name, value in where.items():
            query = query.where(getattr(NotificationOutbox, name) == value)
        rows = session.execute(query).scalars().all()
        session.expunge_all()
        return list(rows)

