"""User accounts: who someone is, what they may do, where; and how they prove it (CH-5.3, CH-8.1).

Passwords are hashed with Argon2id; the second factor is a TOTP code (RFC 6238, 30 s steps, one step of
tolerance either side) that can be used once only. Five consecutive failures (wrong password, wrong or
replayed code) lock the account for fifteen minutes; only a complete login (password then code) resets
the count, so knowing the password does not buy unlimited guesses at the code. Every attempt, successful
or not, is written to the global audit chain. API tokens are random bearer secrets of which only the
SHA-256 is stored; they expire and may only read or also act. The parts: account_rules (what an account may
hold), accounts_totp (codes), accounts_lockout (the failure count), accounts_lookup (the per-request account
statements), accounts_tokens (token storage and terms), user_sessions (the signed-in browsers).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.errors import Forbidden, TeleradError
from engine.services.account_rules import (
    RADIOLOGIST_FIELDS,
    USERNAME_PATTERN,
    new_account_refusal,
    unknown_sites_refusal,
    unknown_territory_refusal,
)
from engine.services.accounts_lockout import (
    lift_expired_lock,
    lock_message,
    record_attempt_while_locked,
    record_failure,
)
from engine.services.accounts_lookup import USER_BY_NAME, USER_BY_TOKEN, grants
from engine.services.accounts_tokens import DEFAULT_TOKEN_DAYS, record_token_use, token_hash, token_terms_refusal
from engine.services.accounts_totp import matching_step, provisioning_uri, sealed_totp_secret, unsealed
from engine.services.context import EngineContext
from engine.store import audit
from engine.store.directory_models import ApiToken, User, UserRole, UserSite

MAX_FAILURES = 5  # consecutive failures that lock an account (accounts_lockout)
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
_HASHER = PasswordHasher()


@dataclass(frozen=True)
class Profile:
    username: str
    display_name: str
    roles: frozenset[str]
    sites: frozenset[str]
    active: bool
    language: str
    totp_enrolled: bool
    session_epoch: int = 0

    @property
    def actor(self) -> Actor:
        return Actor(self.username, self.roles, self.sites)


class AccountError(TeleradError, ValueError):
    """A refused account operation; the message is in French and says what to do next."""


class AuthenticationFailed(AccountError):
    """A refused login step. ``reason`` lets the web layer choose (and translate) its message:
    ``invalid_password`` (also for unknown or inactive accounts), ``invalid_code``, ``replayed_code``,
    ``locked`` (then ``locked_until`` is set), ``not_enrolled``, ``already_enrolled``."""

    def __init__(self, message: str, reason: str, locked_until: datetime | None = None):
        super().__init__(message)
        self.reason = reason
        self.locked_until = locked_until


WRONG_CREDENTIALS = "Identifiant ou mot de passe incorrect."
INVALID_CODE = "Code incorrect ou expiré : saisissez le code à 6 chiffres affiché maintenant par votre application."
REPLAYED_CODE = "Ce code a déjà servi : attendez le code suivant de votre application (30 secondes au plus)."


def profile_from_row(user: Any) -> Profile:
    """The profile of an account row (a User, or a row of an accounts_lookup statement)."""
    return Profile(user.username, user.display_name, grants(user.roles), grants(user.sites), user.active,
                   user.language, user.totp_enrolled_at is not None, int(user.session_epoch or 0))


def load_profile(ctx: EngineContext, username: str) -> Profile | None:
    with ctx.driver_read() as reader:
        user = USER_BY_NAME.one_or_none(reader, {"username": username})
    return None if user is None else profile_from_row(user)


# --- administration -----------------------------------------------------------------------------------------

@enforces("CH-5.3", "CH-8.1")
def create_user(ctx: EngineContext, actor: Actor, username: str, display_name: str, password: str,
                roles: list[str] | tuple[str, ...] | frozenset[str], sites: list[str] | tuple[str, ...] = (),
                **radiologist_fields: Any) -> Profile:
    """A named account with its roles and sites, a hashed password and a fresh (not yet enrolled) TOTP secret."""
    _require_admin(actor)
    unexpected = set(radiologist_fields) - RADIOLOGIST_FIELDS
    if unexpected:
        raise TypeError(f"unexpected user fields: {', '.join(sorted(unexpected))}")
    username, display_name, role_set = username.strip(), display_name.strip(), frozenset(roles)
    _refuse(new_account_refusal(username, display_name, role_set, radiologist_fields.get("rpps")))
    password_hash = _HASHER.hash(check_password_policy(password, username))
    now = ctx.clock.now()
    with ctx.write() as session:
        if session.get(User, username) is not None:
            raise AccountError(f"L'identifiant « {username} » existe déjà.")
        _refuse(unknown_sites_refusal(session, sites)
                or unknown_territory_refusal(session, radiologist_fields.get("territory_id")))
        session.add(User(username=username, display_name=display_name, password_hash=password_hash,
                         totp_secret=sealed_totp_secret(ctx.keys), totp_last_step=0, failed_logins=0, active=True,
                         language="fr", created_at=now, **radiologist_fields))
        session.flush()
        session.add_all([UserRole(username=username, role=role) for role in sorted(role_set)])
        session.add_all([UserSite(username=username, site_id=site) for site in sorted(set(sites))])
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "user.created", None, {
            "username": username, "roles": sorted(role_set), "sites": sorted(set(sites))})], now)
        try:
            session.commit()
        except IntegrityError as err:
            raise AccountError(f"L'identifiant « {username} » existe déjà.") from err
    profile = load_profile(ctx, username)
    assert profile is not None
    return profile


def check_password_policy(password: str, username: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"Le mot de passe doit compter au moins {MIN_PASSWORD_LENGTH} caractères "
                           "(une phrase de passe est plus facile à retenir).")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"Le mot de passe ne doit pas dépasser {MAX_PASSWORD_LENGTH} caractères.")
    if username.lower() in password.lower():
        raise AccountError("Le mot de passe ne doit pas contenir l'identifiant.")
    return password


@enforces("CH-5.3")
def set_password(ctx: EngineContext, actor: Actor, username: str, password: str) -> None:
    """An administrator (or the person) sets a new password; the lock-out state is left as it is."""
    if actor.user_id != username:
        _require_admin(actor)
    password_hash = _HASHER.hash(check_password_policy(password, username))
    with ctx.write() as session:
        user = _lock_user(session, username)
        user.password_hash = password_hash
        user.end_sessions()
        _audit(session, ctx, actor.user_id, "user.password_set", username=username)
        session.commit()


def unlock_user(ctx: EngineContext, actor: Actor, username: str) -> None:
    _require_admin(actor)
    with ctx.write() as session:
        user = _lock_user(session, username)
        user.failed_logins, user.locked_until = 0, None
        _audit(session, ctx, actor.user_id, "auth.unlocked", username=username)
        session.commit()


def reset_totp(ctx: EngineContext, actor: Actor, username: str) -> None:
    """A new TOTP secret (lost phone): the person enrols again at their next login."""
    _require_admin(actor)
    with ctx.write() as session:
        user = _lock_user(session, username)
        user.totp_secret, user.totp_enrolled_at, user.totp_last_step = sealed_totp_secret(ctx.keys), None, 0
        user.end_sessions()
        _audit(session, ctx, actor.user_id, "auth.totp_reset", username=username)
        session.commit()


# --- login ------------------------------------------------------------------------------------------------------

@enforces("CH-5.3", "CH-8.1")
def authenticate_password(ctx: EngineContext, username: str, password: str) -> Profile:
    """First factor. Unknown, inactive and wrong-password attempts get the same message and the same work."""
    with ctx.read() as session:
        user = session.get(User, username) if USERNAME_PATTERN.fullmatch(username) else None
        stored = user.password_hash if user is not None and user.active else None
    if stored is None:
        _password_matches(_dummy_hash(), password)
        _audit_unknown(ctx, username, "password")
        raise AuthenticationFailed(WRONG_CREDENTIALS, "invalid_password")
    matches = _password_matches(stored, password)  # slow on purpose: done outside the write transaction
    new_hash = _HASHER.hash(password) if matches and _HASHER.check_needs_rehash(stored) else None
    with ctx.write() as session:
        user = _lock_user(session, username)
        now = lift_expired_lock(user, ctx.clock.now())
        if user.locked_until is not None:
            error = _refuse_locked(session, user, now, "password")
        elif not matches or user.password_hash != stored or not user.active:
            error = _count_failure(session, user, now, "password", "wrong_password",
                                   AuthenticationFailed(WRONG_CREDENTIALS, "invalid_password"))
        else:
            if new_hash is not None:
                user.password_hash = new_hash
            audit.append_global(session, [audit.AuditEntry(username, "auth.login", None, {"factor": "password"})],
                                now)
            error = None
        session.commit()
    if error is not None:
        raise error
    profile = load_profile(ctx, username)
    assert profile is not None
    return profile


@enforces("CH-5.3", "CH-8.1")
def verify_totp(ctx: EngineContext, username: str, code: str) -> Profile:
    """Second factor of an enrolled account: completes the login and resets the failure count."""
    return _check_code(ctx, username, code, enrolling=False)


@enforces("CH-5.3")
def confirm_enrolment(ctx: EngineContext, username: str, code: str) -> Profile:
    """The first code from the person's authenticator app proves the secret was stored; completes the login."""
    return _check_code(ctx, username, code, enrolling=True)


