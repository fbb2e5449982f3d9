"""Pseudonymisation for de-identified research exports (CH-8.2)."""

from __future__ import annotations

import hashlib
import hmac

MIN_SECRET_BYTES = 32


def pseudonymise(identifier: str, secret: bytes) -> str:
    """A stable pseudonym for a patient or case identifier: the same input and secret always give the same
    pseudonym (exports stay linkable), and without the secret it cannot be traced back."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the pseudonymisation secret must have at least {MIN_SECRET_BYTES} bytes")
    if not identifier:
        raise ValueError("nothing to pseudonymise")
    return hmac.new(secret, identifier.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
