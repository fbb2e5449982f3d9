"""The follow-up actions of an issued quality audit report (CH-6.3): an administrator adds them (what, who, by
when) and marks them done (who, when); each change is audited. The report itself stays as issued."""

from __future__ import annotations

from datetime import date

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.quality_audit import MAX_ACTION_TEXT, QualityAuditError, may_follow_up
from engine.errors import Conflict, Forbidden, NotFound
from engine.services.context import EngineContext
from engine.store import audit
from engine.store.quality_audit_models import QualityAuditAction, QualityAuditReport

MAX_OWNER = 200


def _require_admin(actor: Actor) -> None:
    if not may_follow_up(actor):
        raise Forbidden("Seul un administrateur ajoute ou clôt les actions de suivi d'un audit.")


@enforces("CH-6.3")
def add_action(ctx: EngineContext, actor: Actor, report_id: int, text: str, owner: str, due_date: date | None) -> int:
    """A follow-up action on an issued report; returns its id."""
    _require_admin(actor)
    text, owner = (text or "").strip(), (owner or "").strip()
    if not text:
        raise QualityAuditError("Décrivez l'action de suivi.")
    if len(text) > MAX_ACTION_TEXT:
        raise QualityAuditError(f"L'action de suivi dépasse {MAX_ACTION_TEXT} caractères : résumez-la.")
    if not owner:
        raise QualityAuditError("Indiquez qui porte l'action de suivi.")
    if len(owner) > MAX_OWNER:
        raise QualityAuditError(f"Le porteur de l'action dépasse {MAX_OWNER} caractères.")
    if due_date is None:
        raise QualityAuditError("Indiquez l'échéance de l'action de suivi (date).")
    now = ctx.clock.now()
    with ctx.write() as session:
        report = session.get(QualityAuditReport, report_id)
        if report is None:
            raise NotFound("rapport d'audit introuvable")
        row = QualityAuditAction(report_id=report_id, text=text, owner=owner, due_date=due_date,
                                 created_by=actor.user_id, created_at=now)
        session.add(row)
        session.flush()
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "quality_audit.action_added", None, {
            "report": report_id, "action": row.id, "owner": owner, "due_date": due_date.isoformat(),
            "text": text})], now)
        session.commit()
        return int(row.id)


@enforces("CH-6.3")
def mark_action_done(ctx: EngineContext, actor: Actor, action_id: int, report_id: int | None = None) -> None:
    """Mark a follow-up action done (who, when); an action already done is a Conflict, never done twice."""
    _require_admin(actor)
    now = ctx.clock.now()
    with ctx.write() as session:
        row = session.get(QualityAuditAction, action_id, with_for_update=True)
        if row is None or (report_id is not None and row.report_id != report_id):
            raise NotFound("action de suivi introuvable")
        if row.done_at is not None:
            raise Conflict("Cette action de suivi est déjà close.")
        row.done_by, row.done_at = actor.user_id, now
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "quality_audit.action_done", None, {
            "report": row.report_id, "action": action_id})], now)
        session.commit()
