"""The second factor: TOTP codes (RFC 6238) from the person's authenticator app, 30-second steps with one step
of tolerance either side for clock drift. Which step a code belongs to is what makes a code usable once only:
the account remembers the last step used."""

from __future__ import annotations

import hmac
import re
from datetime import datetime

import pyotp

TOTP_ISSUER = "Telerad"
TOTP_STEP_SECONDS = 30
TOTP_WINDOW = 1  # steps accepted either side of the current one (clock drift)
_CODE = re.compile(r"\d{6}")


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str) -> str:
    """The otpauth:// URI the authenticator app scans (as a QR code) to store the secret."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (within the tolerance) whose code is `code`, or None; spaces in the code are ignored."""
    code = "".join(code.split())
    if not _CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret, interval=TOTP_STEP_SECONDS)
    current = int(now.timestamp()) // TOTP_STEP_SECONDS
    for step in range(current + TOTP_WINDOW, current - TOTP_WINDOW - 1, -1):
        if hmac.compare_digest(str(totp.generate_otp(step)), code):
            return step
    return None
