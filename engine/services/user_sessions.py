"""Sessions kept one by one on the server (issue 16; CH-5.3, CH-8.1): a signed-in browser is a user_session row,
its cookie carries a random secret of which only the SHA-256 is stored.

A session is live while it is not ended, was opened in the account's current session epoch (a new password, a
second-factor reset, a change of roles or sites, a deactivation move the epoch and so end every session at
once: engine.store.directory_models.User.end_sessions), is younger than the absolute lifetime and was seen
within the idle timeout. Logging out ends that session only; the person sees and ends their own sessions, an
administrator those of anyone (audited). The row is loaded with the account by one statement per page
(accounts_lookup.USER_BY_SESSION); its last activity is written at most once a minute.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, select, update
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.errors import Forbidden, NotFound
from engine.services.accounts import Profile, profile_from_row
from engine.services.accounts_lookup import USER_BY_SESSION
from engine.services.context import EngineContext
from engine.store import audit
from engine.store.directory_models import User, UserSession

SEEN_RESOLUTION = timedelta(minutes=1)  # last_seen_at is refreshed at most once a minute
MAX_SECRET_LENGTH = 128
ADDRESS_LENGTH, AGENT_LENGTH = 64, 200  # the columns' widths: longer values are cut
# Rows older than this are deleted when their account next logs in: all long dead (the lifetime is at most 168 h),
# their logins and ends are in the audit chain.
KEPT_FOR = timedelta(days=30)


@dataclass(frozen=True)
class SessionLimits:
    """How long a session may last whatever the activity, and without activity (web.auth.access reads them
    from the settings)."""

    max_age: timedelta = timedelta(hours=12)
    idle: timedelta = timedelta(minutes=30)


@dataclass(frozen=True)
class LoadedSession:
    """A session found by its secret, with its account. ``refusal`` is None for a live session, else why it is
    not: "ended" (logout, ended from a sessions page, account changed or deactivated), "lifetime", "idle"."""

    profile: Profile
    session_id: int
    refusal: str | None


@dataclass(frozen=True)
class SessionInfo:
    id: int
    created_at: datetime
    last_seen_at: datetime
    client_address: str | None
    user_agent: str | None


def secret_hash(secret: str) -> str:
    """What is stored of a session's secret, and what it is looked up by."""
    return hashlib.sha256(secret.encode()).hexdigest()


def open_session(ctx: EngineContext, username: str, *, client_address: str | None,
                 user_agent: str | None) -> tuple[int, str]:
    """A new session for an account that has just completed its login: its id, and the secret for the cookie.
    The account's sessions older than KEPT_FOR are deleted."""
    secret = secrets.token_urlsafe(32)
    now = ctx.clock.now()
    with ctx.write() as session:
        epoch = session.execute(select(User.session_epoch).where(User.username == username)).scalar_one()
        session.execute(delete(UserSession).where(UserSession.username == username,
                                                  UserSession.created_at < now - KEPT_FOR))
        row = UserSession(secret_hash=secret_hash(secret), username=username, epoch=int(epoch or 0),
                          created_at=now, last_seen_at=now, client_address=_cut(client_address, ADDRESS_LENGTH),
                          user_agent=_cut(user_agent, AGENT_LENGTH))
        session.add(row)
        session.flush()
        session_id = row.id
        session.commit()
    return session_id, secret


def load_session(ctx: EngineContext, secret: str, limits: SessionLimits, *, touch: bool = True
                 ) -> LoadedSession | None:
    """The session a cookie's secret opens, with its account (one statement); None for an unknown secret. A live
    session's last activity is written when it is more than SEEN_RESOLUTION old, unless `touch` is False (a
    request the page makes on its own, e.g. the live inbox: it is not the person's activity)."""
    if not secret or len(secret) > MAX_SECRET_LENGTH:
        return None
    with ctx.driver_read() as reader:
        row = USER_BY_SESSION.one_or_none(reader, {"secret_hash": secret_hash(secret)})
    if row is None:
        return None
    now = ctx.clock.now()
    refusal = _refusal(row, now, limits)
    if touch and refusal is None and now - row.seen_at >= SEEN_RESOLUTION:
        with ctx.write() as session:
            session.execute(update(UserSession).where(UserSession.id == row.session_id,
                                                      UserSession.ended_at.is_(None)).values(last_seen_at=now))
            session.commit()
    return LoadedSession(profile_from_row(row), row.session_id, refusal)


