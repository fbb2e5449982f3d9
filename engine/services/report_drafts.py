"""The draft of a report: the fields of the report form as its author leaves them, autosaved by the task page and
given back to prefill it. Only the author reads or writes it: the person holding the open report task. The draft
never holds the signature code, and is not the report: the report exists once signed and completed."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select

from engine.domain.actors import Actor
from engine.errors import Forbidden, NotFound
from engine.services.context import EngineContext
from engine.services.persistence import read_task
from engine.services.report_signature import SIGNATURE_FIELD
from engine.store.models import Task
from engine.store.report_models import ReportDraft

REPORT_FORMS = frozenset({"td_report.schema.json", "te_report.schema.json"})
MAX_DRAFT_CHARS = 32_000
_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


class DraftRefused(ValueError):
    """A draft body that is not a flat object of form fields (French message)."""


def _author_task(ctx: EngineContext, actor: Actor, task_id: str) -> Any:
    with ctx.driver_read() as reader:
        row: Any = read_task(reader, task_id)
    if row is None or row.status != "open" or row.form_key not in REPORT_FORMS:
        raise NotFound("tâche introuvable")
    if row.assignee != actor.user_id:
        raise Forbidden("Seul l'auteur du compte-rendu peut lire ou modifier son brouillon.")
    return row


def clean_fields(fields: Any) -> dict[str, str | bool | None]:
    """The draft's fields: names of form fields, texts, booleans; never the signature code."""
    if not isinstance(fields, Mapping):
        raise DraftRefused("Le brouillon doit être un objet de champs.")
    cleaned: dict[str, str | bool | None] = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not _FIELD.fullmatch(name):
            raise DraftRefused("Nom de champ non autorisé dans le brouillon.")
        if value is not None and not isinstance(value, str | bool):
            raise DraftRefused("Valeur non autorisée dans le brouillon.")
        if name != SIGNATURE_FIELD and name != "csrf_token":
            cleaned[name] = value
    if len(json.dumps(cleaned, ensure_ascii=False)) > MAX_DRAFT_CHARS:
        raise DraftRefused("Brouillon trop long.")
    return cleaned


def save_draft(ctx: EngineContext, actor: Actor, task_id: str, fields: Any) -> None:
    """Keep the author's draft of an open report task (replacing the previous one); the author's drafts of tasks
    that are no longer open are dropped at the same time."""
    cleaned = clean_fields(fields)
    row = _author_task(ctx, actor, task_id)
    with ctx.write() as session:
        closed = select(Task.id).where(Task.status != "open")
        session.execute(delete(ReportDraft).where(ReportDraft.author == actor.user_id,
                                                  ReportDraft.task_id.in_(closed)))
        session.execute(delete(ReportDraft).where(ReportDraft.task_id == task_id,
                                                  ReportDraft.author == actor.user_id))
        session.add(ReportDraft(task_id=task_id, author=actor.user_id, instance_id=row.instance_id,
                                content=json.dumps(cleaned, ensure_ascii=False), updated_at=ctx.clock.now()))
        session.commit()


def read_draft(ctx: EngineContext, actor: Actor, task_id: str) -> dict[str, Any] | None:
    """The author's draft of an open report task, None when there is none."""
    _author_task(ctx, actor, task_id)
    with ctx.read() as session:
        found = session.get(ReportDraft, (task_id, actor.user_id))
        if found is None:
            return None
        return {"fields": json.loads(found.content), "updated_at": found.updated_at}
