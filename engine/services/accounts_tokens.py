"""API bearer tokens as stored: random secrets of which only the SHA-256 is kept, named per account, revoked
rather than deleted, with the time of their last use (refreshed at most once a minute), an expiry (renewable)
and a scope: "read" tokens may only read (GET calls), "act" tokens may also act (claim, complete, start a case,
write a message)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from engine.services.context import EngineContext
from engine.store.directory_models import ApiToken

TOKEN_USE_RESOLUTION = timedelta(minutes=1)  # last_used_at is refreshed at most once a minute
TOKEN_SCOPES = ("read", "act")
DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS = 90, 365


@dataclass(frozen=True)
class TokenInfo:
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool
    expires_at: datetime | None = None
    scope: str = "act"

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def list_api_tokens(ctx: EngineContext, username: str) -> list[TokenInfo]:
    with ctx.read() as session:
        rows = session.execute(select(ApiToken).where(ApiToken.username == username).order_by(ApiToken.id)).scalars()
        return [TokenInfo(r.name, r.created_at, r.last_used_at, r.revoked, r.expires_at, r.scope) for r in rows]


def token_terms_refusal(days: int, scope: str) -> str | None:
    """Why a token cannot be issued (or renewed) for `days` with `scope`, in French; None when it can."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_TOKEN_DAYS:
        return f"La durée de validité d'un jeton va de 1 à {MAX_TOKEN_DAYS} jours."
    if scope not in TOKEN_SCOPES:
        return "Portée de jeton inconnue : « read » (lecture seule) ou « act » (lecture et actions)."
    return None


def token_hash(token: str) -> str:
    """What is stored of a bearer token, and what it is looked up by."""
    return hashlib.sha256(token.encode()).hexdigest()


def record_token_use(ctx: EngineContext, token_id: int, last_used_at: datetime | None) -> None:
    """Stamp the token's last use, at most once per TOKEN_USE_RESOLUTION: not one write per API call."""
    now = ctx.clock.now()
    if last_used_at is None or now - last_used_at >= TOKEN_USE_RESOLUTION:
        with ctx.write() as session:
            session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
            session.commit()
