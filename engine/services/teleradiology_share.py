"""Each radiologist's teleradiology share (CH-3.5): his teleradiology acts counted from the cases (the report and
opinion tasks he completed, signed, over the rolling window), his total activity declared per period by himself or
by an administrator (audited), shown to administrators (all) and to the radiologist (his own only). A radiologist
with no local activity declared is flagged as exclusive (refused by routing under the 2025 pack)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from engine.domain import charter_packs as packs
from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.data_checks import paris_date
from engine.domain.indicators import teleradiology_share
from engine.errors import Forbidden
from engine.services.charter_screen import share_facts
from engine.services.context import EngineContext
from engine.store import audit
from engine.store.charter_pack_models import ActivityDeclaration
from engine.store.directory_models import User, UserRole

DECLARED_EVENT = "activity.declared"
MAX_ACTS = 1_000_000
MAX_PERIOD_DAYS = 366


class ShareError(ValueError):
    """Refused with a French message."""


@dataclass(frozen=True)
class ShareView:
    username: str
    name: str
    teleradiology_acts: int
    declared_acts: int | None
    share: float | None
    exclusive: bool
    over_cap: bool  # over the default 2025 cap (the organisation may set another)


@dataclass(frozen=True)
class DeclarationView:
    id: int
    username: str
    period_start: date
    period_end: date
    total_acts: int
    comment: str | None
    declared_by: str


def _is_admin(actor: Actor) -> bool:
    return actor.is_system or "administrator" in actor.roles


@enforces("CH-3.5")
def check_share_access(actor: Actor, username: str) -> None:
    """Administrators see every radiologist's share; a radiologist only his own."""
    if not (_is_admin(actor) or actor.user_id == username):
        raise Forbidden("Vous ne pouvez consulter ou déclarer que votre propre activité.")


def declare_activity(ctx: EngineContext, actor: Actor, username: str, period_start: date, period_end: date,
                     total_acts: int, comment: str | None = None) -> int:
    """Record a radiologist's total activity over a period (all his acts, teleradiology included); by himself or
    by an administrator; audited, one transaction."""
    check_share_access(actor, username)
    if period_end < period_start:
        raise ShareError("La fin de la période doit suivre son début.")
    if (period_end - period_start).days >= MAX_PERIOD_DAYS:
        raise ShareError("Une déclaration couvre au plus un an : déclarez chaque période séparément.")
    if period_start > paris_date(ctx.clock.now()):
        raise ShareError("La période déclarée ne peut pas commencer dans le futur.")
    if not 0 <= total_acts <= MAX_ACTS:
        raise ShareError("Le nombre d'actes est un entier positif ou nul.")
    now = ctx.clock.now()
    with ctx.write() as session:
        is_radiologist = session.execute(select(UserRole).where(
            UserRole.username == username, UserRole.role == "radiologist")).first()
        if session.get(User, username) is None or not is_radiologist:
            raise ShareError(f"« {username} » n'est pas un radiologue.")
        # Declarations add up over the window: an overlapping one would count the same acts twice (and let a
        # radiologist lift himself out of the cap by declaring again).
        overlapping = session.execute(select(ActivityDeclaration.period_start, ActivityDeclaration.period_end).where(
            ActivityDeclaration.username == username, ActivityDeclaration.period_start <= period_end,
            ActivityDeclaration.period_end >= period_start).limit(1)).first()
        if overlapping is not None:
            raise ShareError("Une activité est déjà déclarée du {} au {} : une période ne se déclare qu'une fois."
                             .format(overlapping[0].strftime("%d/%m/%Y"), overlapping[1].strftime("%d/%m/%Y")))
        row = ActivityDeclaration(username=username, period_start=period_start, period_end=period_end,
                                  total_acts=total_acts, comment=(comment or "").strip()[:2000] or None,
                                  declared_by=actor.user_id, declared_at=now)
        session.add(row)
        session.flush()
        audit.append_global(session, [audit.AuditEntry(actor.user_id, DECLARED_EVENT, None, {
            "declaration": row.id, "radiologist": username, "from": period_start.isoformat(),
            "to": period_end.isoformat(), "total_acts": total_acts})], now)
        session.commit()
        return row.id


def shares(ctx: EngineContext, actor: Actor, username: str | None = None) -> list[ShareView]:
    """The shares over the rolling 12 months: every active radiologist's for an administrator, else the actor's."""
    if username is not None or not _is_admin(actor):
        username = username or actor.user_id
        check_share_access(actor, username)
    today = paris_date(ctx.clock.now())
    with ctx.read() as session:
        query = (select(User.username, User.display_name).join(UserRole, UserRole.username == User.username)
                 .where(UserRole.role == "radiologist", User.active.is_(True)).order_by(User.display_name))
        if username is not None:
            query = query.where(User.username == username)
        people = session.execute(query).all()
        facts = share_facts(session, [u for u, _ in people], today)
    cap = packs.DEFAULT_SHARE_CAP_PERCENT / 100
    views = []
    for user, name in people:
        found = facts[user]
        total = max(found.declared_acts or 0, found.teleradiology_acts)
        share = teleradiology_share(found.teleradiology_acts, total)
        views.append(ShareView(user, name, found.teleradiology_acts, found.declared_acts, share, found.exclusive,
                               share is not None and share > cap))
    return views


def declarations(ctx: EngineContext, actor: Actor, username: str) -> list[DeclarationView]:
    check_share_access(actor, username)
    with ctx.read() as session:
        rows = session.execute(select(ActivityDeclaration).where(ActivityDeclaration.username == username)
                               .order_by(ActivityDeclaration.period_start.desc())).scalars().all()
    return [DeclarationView(r.id, r.username, r.period_start, r.period_end, r.total_acts, r.comment, r.declared_by)
            for r in rows]