def totp_provisioning(ctx: EngineContext, username: str) -> tuple[str, str]:
    """(secret, otpauth:// URI) of an account that has not enrolled its second factor yet."""
    with ctx.read() as session:
        user = session.get(User, username)
        if user is None:
            raise AccountError("Compte inconnu.")
        if user.totp_enrolled_at is not None:
            raise AuthenticationFailed("Le second facteur de ce compte est déjà configuré.", "already_enrolled")
        secret = unsealed(ctx.keys, user.totp_secret)
    return secret, provisioning_uri(secret, username)


def _check_code(ctx: EngineContext, username: str, code: str, *, enrolling: bool) -> Profile:
    with ctx.write() as session:
        user = session.execute(select(User).where(User.username == username).with_for_update()).scalar_one_or_none()
        if user is None or not user.active:
            _audit(session, ctx, "anonymous", "auth.failed", factor="totp", reason="unknown_user")
            session.commit()
            raise AuthenticationFailed(INVALID_CODE, "invalid_code")
        if (user.totp_enrolled_at is not None) == enrolling:
            raise (AuthenticationFailed("Le second facteur de ce compte est déjà configuré.", "already_enrolled")
                   if enrolling else
                   AuthenticationFailed("Configurez d'abord votre second facteur.", "not_enrolled"))
        now = lift_expired_lock(user, ctx.clock.now())
        step = matching_step(ctx.keys, user.totp_secret, code, now)
        error: AuthenticationFailed | None = None
        if user.locked_until is not None:
            error = _refuse_locked(session, user, now, "totp")
        elif step is None:
            error = _count_failure(session, user, now, "totp", "wrong_code",
                                   AuthenticationFailed(INVALID_CODE, "invalid_code"))
        elif step <= user.totp_last_step:
            error = _count_failure(session, user, now, "totp", "replayed_code",
                                   AuthenticationFailed(REPLAYED_CODE, "replayed_code"))
        else:
            user.totp_last_step, user.failed_logins = step, 0
            entries = [audit.AuditEntry(username, "auth.login", None, {"factor": "totp"})]
            if enrolling:
                user.totp_enrolled_at = now
                entries.insert(0, audit.AuditEntry(username, "auth.totp_enrolled", None, {}))
            audit.append_global(session, entries, now)
        session.commit()
    if error is not None:
        raise error
    profile = load_profile(ctx, username)
    assert profile is not None
    return profile


