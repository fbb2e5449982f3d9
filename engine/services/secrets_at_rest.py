"""Secrets stored encrypted with the key file's secrets keys (engine.services.keyring): today the TOTP seeds.

`seal_clear_secrets` encrypts the seeds an older version left in clear (run by `telerad db upgrade` after the
migrations); `reencrypt_secrets` moves every seed to the newest secrets key after `telerad keys rotate secrets`,
so that the older keys can then be removed from the file. Each is one transaction: all seeds or none."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from engine.services.accounts_totp import is_sealed
from engine.services.context import EngineContext
from engine.services.keyring import SecretUnreadable
from engine.store import audit
from engine.store.directory_models import User

SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class SecretsReport:
    sealed: int  # found in clear and encrypted
    reencrypted: int  # moved to the newest key
    accounts: int


class SecretsUnreadable(ValueError):
    """Some seeds cannot be decrypted with the key file: nothing was changed."""

    def __init__(self, usernames: list[str]):
        super().__init__(f"{len(usernames)} TOTP secret(s) cannot be decrypted with the key file "
                         f"({', '.join(usernames[:10])}{'…' if len(usernames) > 10 else ''}): "
                         "put back the secrets key that encrypted them, or reset these accounts' second factor")
        self.usernames = usernames


def seal_clear_secrets(ctx: EngineContext, actor: str = SYSTEM_ACTOR) -> SecretsReport:
    """Encrypt the seeds still stored in clear; the encrypted ones are left as they are."""
    return _rewrite(ctx, actor, rotate=False)


def reencrypt_secrets(ctx: EngineContext, actor: str = SYSTEM_ACTOR) -> SecretsReport:
    """Every seed encrypted with the newest secrets key (those in clear included)."""
    return _rewrite(ctx, actor, rotate=True)


def _rewrite(ctx: EngineContext, actor: str, *, rotate: bool) -> SecretsReport:
    keys = ctx.keys
    sealed = reencrypted = 0
    unreadable: list[str] = []
    with ctx.write() as session:
        users = session.execute(select(User).order_by(User.username).with_for_update()).scalars().all()
        for user in users:
            if not is_sealed(user.totp_secret):
                user.totp_secret = keys.encrypt_secret(user.totp_secret)
                sealed += 1
            elif rotate:
                try:
                    user.totp_secret = keys.reencrypt_secret(user.totp_secret)
                except SecretUnreadable:
                    unreadable.append(user.username)
                    continue
                reencrypted += 1
        if unreadable:
            session.rollback()
            raise SecretsUnreadable(unreadable)
        if sealed or reencrypted:
            audit.append_global(session, [audit.AuditEntry(actor, "keys.secrets_rewritten", None, {
                "sealed": sealed, "reencrypted": reencrypted, "key": keys.secrets[0].id})], ctx.clock.now())
        session.commit()
    return SecretsReport(sealed, reencrypted, len(users))
