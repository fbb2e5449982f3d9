"""The worker's job: write the reminders that are due, then send the outbox rows that are due (a bounded batch),
each marked sent or retried with backoff (engine.services.notification_outbox); a server that cannot be reached
fails the rest of its channel's rows for this run with the same reason."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from engine.services.context import EngineContext
from engine.services.notification_contacts import EMAIL, WEBHOOK
from engine.services.notification_outbox import OutboxRow, claim_due, mark_failed, mark_sent
from engine.services.notifications import NotificationHook, remind_unhandled
from integrations.notify.channels import DeliveryError, Mailer, post_webhook
from integrations.notify.messages import compose
from integrations.notify.settings import NotifySettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryReport:
    reminded: int = 0
    sent: int = 0
    retried: int = 0
    given_up: int = 0


def install(ctx: EngineContext, settings: NotifySettings | None = None) -> bool:
    """Register the notification save hook for the channels configured (TELERAD_SMTP_URL, TELERAD_WEBHOOK_URL);
    none configured: nothing is written. Every process that saves cases needs it. Returns whether it is on."""
    settings = settings or NotifySettings.from_env()
    if not settings.enabled:
        return False
    if not any(isinstance(hook, NotificationHook) for hook in ctx.save_hooks):
        ctx.save_hooks.append(NotificationHook(ctx, settings.channels))
    return True


def deliver_notifications(ctx: EngineContext, settings: NotifySettings, limit: int = 50) -> DeliveryReport:
    reminded = remind_unhandled(ctx, settings.reminder, settings.channels)
    rows = claim_due(ctx, limit)
    if not rows:
        return DeliveryReport(reminded)
    sent = retried = given_up = 0
    mailer = Mailer(settings) if settings.smtp is not None else None
    broken: dict[str, str] = {}
    sites: dict[str | None, str | None] = {}
    try:
        for row in rows:
            try:
                _send(ctx, settings, row, mailer, broken, sites)
            except DeliveryError as err:
                if err.connection:
                    broken[row.channel] = str(err)
                log.warning("notification %s (%s to %s): attempt %s failed: %s", row.id, row.channel,
                            row.recipient, row.attempts + 1, err)
                status = mark_failed(ctx, row.id, str(err), settings.max_attempts)
                given_up += status == "failed"
                retried += status == "pending"
            else:
                mark_sent(ctx, row.id)
                sent += 1
    finally:
        if mailer is not None:
            mailer.close()
    return DeliveryReport(reminded, sent, retried, given_up)


def _send(ctx: EngineContext, settings: NotifySettings, row: OutboxRow, mailer: Mailer | None,
          broken: dict[str, str], sites: dict[str | None, str | None]) -> None:
    if row.channel in broken:
        raise DeliveryError(broken[row.channel])
    if row.site_id not in sites:
        site = ctx.directory.site(row.site_id) if ctx.directory is not None and row.site_id else None
        sites[row.site_id] = site.name if site is not None else None
    message = compose(row, sites[row.site_id], settings.public_url)
    if row.channel == EMAIL:
        if mailer is None:
            raise DeliveryError("Envoi par courriel non configuré (TELERAD_SMTP_URL).")
        mailer.send(row.address, message.subject, message.body)
    elif row.channel == WEBHOOK:
        if not settings.webhook_url:
            raise DeliveryError("Webhook non configuré (TELERAD_WEBHOOK_URL).")
        post_webhook(settings, {
            "id": row.id, "event": row.event, "title": message.title, "text": message.short,
            "case_id": row.case_id, "urgency": row.urgency, "site": sites[row.site_id], "link": message.link,
            "recipient": {"username": row.recipient, "phone": row.address}}, row.id)
    else:
        raise DeliveryError(f"Canal inconnu : {row.channel}.")
