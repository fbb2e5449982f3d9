"""The two ways out: email over SMTP (smtplib: plain for a local sink, STARTTLS, or implicit TLS; login when the URL
has credentials, never over an unencrypted connection except on loopback) and a JSON webhook signed with
HMAC-SHA256 over "<timestamp>.<body>" (header X-Telerad-Signature: sha256=<hex>, X-Telerad-Timestamp: the same
seconds, also in the body, so a receiver refuses replays)."""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from integrations.notify.settings import NotifySettings, SmtpTarget

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class DeliveryError(Exception):
    """One attempt failed; `connection` when the server itself is unreachable (the other rows of this run for the
    same channel fail with the same reason instead of waiting for their own timeout)."""

    def __init__(self, reason: str, connection: bool = False):
        super().__init__(reason)
        self.connection = connection


class Mailer:
    """One SMTP session per run of the worker, opened at the first message."""

    def __init__(self, settings: NotifySettings):
        assert settings.smtp is not None
        self.target: SmtpTarget = settings.smtp
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def _tls(self) -> ssl.SSLContext:
        ca = self.settings.ca_file
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def _open(self) -> smtplib.SMTP:
        target, timeout = self.target, self.settings.timeout
        smtp: smtplib.SMTP
        try:
            if target.implicit_tls:
                smtp = smtplib.SMTP_SSL(target.host, target.port, timeout=timeout, context=self._tls())
            else:
                smtp = smtplib.SMTP(target.host, target.port, timeout=timeout)
            smtp.ehlo()
            encrypted = target.implicit_tls
            if not target.implicit_tls and target.starttls != "off":
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=self._tls())
                    smtp.ehlo()
                    encrypted = True
                elif target.starttls == "required":
                    smtp.close()
                    raise DeliveryError(f"{target} : le serveur ne propose pas STARTTLS (requis).", True)
            if target.username:
                if not encrypted and target.host not in LOOPBACK:
                    smtp.close()
                    raise DeliveryError(f"{target} : identifiants refusés sur une connexion non chiffrée.", True)
                smtp.login(target.username, target.password or "")
        except DeliveryError:
            raise
        except smtplib.SMTPAuthenticationError as err:
            raise DeliveryError(f"{target} : authentification refusée ({err.smtp_code}).", True) from None
        except (OSError, smtplib.SMTPException) as err:
            raise DeliveryError(f"{target} injoignable : {err or type(err).__name__}", True) from None
        return smtp

    def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self.settings.sender.rsplit("@", 1)[-1])
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(body)
        if self._smtp is None:
            self._smtp = self._open()
        try:
            self._smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as err:
            codes = ", ".join(f"{code}" for code, _ in err.recipients.values())
            raise DeliveryError(f"Destinataire refusé par {self.target} ({codes}).") from None
        except smtplib.SMTPResponseException as err:
            raise DeliveryError(f"Refusé par {self.target} ({err.smtp_code}).") from None
        except (OSError, smtplib.SMTPException) as err:
            self.close()
            raise DeliveryError(f"{self.target} : envoi interrompu : {err or type(err).__name__}", True) from None

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                self._smtp.close()
            self._smtp = None


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def post_webhook(settings: NotifySettings, payload: dict[str, Any], delivery_id: int) -> None:
    """POST the payload; a 2xx answer is a delivery, anything else a failed attempt."""
    assert settings.webhook_url is not None
    timestamp = int(time.time())
    body = json.dumps({**payload, "timestamp": timestamp}, ensure_ascii=False, sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8", "User-Agent": "Telerad-notifications",
        "X-Telerad-Timestamp": str(timestamp), "X-Telerad-Signature": sign(settings.webhook_secret, timestamp, body),
        "X-Telerad-Delivery": str(delivery_id)}
    # https, or http on loopback only (checked by the settings)
    request = urllib.request.Request(settings.webhook_url, data=body, method="POST", headers=headers)  # noqa: S310
    context = ssl.create_default_context() if settings.webhook_url.startswith("https://") else None
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout, context=context) as answer:  # noqa: S310
            status = answer.status
    except urllib.error.HTTPError as err:
        raise DeliveryError(f"Webhook : réponse HTTP {err.code}.") from None
    except (OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise DeliveryError(f"Webhook injoignable : {reason or type(err).__name__}", True) from None
    if not 200 <= status < 300:
        raise DeliveryError(f"Webhook : réponse HTTP {status}.")
