"""The electronic signature of a report: the author types his current TOTP code with the report (field
`signature_code`) and the charter gate (engine.services.charter_gates.check_save) checks it on the server, whatever
the entry point (page, JSON API, service call). A code is usable once: it must belong to a later time step than the
account's last used one (login shares that step). A wrong or replayed code counts as a failed authentication toward
the account's lock-out, like at login (engine.services.accounts_lockout).

Who must sign: every person holding an account (the web and the API act for one). The system (demo data, timers)
and actors with no account (engine tests on an in-memory directory) sign nothing: they cannot authenticate.

On success the code is removed from the case data and replaced by `report_signed` (who, when, which step), saved in
the same transaction as the report, with the `report.signed` event on the case's own audit chain. The account's
used step and an `auth.signature_code` event of the global chain are written just before, in their own
transaction (a code refused later by a conflicting save must be typed again)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

import engine.store.report_models  # noqa: F401  (the report tables, in the metadata wherever cases are saved)
from engine.domain.actors import SYSTEM_USER
from engine.errors import CharterRefused
from engine.services.accounts_lockout import (
    lift_expired_lock,
    lock_message,
    record_attempt_while_locked,
    record_failure,
)
from engine.services.accounts_totp import matching_step
from engine.services.context import EngineContext
from engine.store import audit
from engine.store.directory_models import User

SIGNATURE_FIELD = "signature_code"
SIGNED_KEY = "report_signed"  # case data: {"by", "at", "role", "task"} of the latest signed report
SIGNED_ROLES = ("report", "expert_opinion")
SIGNATURE_RULE = "CH-5.3"
LOCK_AFTER = 5  # as many consecutive failures as at login (engine.services.accounts.MAX_FAILURES)

MISSING_CODE = "la signature du compte-rendu exige le code à 6 chiffres de votre application d'authentification"
WRONG_CODE = "code de signature incorrect : saisissez le code affiché par votre application d'authentification"
REPLAYED_CODE = "ce code de signature a déjà été utilisé : attendez le code suivant de votre application"
NOT_ENROLLED = "votre second facteur n'est pas configuré : la signature est impossible"


class SignatureRefused(CharterRefused):
    def __init__(self, reason: str):
        super().__init__(f"Signature refusée : {reason} ({SIGNATURE_RULE}).", [(SIGNATURE_RULE, reason)])


def consume_code(ctx: EngineContext, username: str, code: Any, what: Mapping[str, Any]) -> str | None:
    """Check `username`'s TOTP code and mark its step used; returns the time of the signature (ISO), None when the
    actor holds no account (nothing to check), or raises SignatureRefused. `what` is traced with the signature."""
    if username == SYSTEM_USER:
        return None
    with ctx.write() as session:
        user = session.execute(select(User).where(User.username == username).with_for_update()).scalar_one_or_none()
        if user is None:
            return None
        now = lift_expired_lock(user, ctx.clock.now())
        if user.locked_until is not None:
            record_attempt_while_locked(session, user, now, "signature")
            session.commit()
            raise SignatureRefused(lock_message(user.locked_until, LOCK_AFTER).rstrip("."))
        if user.totp_enrolled_at is None:
            raise SignatureRefused(NOT_ENROLLED)
        if not isinstance(code, str) or not code.strip():
            raise SignatureRefused(MISSING_CODE)
        step = matching_step(ctx.keys, user.totp_secret, code, now)
        if step is None or step <= user.totp_last_step:
            reason = "wrong_code" if step is None else "replayed_code"
            locked = record_failure(session, user, now, "signature", reason, lock_after=LOCK_AFTER)
            session.commit()
            if locked is not None:
                raise SignatureRefused(lock_message(locked, LOCK_AFTER).rstrip("."))
            raise SignatureRefused(WRONG_CODE if step is None else REPLAYED_CODE)
        user.totp_last_step, user.failed_logins = step, 0
        # The code is used up whatever happens to the save; the signature itself is the save's `report.signed`
        # event on the case's own chain (signed_events).
        audit.append_global(session, [audit.AuditEntry(username, "auth.signature_code", None, dict(what))], now)
        session.commit()
    return now.isoformat()


def check_report_signature(ctx: EngineContext, live: Any, recorded: set[str]) -> None:
    """The gate: a report (or expert opinion) recorded by this change carries its author's valid code."""
    roles = [role for role in SIGNED_ROLES if role in recorded]
    if not roles:
        return
    entry = live.charter_facts().get("roles", {}).get(roles[0], {})
    signer = entry.get("by")
    if not isinstance(signer, str) or not signer:
        _forget_code(live, None)
        return
    code = live.latest_data().get(SIGNATURE_FIELD)
    what = {"role": roles[0], "task": entry.get("task")}
    signed_at = consume_code(ctx, signer, code, what)
    _forget_code(live, None if signed_at is None else {**what, "by": signer, "at": signed_at})


def _forget_code(live: Any, signed: dict[str, Any] | None) -> None:
    """The code is not kept in the case: removed from every task's data that holds it (SpiffWorkflow copies data
    forward to the next steps), replaced there by who signed and when."""
    for task in live.workflow.get_tasks():
        if SIGNATURE_FIELD in task.data:
            del task.data[SIGNATURE_FIELD]
            if signed is not None:
                task.data[SIGNED_KEY] = signed
    live.workflow.data.pop(SIGNATURE_FIELD, None)


def signed_events(instance_id: int, live: Any, recorded: set[str]) -> list[audit.AuditEntry]:
    """The `report.signed` event of the case's own chain for a save that recorded a signed report (to be appended
    to the save's events after the gates ran: engine.services.persistence.prepare_save)."""
    roles = [role for role in SIGNED_ROLES if role in recorded]
    signed = live.latest_data().get(SIGNED_KEY) if roles else None
    if not isinstance(signed, Mapping) or signed.get("role") != roles[0]:
        return []
    return [audit.AuditEntry(str(signed.get("by")), "report.signed", instance_id, dict(signed))]
