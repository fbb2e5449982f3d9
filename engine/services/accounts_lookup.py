"""Loading the signed-in account: every page (by the SHA-256 of the secret its session cookie carries) and every API
call (by the SHA-256 of its bearer token) runs one of these statements, which loads the session or the token with
the account: one statement per request.

They run on the driver's cursor (engine.store.driver), not through a Session, and gather the account's roles and
sites into a JSON array each by correlated subqueries (their primary keys start with the username).
"""

from __future__ import annotations

import orjson
from sqlalchemy import bindparam, select

from engine.store.directory_models import ApiToken, User, UserRole, UserSession, UserSite
from engine.store.driver import DriverQuery
from engine.store.json_agg import json_array_agg

_PROFILE_COLUMNS = (
    User.username, User.display_name, User.active, User.language, User.totp_enrolled_at, User.session_epoch,
    select(json_array_agg(UserRole.role)).where(UserRole.username == User.username).scalar_subquery().label("roles"),
    select(json_array_agg(UserSite.site_id)).where(UserSite.username == User.username).scalar_subquery()
    .label("sites"),
)
USER_BY_NAME = DriverQuery(select(*_PROFILE_COLUMNS).where(User.username == bindparam("username")))
USER_BY_TOKEN = DriverQuery(
    select(ApiToken.id.label("token_id"), ApiToken.revoked, ApiToken.last_used_at, ApiToken.expires_at,
           ApiToken.scope, *_PROFILE_COLUMNS)
    .join(User, User.username == ApiToken.username).where(ApiToken.token_hash == bindparam("token_hash")))

USER_BY_SESSION = DriverQuery(
    select(UserSession.id.label("session_id"), UserSession.epoch.label("opened_in_epoch"),
           UserSession.created_at.label("opened_at"), UserSession.last_seen_at.label("seen_at"),
           UserSession.ended_at, *_PROFILE_COLUMNS)
    .join(User, User.username == UserSession.username).where(UserSession.secret_hash == bindparam("secret_hash")))


def grants(array: str | None) -> frozenset[str]:
    """The roles or sites of a loaded row (a JSON array)."""
    return frozenset(orjson.loads(array)) if array else frozenset()  # PostgreSQL: NULL for none