def close_session(ctx: EngineContext, username: str, session_id: int, reason: str) -> None:
    """The person logged out, or their session ran out ("idle", "lifetime"): that session ends, the others live."""
    now = ctx.clock.now()
    with ctx.write() as session:
        ended = session.execute(update(UserSession).where(UserSession.id == session_id,
                                                          UserSession.username == username,
                                                          UserSession.ended_at.is_(None))
                                .values(ended_at=now, end_reason=reason))
        if ended.rowcount:  # type: ignore[attr-defined]  # once: not again for each use of a copied cookie
            _audit(session, now, username, "auth.logout", reason=reason, session_id=session_id)
        session.commit()


def list_sessions(ctx: EngineContext, actor: Actor, username: str, limits: SessionLimits) -> list[SessionInfo]:
    """The live sessions of an account, the most recently active first: its holder's or, for an administrator,
    anyone's."""
    _require_holder_or_admin(actor, username)
    with ctx.read() as session:
        rows = session.execute(select(UserSession).join(User, User.username == UserSession.username)
                               .where(UserSession.username == username, _live(ctx.clock.now(), limits))
                               .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())).scalars()
        return [SessionInfo(r.id, r.created_at, r.last_seen_at, r.client_address, r.user_agent) for r in rows]


def end_session(ctx: EngineContext, actor: Actor, username: str, session_id: int, limits: SessionLimits) -> None:
    """End one live session of `username`. Refused (Forbidden) unless the actor is that person or an
    administrator; NotFound when the session is not one of theirs or has already ended."""
    _require_holder_or_admin(actor, username)
    now = ctx.clock.now()
    with ctx.write() as session:
        row = session.execute(select(UserSession).join(User, User.username == UserSession.username)
                              .where(UserSession.id == session_id, UserSession.username == username,
                                     _live(now, limits)).with_for_update(of=UserSession)).scalar_one_or_none()
        if row is None:
            raise NotFound("Cette session n'existe pas ou est déjà terminée.")
        row.ended_at, row.end_reason = now, _reason(actor, username)
        _audit(session, now, actor.user_id, "auth.session_ended", username=username, session_id=session_id)
        session.commit()


def end_other_sessions(ctx: EngineContext, actor: Actor, username: str, keep: int | None,
                       limits: SessionLimits) -> int:
    """End every live session of `username` but `keep` (the one in use, when the person ends their others);
    returns how many ended."""
    _require_holder_or_admin(actor, username)
    now = ctx.clock.now()
    with ctx.write() as session:
        ids = list(session.execute(select(UserSession.id).join(User, User.username == UserSession.username)
                                   .where(UserSession.username == username, _live(now, limits),
                                          UserSession.id != (keep if keep is not None else -1))
                                   .with_for_update(of=UserSession)).scalars())
        if ids:
            session.execute(update(UserSession).where(UserSession.id.in_(ids))
                            .values(ended_at=now, end_reason=_reason(actor, username)))
            _audit(session, now, actor.user_id, "auth.sessions_ended", username=username, sessions=ids)
        session.commit()
    return len(ids)


def _refusal(row: Any, now: datetime, limits: SessionLimits) -> str | None:
    if (row.ended_at is not None or row.opened_in_epoch != int(row.session_epoch or 0) or not row.active
            or row.totp_enrolled_at is None):
        return "ended"
    if now - row.opened_at >= limits.max_age:
        return "lifetime"
    if now - row.seen_at > limits.idle + SEEN_RESOLUTION:
        return "idle"
    return None


def _live(now: datetime, limits: SessionLimits) -> ColumnElement[bool]:
    """The SQL of a live session (the same test as _refusal), on user_session joined with its account."""
    return and_(UserSession.ended_at.is_(None), UserSession.epoch == User.session_epoch, User.active.is_(True),
                UserSession.created_at > now - limits.max_age,
                UserSession.last_seen_at >= now - limits.idle - SEEN_RESOLUTION)


def _require_holder_or_admin(actor: Actor, username: str) -> None:
    if actor.user_id != username and not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur peut voir ou terminer les sessions d'une autre personne.")


def _reason(actor: Actor, username: str) -> str:
    return "ended_by_user" if actor.user_id == username else "ended_by_admin"


def _cut(value: str | None, length: int) -> str | None:
    return value[:length] if value else None


def _audit(session: Session, now: datetime, actor: str, action: str, **detail: Any) -> None:
    audit.append_global(session, [audit.AuditEntry(actor, action, None, detail)], now)
