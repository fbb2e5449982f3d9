"""Cases as clinicians see them: lists, the case record, its dialogue and attachments.

Every read of a case's record is audited in the case's chain (CH-5.3: exhaustive traceability).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, exists, insert, or_, select
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.domain.cases import may_see_case
from engine.errors import NotFound, TeleradError
from engine.services.case_record import (
    FieldReader,
    RecordedStep,
    completions,
    describe_timeline,
    display_names,
    recorded_steps,
    step_data,
)
from engine.services.case_visibility import visible_case_ids
from engine.services.context import EngineContext
from engine.services.persistence import append_case_events, bundle_of, load_workflow, lock_instance
from engine.services.report_visibility import WITHHELD_KEY, facts_of, redact_report
from engine.store import audit
from engine.store.directory_models import Attachment, CaseMessage
from engine.store.models import AuditEvent, ProcessDefinition, ProcessInstance, Task, TaskCandidate, table_of

MAX_MESSAGE_LENGTH = 5000
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
ALLOWED_ATTACHMENT_TYPES = {"application/pdf", "image/jpeg", "image/png", "text/plain"}


class InvalidInput(TeleradError):
    """Input refused with a French message meant for the user."""


@dataclass(frozen=True)
class CaseLine:
    id: int
    process_id: str
    status: str
    site_id: str | None
    patient_name: str | None
    patient_birth_date: str | None
    urgency: str | None
    accession_number: str | None
    summary: str | None
    started_at: datetime
    updated_at: datetime


@dataclass
class CaseRecord:
    line: CaseLine
    definition_version: int
    main_file: str
    diagram_xml: str
    data: dict[str, Any]
    done_elements: list[str]
    current_elements: list[str]
    timeline: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    open_tasks: list[dict[str, Any]] = field(default_factory=list)
    steps: list[RecordedStep] = field(default_factory=list)  # what each completed step recorded


def _involved(actor: Actor) -> Any:
    """SQL condition: the actor was offered, assigned or acted on a task of the case."""
    task = table_of(Task)
    candidate = table_of(TaskCandidate)
    return exists().where(task.c.instance_id == ProcessInstance.id, or_(
        task.c.assignee == actor.user_id, task.c.ended_by == actor.user_id,
        exists().where(and_(candidate.c.task_id == task.c.id, candidate.c.user_id == actor.user_id))))


def _visible(actor: Actor) -> Any:
    """SQL condition for lists: the actor's sites plus the rule of `_involved` (engine.services.case_visibility)."""
    return ProcessInstance.id.in_(visible_case_ids(actor))


def _line(row: Any) -> CaseLine:
    return CaseLine(row.id, row.process_id, row.status, row.site_id, row.patient_name, row.patient_birth_date,
                    row.urgency, row.accession_number, row.summary, row.started_at, row.updated_at)


def list_cases(ctx: EngineContext, actor: Actor, *, status: str | None = None, query: str | None = None,
               limit: int = 100) -> list[CaseLine]:
    """Cases this actor may see, newest activity first; `query` searches patient name and accession number only:
    never report text, which a poor-prognosis case withholds until its announcement plan (CH-4.1.13)."""
    instance = table_of(ProcessInstance)
    statement = select(instance).where(_visible(actor))
    if status:
        statement = statement.where(instance.c.status == status)
    if query:
        pattern = f"{query.strip().upper()}%"
        statement = statement.where(or_(instance.c.patient_name.like(pattern),
                                        instance.c.accession_number == query.strip()))
    statement = statement.order_by(instance.c.updated_at.desc()).limit(limit)
    with ctx.read() as session:
        return [_line(r) for r in session.execute(statement).all()]


def _check_visible(session: Session, actor: Actor, case_id: int) -> Any:
    instance = table_of(ProcessInstance)
    row = session.execute(select(instance).where(instance.c.id == case_id)).one_or_none()
    if row is None:
        raise NotFound("dossier introuvable")
    involved = session.execute(select(_involved(actor)).select_from(ProcessInstance)
                               .where(ProcessInstance.id == case_id)).scalar()
    if not may_see_case(actor, row.site_id, bool(involved)):
        raise NotFound("dossier introuvable")  # same answer as a missing case: no existence leak
    return row


