"""Short-lived bearer tokens that open one study of one case to a DICOM viewer started from the case page (Weasis,
issue 18 item 4), for VIEWER_MINUTES, read-only.

They are rows of the API token table (no table of their own), told apart from the personal API tokens by what is
stored of them: the SHA-256 of VIEWER_PREFIX + token instead of the token's. So the API (token_access) never
finds them, whatever the call, and only /dicomweb asks `viewer_access`. Their name carries the case and the
study they open ("Weasis <case> <study UID> <tag>"); they are valid VIEWER_MINUTES from their issue whatever their
expiry says (renewing one on the account page gives it nothing), and can be revoked there like any token. The
issue is an event of the case's audit chain, in the same transaction; expired viewer tokens of the person are
deleted when he is issued a new one (the audit keeps the trace), so the account page lists only live ones.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from engine.domain.actors import Actor
from engine.errors import Forbidden
from engine.services.accounts import Profile, load_profile
from engine.services.accounts_tokens import record_token_use, token_hash
from engine.services.cases import ensure_visible
from engine.services.context import EngineContext
from engine.services.persistence import append_case_events, lock_instance
from engine.store import audit
from engine.store.directory_models import ApiToken

VIEWER_MINUTES = 10
VIEWER_ROLES = frozenset({"radiologist", "local_radiologist", "tele_expert"})
VIEWER_PREFIX = "viewer:"
NAME_PREFIX = "Weasis "
MAX_TOKEN_LENGTH = 256
_LIFE = timedelta(minutes=VIEWER_MINUTES)


@dataclass(frozen=True)
class ViewerAccess:
    """What a viewer token opens: its holder's account, one study of one case, and whether it expired."""

    profile: Profile
    case_id: int
    study_uid: str
    expires_at: datetime
    expired: bool


@dataclass(frozen=True)
class ViewerToken:
    token: str
    expires_at: datetime


def may_launch_viewer(actor: Actor) -> bool:
    """Whether the actor's role may open a study in a DICOM viewer (radiologists and tele-experts)."""
    return bool(actor.roles & VIEWER_ROLES)


def _stored_hash(token: str) -> str:
    return token_hash(VIEWER_PREFIX + token)


def _parse_name(name: str) -> tuple[int, str] | None:
    parts = name.split(" ")
    if len(parts) != 4 or parts[0] + " " != NAME_PREFIX or not parts[1].isdigit() or not parts[2]:
        return None
    return int(parts[1]), parts[2]


def issue_viewer_token(ctx: EngineContext, actor: Actor, case_id: int, study_uid: str) -> ViewerToken:
    """A token opening `study_uid` (the caller checked it is a study of the case the actor may see) read-only for
    VIEWER_MINUTES; the launch is recorded on the case's chain in the same transaction. Raises NotFound when the
    actor may not see the case, Forbidden when his role may not open a viewer."""
    if not may_launch_viewer(actor):
        raise Forbidden("Seuls les radiologues et les télé-experts peuvent ouvrir les images dans une console.")
    ensure_visible(ctx, actor, case_id)
    if not study_uid or len(study_uid) > 64:
        raise ValueError("study UID of 1 to 64 characters expected")
    token = secrets.token_urlsafe(32)
    now = ctx.clock.now()
    expires_at = now + _LIFE
    name = f"{NAME_PREFIX}{case_id} {study_uid} {secrets.token_hex(2)}"
    with ctx.write() as session:
        stale = session.execute(select(ApiToken.id, ApiToken.name, ApiToken.created_at, ApiToken.expires_at).where(
            ApiToken.username == actor.user_id, ApiToken.name.startswith(NAME_PREFIX),
            ApiToken.created_at <= now - _LIFE)).all()
        done = [row.id for row in stale if _parse_name(row.name) and row.expires_at - row.created_at <= _LIFE]
        if done:
            session.execute(delete(ApiToken).where(ApiToken.id.in_(done)))
        session.add(ApiToken(username=actor.user_id, name=name, token_hash=_stored_hash(token), created_at=now,
                             revoked=False, expires_at=expires_at, scope="read"))
        append_case_events(session, lock_instance(session, case_id), [audit.AuditEntry(
            actor.user_id, "viewer.launched",
            case_id, {"by": actor.user_id, "viewer": "weasis", "study": study_uid,
                      "expires_at": expires_at.isoformat(), "minutes": VIEWER_MINUTES})], now)
        session.commit()
    return ViewerToken(token, expires_at)


def viewer_access(ctx: EngineContext, token: str) -> ViewerAccess | None:
    """What a viewer token opens, expired or not; None if it is not a viewer token, is revoked, or its account is
    deactivated. Its use is recorded like an API token's (at most once a minute)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    with ctx.read() as session:
        row = session.execute(select(ApiToken.id, ApiToken.username, ApiToken.name, ApiToken.created_at,
                                     ApiToken.expires_at, ApiToken.revoked, ApiToken.last_used_at)
                              .where(ApiToken.token_hash == _stored_hash(token))).one_or_none()
    if row is None or row.revoked:
        return None
    opened = _parse_name(row.name)
    profile = load_profile(ctx, row.username)
    if opened is None or profile is None or not profile.active:
        return None
    now = ctx.clock.now()
    ends = min(row.expires_at, row.created_at + _LIFE)
    expired = ends <= now
    if not expired:
        record_token_use(ctx, row.id, row.last_used_at)
    return ViewerAccess(profile, opened[0], opened[1], ends, expired)