def _refuse_locked(session: Session, user: User, now: datetime, factor: str) -> AuthenticationFailed:
    """Attempts during a lock are recorded but do not extend it."""
    assert user.locked_until is not None
    record_attempt_while_locked(session, user, now, factor)
    return _locked_error(user.locked_until)


def _count_failure(session: Session, user: User, now: datetime, factor: str, reason: str,
                   error: AuthenticationFailed) -> AuthenticationFailed:
    locked_until = record_failure(session, user, now, factor, reason, lock_after=MAX_FAILURES)
    return error if locked_until is None else _locked_error(locked_until)


def _locked_error(until: datetime) -> AuthenticationFailed:
    return AuthenticationFailed(lock_message(until, MAX_FAILURES), "locked", until)


def _password_matches(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


def _audit_unknown(ctx: EngineContext, username: str, factor: str) -> None:
    shown = username if USERNAME_PATTERN.fullmatch(username) else None  # never store free text (a password?)
    with ctx.write() as session:
        _audit(session, ctx, "anonymous", "auth.failed", factor=factor, reason="unknown_user", username=shown)
        session.commit()


# --- API tokens -------------------------------------------------------------------------------------------------

@enforces("CH-5.3")
def issue_api_token(ctx: EngineContext, username: str, name: str, *, actor: Actor | None = None,
                    days: int = DEFAULT_TOKEN_DAYS, scope: str = "act") -> str:
    """A new bearer token, shown once; only its SHA-256 is stored. Token names are unique among active ones. It
    expires `days` (1 to 365) from now and may only read (scope "read") or also act ("act")."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise AccountError("Donnez au jeton un nom de 1 à 100 caractères (par exemple le nom du système appelant).")
    _refuse(token_terms_refusal(days, scope))
    token = secrets.token_urlsafe(32)
    with ctx.write() as session:
        user = _lock_user(session, username)
        if not user.active:
            raise AccountError(f"Le compte « {username} » est désactivé.")
        if session.execute(select(ApiToken.id).where(ApiToken.username == username, ApiToken.name == name,
                                                     ApiToken.revoked.is_(False))).first():
            raise AccountError(f"Un jeton actif nommé « {name} » existe déjà pour ce compte : révoquez-le d'abord.")
        now = ctx.clock.now()
        session.add(ApiToken(username=username, name=name, token_hash=token_hash(token), created_at=now,
                             revoked=False, expires_at=now + timedelta(days=days), scope=scope))
        _audit(session, ctx, (actor or Actor(username)).user_id, "auth.token_issued", username=username, name=name,
               scope=scope, days=days)
        session.commit()
    return token


def revoke_api_token(ctx: EngineContext, username: str, name: str, *, actor: Actor | None = None) -> None:
    with ctx.write() as session:
        row = active_token(session, username, name)
        row.revoked = True
        _audit(session, ctx, (actor or Actor(username)).user_id, "auth.token_revoked", username=username, name=name)
        session.commit()


def profile_for_token(ctx: EngineContext, token: str) -> Profile | None:
    """The active account a bearer token belongs to, or None (unknown, revoked, expired, account deactivated).
    The API uses engine.services.token_access, which also tells an expired token and the token's scope."""
    if not token or len(token) > 256:
        return None
    with ctx.driver_read() as reader:
        row = USER_BY_TOKEN.one_or_none(reader, {"token_hash": token_hash(token)})
        if row is None or row.revoked or not row.active or row.expires_at <= ctx.clock.now():
            return None
        profile = profile_from_row(row)
    record_token_use(ctx, row.token_id, row.last_used_at)
    return profile


# --- helpers ----------------------------------------------------------------------------------------------------

def _require_admin(actor: Actor) -> None:
    if not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur peut gérer les comptes.")


def active_token(session: Session, username: str, name: str) -> ApiToken:
    """The token of this name that is not revoked (expired or not), locked for the transaction."""
    row = session.execute(select(ApiToken).where(ApiToken.username == username, ApiToken.name == name,
                                                 ApiToken.revoked.is_(False)).with_for_update()).scalar()
    if row is None:
        raise AccountError(f"Aucun jeton actif nommé « {name} » pour le compte « {username} ».")
    return row


def _lock_user(session: Session, username: str) -> User:
    user = session.execute(select(User).where(User.username == username).with_for_update()).scalar_one_or_none()
    if user is None:
        raise AccountError(f"Compte inconnu : « {username} ».")
    return user


def _refuse(refusal: str | None) -> None:
    if refusal:
        raise AccountError(refusal)


def _audit(session: Session, ctx: EngineContext, actor: str, action: str, **detail: Any) -> None:
    audit.append_global(session, [audit.AuditEntry(actor, action, None, detail)], ctx.clock.now())
