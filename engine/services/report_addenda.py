"""Addenda to a released report: the author of the report, or another radiologist of the case, adds a text signed
with his TOTP code (engine.services.report_signature). The original report is never changed; addenda are only added
(no update, no delete), traced on the case's audit chain, and read by those who may read the report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from engine.domain.actors import Actor
from engine.errors import Forbidden
from engine.services.cases import ensure_visible
from engine.services.context import EngineContext
from engine.services.instances import case_data
from engine.services.persistence import append_case_events, lock_instance
from engine.services.report_signature import SIGNED_KEY, consume_code
from engine.services.report_visibility import WITHHELD_KEY
from engine.store import audit
from engine.store.directory_models import User
from engine.store.report_models import ReportAddendum
from forms import FormValidationError

MAX_ADDENDUM_CHARS = 4000
RELEASE_KEYS = ("release", "distribution")  # what the release step of each diagram records


@dataclass(frozen=True)
class Addendum:
    id: int
    author: str
    author_name: str
    text: str
    signed_at: datetime


def may_add(actor: Actor, data: Mapping[str, Any]) -> bool:
    """The report is signed and released, and the actor signed it or is one of the case's radiologists."""
    signed = data.get(SIGNED_KEY)
    if not isinstance(signed, Mapping) or not any(key in data for key in RELEASE_KEYS):
        return False
    return actor.user_id in {signed.get("by"), data.get("radiologist_id"), data.get("expert_id")}


def add_addendum(ctx: EngineContext, actor: Actor, case_id: int, text: str, code: str) -> int:
    """Add a signed addendum; returns its id. NotFound, Forbidden, FormValidationError (text), or
    SignatureRefused (code: nothing added)."""
    ensure_visible(ctx, actor, case_id)
    data = case_data(ctx, case_id)
    if not may_add(actor, data):
        raise Forbidden("Seuls l'auteur du compte-rendu et les radiologues du dossier ajoutent un addendum, "
                        "une fois le compte-rendu signé et diffusé.")
    text = (text or "").strip()
    if not text or len(text) > MAX_ADDENDUM_CHARS:
        raise FormValidationError({"text": f"Saisissez l'addendum (1 à {MAX_ADDENDUM_CHARS} caractères)."})
    signed_at = consume_code(ctx, actor.user_id, code, {"case": case_id, "what": "addendum"})
    if signed_at is None:
        raise Forbidden("Un addendum doit être signé par une personne titulaire d'un compte.")
    now = ctx.clock.now()
    with ctx.write() as session:
        instance = lock_instance(session, case_id)
        row = ReportAddendum(instance_id=case_id, author=actor.user_id, text=text, signed_at=now)
        session.add(row)
        session.flush()
        append_case_events(session, instance, [audit.AuditEntry(actor.user_id, "report.addendum", case_id,
                                                                {"addendum_id": row.id})], now)
        if ctx.addendum_hooks:
            addenda = _addenda(session, case_id)
            for hook in ctx.addendum_hooks:
                hook(session, instance, data, addenda)
        session.commit()
        return row.id


def list_addenda(ctx: EngineContext, actor: Actor, case_id: int, shown: Mapping[str, Any]) -> list[Addendum]:
    """The addenda of a case, oldest first, for an actor who sees the case data `shown` (as
    engine.services.cases.case_record gave them): none while the report is withheld from him (CH-4.1.13)."""
    if WITHHELD_KEY in shown or SIGNED_KEY not in shown:
        return []
    ensure_visible(ctx, actor, case_id)
    with ctx.read() as session:
        return _addenda(session, case_id)


def _addenda(session: Any, case_id: int) -> list[Addendum]:
    rows = list(session.execute(select(ReportAddendum).where(ReportAddendum.instance_id == case_id)
                                .order_by(ReportAddendum.id)).scalars())
    names = _names(session, {r.author for r in rows})
    return [Addendum(r.id, r.author, names.get(r.author, r.author), r.text, r.signed_at) for r in rows]


def signer_name(ctx: EngineContext, username: str) -> str:
    with ctx.read() as session:
        return _names(session, [username]).get(username, username)


def _names(session: Any, usernames: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(usernames))
    if not wanted:
        return {}
    return dict(session.execute(select(User.username, User.display_name).where(User.username.in_(wanted))).all())
