"""The administrators' notification outbox page: who is told what about which case number, attempts, last error,
next attempt, "retry now"; administrators only (403 for everyone else), never patient data."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import select, update

from engine.store.directory_models import NotificationOutbox
from engine.store.models import AuditEvent
from integrations.notify.delivery import deliver_notifications, install
from tests.demo_app import app, demo_ctx, login
from tests.integration.notify_support import free_port, settings_for, urgent_case

__all__ = ["app", "demo_ctx"]


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def failed_row(demo_ctx):
    settings = settings_for(free_port(), TELERAD_NOTIFY_MAX_ATTEMPTS="1")
    install(demo_ctx, settings)
    case_id = urgent_case(demo_ctx)
    deliver_notifications(demo_ctx, settings)
    with demo_ctx.read() as session:
        return case_id, session.execute(select(NotificationOutbox).where(
            NotificationOutbox.case_id == case_id)).scalars().first()


@pytest.mark.parametrize("username", ["dr.legall", "dr.martin", "dr.guillou", "auditor"])
def test_the_outbox_is_for_administrators_only(app, demo_ctx, clock, failed_row, username):
    client = login(app, demo_ctx, clock, username)
    assert client.get("/admin/notifications").status_code == 403
    _, row = failed_row
    assert client.post(f"/admin/notifications/{row.id}/retry").status_code == 403


def test_administrators_see_failures_and_retry_now(app, demo_ctx, clock, failed_row):
    case_id, row = failed_row
    client = login(app, demo_ctx, clock, "admin")
    page = _text(client.get("/admin/notifications?status=failed"))
    assert f'data-notification-id="{row.id}" data-status="failed"' in page
    assert f"n° {case_id}" in page and "Dr Yann Le Gall (radiologue)" in page and "injoignable" in page
    assert "Dossier urgent ou d'urgence vitale qui vous est proposé" in page
    assert "Kermarrec" not in page and "Hématome" not in page  # case numbers only
    answer = client.post(f"/admin/notifications/{row.id}/retry?status=failed")
    assert answer.status_code == 302
    with demo_ctx.read() as session:
        retried = session.get(NotificationOutbox, row.id)
        assert retried.status == "pending" and retried.attempts == 0
        assert session.execute(select(AuditEvent).where(AuditEvent.action == "notification.retry")).first()
    with demo_ctx.write() as session:  # a sent row has no button and cannot be retried
        session.execute(update(NotificationOutbox).where(NotificationOutbox.id == row.id).values(status="sent"))
        session.commit()
    client.post(f"/admin/notifications/{row.id}/retry")
    with demo_ctx.read() as session:
        assert session.get(NotificationOutbox, row.id).status == "sent"
