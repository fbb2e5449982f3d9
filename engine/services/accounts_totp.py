"""The second factor: TOTP codes (RFC 6238) from the person's authenticator app, 30-second steps with one step
of tolerance either side for clock drift. Which step a code belongs to is what makes a code usable once only:
the account remembers the last step used.

The secret is stored encrypted (Fernet, engine.services.keyring) with a key kept outside the database: a copy of
the database alone cannot generate anyone's codes. `sealed_totp_secret` makes a new one, `unsealed` reads it."""

from __future__ import annotations

import hmac
import logging
import re
from datetime import datetime

import pyotp

from engine.services.keyring import KeyRing, SecretUnreadable

log = logging.getLogger(__name__)

TOTP_ISSUER = "Telerad"
TOTP_STEP_SECONDS = 30
TOTP_WINDOW = 1  # steps accepted either side of the current one (clock drift)
_CODE = re.compile(r"\d{6}")


def new_totp_secret() -> str:
    return pyotp.random_base32()


def sealed_totp_secret(keys: KeyRing) -> str:
    """A new secret, encrypted for storage."""
    return keys.encrypt_secret(new_totp_secret())


def unsealed(keys: KeyRing, stored: str) -> str:
    """The secret of a stored (encrypted) value; SecretUnreadable when the key file lacks its key."""
    return keys.decrypt_secret(stored)


def is_sealed(stored: str) -> bool:
    """Whether a stored value is already encrypted (a Fernet token) rather than a secret left in clear by a
    version before encryption at rest (engine.services.secrets_at_rest encrypts those)."""
    return stored.startswith("gAAAAA")


def provisioning_uri(secret: str, username: str) -> str:
    """The otpauth:// URI the authenticator app scans (as a QR code) to store the secret."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)


def matching_step(keys: KeyRing, stored: str, code: str, now: datetime) -> int | None:
    """The time step (within the tolerance) whose code is `code`, or None; spaces in the code are ignored.
    A secret the key file cannot decrypt matches nothing (and is logged for the operator)."""
    code = "".join(code.split())
    if not _CODE.fullmatch(code):
        return None
    try:
        secret = unsealed(keys, stored)
    except SecretUnreadable:
        log.error("a TOTP secret cannot be decrypted with TELERAD_KEYS_FILE: was the secrets key removed "
                  "before `telerad keys reencrypt`?")
        return None
    totp = pyotp.TOTP(secret, interval=TOTP_STEP_SECONDS)
    current = int(now.timestamp()) // TOTP_STEP_SECONDS
    for step in range(current + TOTP_WINDOW, current - TOTP_WINDOW - 1, -1):
        if hmac.compare_digest(str(totp.generate_otp(step)), code):
            return step
    return None
