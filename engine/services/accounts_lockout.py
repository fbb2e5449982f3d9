"""Lock-out after consecutive login failures (CH-5.3). Each failure (wrong password, wrong or replayed code) is
counted on the account and written to the global audit chain; the failure that reaches the caller's threshold
locks the account for fifteen minutes. Attempts during a lock are recorded but do not extend it; an expired
lock is lifted, and the count reset, at the next attempt."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from engine.store import audit
from engine.store.directory_models import User

LOCK_DURATION = timedelta(minutes=15)
PARIS = ZoneInfo("Europe/Paris")


def lift_expired_lock(user: User, now: datetime) -> datetime:
    if user.locked_until is not None and user.locked_until <= now:
        user.locked_until, user.failed_logins = None, 0
    return now


def record_attempt_while_locked(session: Session, user: User, now: datetime, factor: str) -> None:
    audit.append_global(session, [audit.AuditEntry(user.username, "auth.failed", None,
                                                   {"factor": factor, "reason": "locked"})], now)


def record_failure(session: Session, user: User, now: datetime, factor: str, reason: str, *,
                   lock_after: int) -> datetime | None:
    """Count one failure; the end of the lock when this failure is the `lock_after`-th in a row, else None."""
    user.failed_logins += 1
    entries = [audit.AuditEntry(user.username, "auth.failed", None,
                                {"factor": factor, "reason": reason, "failures": user.failed_logins})]
    locks = user.failed_logins >= lock_after
    if locks:
        user.locked_until = now + LOCK_DURATION
        entries.append(audit.AuditEntry(user.username, "auth.locked", None, {
            "failures": user.failed_logins, "until": user.locked_until.isoformat()}))
    audit.append_global(session, entries, now)
    return user.locked_until if locks else None


def lock_message(until: datetime, failures: int) -> str:
    """Until when the account is locked, in Paris time, and what to do."""
    local = until.astimezone(PARIS)
    return (f"Compte verrouillé après {failures} échecs consécutifs, jusqu'au {local:%d/%m/%Y} à {local:%H:%M} "
            "(heure de Paris). Réessayez après cette heure ou demandez à un administrateur de le déverrouiller.")
