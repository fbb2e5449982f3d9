"""Signing a report in tests: a TOTP code of an account (engine.services.report_signature). A code is usable once
per 30-second step, and logging in uses the account's steps too. The code given is that of the step before the
current one (accepted for clock drift), so that the same user may still log in at the current time afterwards; the
fake clock is moved on when that step is used already."""

from __future__ import annotations

import pyotp

from engine.services.accounts_totp import TOTP_STEP_SECONDS
from engine.store.directory_models import User


def signature_code(ctx, username: str) -> str:
    with ctx.read() as session:
        user = session.get(User, username)
        secret, last_step = ctx.keys.decrypt_secret(user.totp_secret), user.totp_last_step
    step = int(ctx.clock.now().timestamp()) // TOTP_STEP_SECONDS
    if step - 1 <= last_step:
        ctx.clock.advance(seconds=(last_step - step + 2) * TOTP_STEP_SECONDS)
        step = int(ctx.clock.now().timestamp()) // TOTP_STEP_SECONDS
    return pyotp.TOTP(secret, interval=TOTP_STEP_SECONDS).at((step - 1) * TOTP_STEP_SECONDS)


def signed(ctx, username: str, data: dict) -> dict:
    """The report's fields with its author's signature code."""
    return {**data, "signature_code": signature_code(ctx, username)}
