"""What an API bearer token may do and until when (issue 16; CH-8.1): the API asks token_access() on every call
and refuses an expired token (401) and a "read" token on a call that writes (403); tokens are renewed with the
same value and a new expiry, so that the systems holding them change nothing.

Issuing and revoking tokens: engine.services.accounts; storage and terms: engine.services.accounts_tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.domain.actors import Actor
from engine.errors import Forbidden
from engine.services.accounts import AccountError, Profile, active_token, profile_from_row
from engine.services.accounts_lookup import USER_BY_TOKEN
from engine.services.accounts_tokens import DEFAULT_TOKEN_DAYS, record_token_use, token_hash, token_terms_refusal
from engine.services.context import EngineContext
from engine.store import audit

MAX_TOKEN_LENGTH = 256


@dataclass(frozen=True)
class TokenAccess:
    """What a bearer token opens: its account, its scope ("read": GET calls only; "act") and whether it expired."""

    profile: Profile
    scope: str
    expires_at: datetime
    expired: bool

    @property
    def may_act(self) -> bool:
        return self.scope == "act"


def token_access(ctx: EngineContext, token: str) -> TokenAccess | None:
    """What a bearer token opens, expired or not (one statement); None if unknown, revoked or its account is
    deactivated. The use of a token that has not expired is recorded, at most once a minute."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    with ctx.driver_read() as reader:
        row = USER_BY_TOKEN.one_or_none(reader, {"token_hash": token_hash(token)})
    if row is None or row.revoked or not row.active:
        return None
    expired = row.expires_at <= ctx.clock.now()
    if not expired:
        record_token_use(ctx, row.token_id, row.last_used_at)
    return TokenAccess(profile_from_row(row), row.scope, row.expires_at, expired)


def renew_api_token(ctx: EngineContext, actor: Actor, username: str, name: str,
                    days: int = DEFAULT_TOKEN_DAYS) -> datetime:
    """The token keeps its value and expires `days` (1 to 365) from now, even if it had already expired; a revoked
    token cannot be renewed. Its holder or an administrator renews it. Returns the new expiry."""
    if actor.user_id != username and not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul le titulaire du jeton ou un administrateur peut le renouveler.")
    refusal = token_terms_refusal(days, "act")
    if refusal:
        raise AccountError(refusal)
    now = ctx.clock.now()
    with ctx.write() as session:
        row = active_token(session, username, name)
        row.expires_at = expires_at = now + timedelta(days=days)
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "auth.token_renewed", None, {
            "username": username, "name": name, "days": days})], now)
        session.commit()
    return expires_at
