"""Settings of the notifications, read from the environment (TELERAD_SMTP_*, TELERAD_WEBHOOK_*, TELERAD_NOTIFY_*),
checked when read. No SMTP URL and no webhook URL: notifications are off (no row is written)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from engine.services.notification_contacts import EMAIL, WEBHOOK

SCHEMES = {"smtp": 25, "smtps": 465}
STARTTLS_MODES = ("auto", "required", "off")


class NotifySettingsError(ValueError):
    pass


@dataclass(frozen=True)
class SmtpTarget:
    """`smtp://[user:pass@]host[:port][?starttls=auto|required|off]` (STARTTLS when offered by default; required
    for a secure messaging gateway) or `smtps://user:pass@host:465` (TLS from the first byte)."""

    host: str
    port: int
    implicit_tls: bool
    starttls: str = "auto"
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:  # what logs and pages may show: never the password
        user = f"{self.username}@" if self.username else ""
        return f"{'smtps' if self.implicit_tls else 'smtp'}://{user}{self.host}:{self.port}"


@dataclass(frozen=True)
class NotifySettings:
    public_url: str  # TELERAD_PUBLIC_URL: the links to the cases
    smtp: SmtpTarget | None  # TELERAD_SMTP_URL
    sender: str  # TELERAD_SMTP_FROM, default telerad@localhost
    timeout: float  # TELERAD_SMTP_TIMEOUT (seconds, SMTP and webhook), default 10
    ca_file: Path | None  # TELERAD_SMTP_CA_FILE: the CA of a private gateway (default: the system's)
    webhook_url: str | None  # TELERAD_WEBHOOK_URL: JSON POST (https, or http on loopback)
    webhook_secret: bytes = field(repr=False)  # TELERAD_WEBHOOK_SECRET: HMAC-SHA256 key (32 characters or more)
    max_attempts: int = 8  # TELERAD_NOTIFY_MAX_ATTEMPTS: then the row is given up (failed)
    reminder: timedelta = timedelta(minutes=15)  # TELERAD_NOTIFY_REMINDER_MINUTES: "no radiologist" again
    interval: float = 5.0  # TELERAD_NOTIFY_SECONDS: how often the worker sends

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(c for c, on in ((EMAIL, self.smtp is not None), (WEBHOOK, bool(self.webhook_url))) if on)

    @property
    def enabled(self) -> bool:
        return bool(self.channels)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, public_url: str | None = None) -> NotifySettings:
        env = os.environ if env is None else env
        try:
            timeout = float(env.get("TELERAD_SMTP_TIMEOUT", "10"))
            max_attempts = int(env.get("TELERAD_NOTIFY_MAX_ATTEMPTS", "8"))
            reminder = float(env.get("TELERAD_NOTIFY_REMINDER_MINUTES", "15"))
            interval = float(env.get("TELERAD_NOTIFY_SECONDS", "5"))
        except ValueError:
            raise NotifySettingsError("TELERAD_SMTP_TIMEOUT, TELERAD_NOTIFY_MAX_ATTEMPTS, TELERAD_NOTIFY_REMINDER_"
                                      "MINUTES and TELERAD_NOTIFY_SECONDS are numbers") from None
        if not (0 < timeout <= 120 and 1 <= max_attempts <= 100 and reminder >= 1 and interval > 0):
            raise NotifySettingsError("TELERAD_SMTP_TIMEOUT 0-120 s, TELERAD_NOTIFY_MAX_ATTEMPTS 1-100, "
                                      "TELERAD_NOTIFY_REMINDER_MINUTES >= 1, TELERAD_NOTIFY_SECONDS > 0")
        webhook, secret = env.get("TELERAD_WEBHOOK_URL", "").strip() or None, env.get("TELERAD_WEBHOOK_SECRET", "")
        if webhook is not None:
            _check_webhook(webhook, secret)
        sender = env.get("TELERAD_SMTP_FROM", "").strip() or "telerad@localhost"
        if "@" not in sender or any(c in sender for c in "\r\n<>"):
            raise NotifySettingsError("TELERAD_SMTP_FROM must be an email address")
        ca_file = env.get("TELERAD_SMTP_CA_FILE", "").strip()
        if ca_file and not Path(ca_file).is_file():
            raise NotifySettingsError(f"TELERAD_SMTP_CA_FILE: no such file: {ca_file}")
        url = public_url if public_url is not None else env.get("TELERAD_PUBLIC_URL", "")
        return cls(public_url=url.strip().rstrip("/"), smtp=parse_smtp_url(env.get("TELERAD_SMTP_URL", "")),
                   sender=sender, timeout=timeout, ca_file=Path(ca_file) if ca_file else None,
                   webhook_url=webhook, webhook_secret=secret.encode(), max_attempts=max_attempts,
                   reminder=timedelta(minutes=reminder), interval=interval)


def parse_smtp_url(url: str) -> SmtpTarget | None:
    url = url.strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise NotifySettingsError("TELERAD_SMTP_URL must look like smtp://host:port or smtps://user:pass@host:465")
    try:
        port = parts.port or SCHEMES[parts.scheme]
    except ValueError:
        raise NotifySettingsError("TELERAD_SMTP_URL: the port must be a number (0-65535)") from None
    starttls = parse_qs(parts.query).get("starttls", ["auto"])[0]
    if starttls not in STARTTLS_MODES:
        raise NotifySettingsError("TELERAD_SMTP_URL: starttls must be auto, required or off")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return SmtpTarget(parts.hostname, port, parts.scheme == "smtps", starttls, username, password)


def _check_webhook(url: str, secret: str) -> None:
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
    if parts.scheme not in ("https", "http") or not parts.hostname or (parts.scheme == "http" and not loopback):
        raise NotifySettingsError("TELERAD_WEBHOOK_URL must be an https:// URL (http:// on loopback only)")
    if len(secret) < 32:
        raise NotifySettingsError("TELERAD_WEBHOOK_SECRET (32 characters or more) is required with "
                                  "TELERAD_WEBHOOK_URL")