def ensure_visible(ctx: EngineContext, actor: Actor, case_id: int) -> None:
    with ctx.read() as session:
        _check_visible(session, actor, case_id)


def case_record(ctx: EngineContext, actor: Actor, case_id: int) -> CaseRecord:
    """The whole record of a case for its page; the read itself is audited. The data are those this actor may
    read: a poor-prognosis report awaiting its announcement plan is withheld from all but the reporting
    radiologist and the requester (CH-4.1.13)."""
    with ctx.write() as session:
        row = _check_visible(session, actor, case_id)
        instance = lock_instance(session, case_id)
        cached = load_workflow(ctx, session, instance)
        bundle = bundle_of(ctx, session, instance.definition_id)
        version = session.execute(select(ProcessDefinition.version)
                                  .where(ProcessDefinition.id == instance.definition_id)).scalar_one()
        done, current = cached.live.element_states()
        main_file = _main_file(bundle.files, bundle.process_id)
        facts = facts_of(cached.live)
        data = redact_report(actor, cached.live.case_data(), facts, row.started_by)
        steps, timeline = completions(session, case_id), _timeline(session, case_id)
        reader = FieldReader(ctx, session, data, steps, step_data(
            cached.live, steps, lambda recorded: redact_report(actor, recorded, facts, row.started_by)))
        describe_timeline(reader, steps, timeline)  # "Protocole choisi : ...", not "step completed"
        messages, attachments, open_tasks = (_messages(session, case_id), _attachments(session, case_id),
                                             _open_tasks(session, case_id))
        _name_people(session, ((timeline, "actor"), (messages, "author"), (attachments, "uploaded_by"),
                               (open_tasks, "assignee")))
        record = CaseRecord(
            line=_line(row), definition_version=version, main_file=main_file,
            diagram_xml=bundle.files[main_file], data=data,
            done_elements=done, current_elements=current,
            timeline=timeline, messages=messages, attachments=attachments, open_tasks=open_tasks,
            steps=recorded_steps(reader, steps),
        )
        viewed = {"report_withheld": True} if WITHHELD_KEY in data else {}
        append_case_events(session, instance, [audit.AuditEntry(actor.user_id, "case.viewed", case_id, viewed)],
                           ctx.clock.now())
        session.commit()
    ctx.live_cache.put(case_id, type(cached)(instance.version, cached.live, cached.snapshot))
    return record


def _name_people(session: Session, lists: Iterable[tuple[list[dict[str, Any]], str]]) -> None:
    """Give each row the display name of the person in its ``key`` (``<key>_name``), in one query."""
    lists = list(lists)
    names = display_names(session, [row.get(key) for rows, key in lists for row in rows])
    for rows, key in lists:
        for row in rows:
            row[f"{key}_name"] = names.get(row.get(key) or "")


def _main_file(files: dict[str, str] | Any, process_id: str) -> str:
    for name, text in files.items():
        if f'id="{process_id}"' in text:
            return str(name)
    return str(next(iter(files)))


def _timeline(session: Session, case_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(AuditEvent.at, AuditEvent.actor, AuditEvent.action, AuditEvent.detail)
        .where(AuditEvent.instance_id == case_id, AuditEvent.chain == case_id)  # the case's own chain
        .order_by(AuditEvent.at, AuditEvent.id)
    ).all()
    return [{"at": r.at, "actor": r.actor, "action": r.action, "detail": json.loads(r.detail)} for r in rows]


def _messages(session: Session, case_id: int) -> list[dict[str, Any]]:
    rows = session.execute(select(CaseMessage).where(CaseMessage.instance_id == case_id)
                           .order_by(CaseMessage.id)).scalars()
    return [{"id": m.id, "author": m.author, "body": m.body, "at": m.created_at} for m in rows]


def _attachments(session: Session, case_id: int) -> list[dict[str, Any]]:
    rows = session.execute(select(Attachment).where(Attachment.instance_id == case_id)
                           .order_by(Attachment.id)).scalars()
    return [{"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size,
             "uploaded_by": a.uploaded_by, "at": a.uploaded_at} for a in rows]


def _open_tasks(session: Session, case_id: int) -> list[dict[str, Any]]:
    rows = session.execute(select(Task).where(Task.instance_id == case_id, Task.status == "open")
                           .order_by(Task.created_at)).scalars()
    return [{"id": t.id, "spec_name": t.spec_name, "title": t.title, "lane": t.lane, "assignee": t.assignee,
             "due_at": t.due_at} for t in rows]


def post_message(ctx: EngineContext, actor: Actor, case_id: int, body: str) -> int:
    """Add to the dialogue of a case (CH-4.1.5); kept in the record and audited."""
    text = (body or "").strip()
    if not text:
        raise InvalidInput("Le message est vide.")
    if len(text) > MAX_MESSAGE_LENGTH:
        raise InvalidInput(f"Le message dépasse {MAX_MESSAGE_LENGTH} caractères.")
    with ctx.write() as session:
        _check_visible(session, actor, case_id)
        instance = lock_instance(session, case_id)
        now = ctx.clock.now()
        message_id = session.execute(insert(table_of(CaseMessage)).values(
            instance_id=case_id, author=actor.user_id, body=text, created_at=now)).inserted_primary_key[0]  # type: ignore[attr-defined]
        append_case_events(session, instance, [audit.AuditEntry(actor.user_id, "message.posted", case_id,
                                                                {"message_id": message_id})], now)
        session.commit()
    return int(message_id)


def add_attachment(ctx: EngineContext, actor: Actor, case_id: int, filename: str, content_type: str,
                   content: bytes, storage: Path) -> int:
    """Store a file with a case, content-addressed on disk (the same file is stored once)."""
    name = Path(filename or "").name.strip()[:255]
    if not name:
        raise InvalidInput("Nom de fichier manquant.")
    if content_type not in ALLOWED_ATTACHMENT_TYPES:
        raise InvalidInput("Type de fichier non accepté (PDF, JPEG, PNG ou texte).")
    if not content or len(content) > MAX_ATTACHMENT_BYTES:
        raise InvalidInput("Fichier vide ou trop volumineux (20 Mo au plus).")
    digest = hashlib.sha256(content).hexdigest()
    target = storage / digest[:2] / digest
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".part")
        temporary.write_bytes(content)
        temporary.replace(target)
    with ctx.write() as session:
        _check_visible(session, actor, case_id)
        instance = lock_instance(session, case_id)
        now = ctx.clock.now()
        attachment_id = session.execute(insert(table_of(Attachment)).values(
            instance_id=case_id, filename=name, content_type=content_type, size=len(content), sha256=digest,
            uploaded_by=actor.user_id, uploaded_at=now)).inserted_primary_key[0]  # type: ignore[attr-defined]
        append_case_events(session, instance, [audit.AuditEntry(actor.user_id, "attachment.added", case_id,
                                                                {"attachment_id": attachment_id, "sha256": digest,
                                                                 "filename": name})], now)
        session.commit()
    return int(attachment_id)


def attachment_file(ctx: EngineContext, actor: Actor, case_id: int, attachment_id: int,
                    storage: Path) -> tuple[Path, str, str]:
    """(path, filename, content type) of an attachment of a case the actor may see; the read is audited."""
    with ctx.write() as session:
        _check_visible(session, actor, case_id)
        attachment = session.get(Attachment, attachment_id)
        if attachment is None or attachment.instance_id != case_id:
            raise NotFound("pièce jointe introuvable")
        instance = lock_instance(session, case_id)
        append_case_events(session, instance, [audit.AuditEntry(actor.user_id, "attachment.read", case_id,
                                                                {"attachment_id": attachment_id})],
                           ctx.clock.now())
        session.commit()
        return storage / attachment.sha256[:2] / attachment.sha256, attachment.filename, attachment.content_type


def diagram_source(ctx: EngineContext, actor: Actor, case_id: int) -> str:
    with ctx.read() as session:
        _check_visible(session, actor, case_id)
        instance = lock_instance(session, case_id)
        bundle = bundle_of(ctx, session, instance.definition_id)
        return bundle.files[_main_file(bundle.files, bundle.process_id)]
