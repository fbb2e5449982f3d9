"""Process designer use cases: versions and their cases, drafts with validation, deployment, form schemas.

A draft is untrusted input: it is stored with its validation report, and it becomes a definition only
when the same validation finds no error at deployment, in the transaction that removes the draft. What a draft's
files must satisfy is in designer_checks; the deployed versions and their case counts in designer_versions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from engine.domain.actors import Actor
from engine.domain.engine_fields import ENGINE_OWNED_FIELDS
from engine.errors import Conflict, DefinitionRefused, Finding, Forbidden, NotFound
from engine.runtime import Bundle, bundles_from_library
from engine.services.context import EngineContext
from engine.services.definitions import Deployed, store_definition
from engine.services.designer_checks import PROCESS_ID, defined_process, draft_reports
from engine.services.designer_versions import FileComparison, VersionComparison, VersionInfo, deployed_versions
from engine.store import audit
from engine.store.designer_models import DiagramDraft, FormSchemaRow
from engine.store.models import ProcessDefinition
from forms.registry import UnknownForm, check_schema, context_problems

DESIGNER_ROLES = frozenset({"process_designer", "administrator"})
_VERSIONED_FORM = re.compile(r"^(?P<base>[A-Za-z0-9_-]+?)(?:\.v(?P<n>\d+))?\.schema\.json$")


def require_designer(actor: Actor) -> None:
    if not actor.roles & DESIGNER_ROLES:
        raise Forbidden("Réservé aux concepteurs de processus.")


@dataclass(frozen=True)
class DraftInfo:
    process_id: str
    base_definition_id: int | None
    base_version: int | None
    files: dict[str, str]
    revision: int  # 0: not saved yet (a fresh copy of the latest version)
    reports: list[dict[str, Any]]
    error_count: int
    warning_count: int
    updated_by: str | None
    updated_at: datetime | None


@dataclass(frozen=True)
class ProcessInfo:
    process_id: str
    name: str
    versions: tuple[VersionInfo, ...]  # newest first
    draft: DraftInfo | None

    @property
    def latest(self) -> VersionInfo | None:
        return self.versions[0] if self.versions else None


# ------------------------------------------------------------------------------------------- reading

def _draft_info(row: DiagramDraft, base_version: int | None) -> DraftInfo:
    return DraftInfo(row.process_id, row.base_definition_id, base_version, json.loads(row.files), row.revision,
                     json.loads(row.report), row.error_count, row.warning_count, row.updated_by, row.updated_at)


def list_processes(ctx: EngineContext, actor: Actor) -> list[ProcessInfo]:
    require_designer(actor)
    with ctx.read() as session:
        versions = deployed_versions(session)
        drafts = {d.process_id: d for d in session.execute(select(DiagramDraft)).scalars()}
    by_process: dict[str, list[VersionInfo]] = {}
    for v in versions:
        by_process.setdefault(v.process_id, []).append(v)
    version_of = {v.definition_id: v.version for v in versions}
    names = sorted(set(by_process) | set(drafts))
    return [ProcessInfo(p, by_process[p][0].name if p in by_process else p, tuple(by_process.get(p, ())),
                        _draft_info(drafts[p], version_of.get(drafts[p].base_definition_id or 0))
                        if p in drafts else None) for p in names]


def process_info(ctx: EngineContext, actor: Actor, process_id: str) -> ProcessInfo:
    found = [p for p in list_processes(ctx, actor) if p.process_id == process_id]
    if not found:
        raise NotFound("processus introuvable")
    return found[0]


def version_bundle(ctx: EngineContext, actor: Actor, definition_id: int) -> tuple[VersionInfo, Bundle]:
    require_designer(actor)
    with ctx.read() as session:
        source = session.execute(select(ProcessDefinition.source, ProcessDefinition.process_id)
                                 .where(ProcessDefinition.id == definition_id)).one_or_none()
        if source is None:
            raise NotFound("version introuvable")
        info = next(v for v in deployed_versions(session, source.process_id) if v.definition_id == definition_id)
    return info, Bundle.from_json(source.source)


# -------------------------------------------------------------------------------------------- drafts


def open_draft(ctx: EngineContext, actor: Actor, process_id: str) -> DraftInfo:
    """The saved draft of a process, or a fresh copy of its latest version (revision 0, not saved)."""
    info = process_info(ctx, actor, process_id)
    if info.draft is not None:
        return info.draft
    latest = info.latest
    assert latest is not None  # a process without a version always has a draft
    _version, bundle = version_bundle(ctx, actor, latest.definition_id)
    return DraftInfo(process_id, latest.definition_id, latest.version, dict(sorted(bundle.files.items())), 0,
                     [], 0, 0, None, None)


def save_draft(ctx: EngineContext, actor: Actor, process_id: str, files: Mapping[str, str],
               expected_revision: int, base_definition_id: int | None = None) -> DraftInfo:
    """Validate and store the draft; Conflict if a colleague saved it since `expected_revision`."""
    require_designer(actor)
    if not PROCESS_ID.fullmatch(process_id):
        raise NotFound("processus introuvable")
    files = {str(k): str(v) for k, v in files.items()}
    reports = draft_reports(ctx, process_id, files)
    errors = sum(len(r.errors) for r in reports)
    warnings = sum(len(r.warnings) for r in reports)
    now = ctx.clock.now()
    with ctx.write() as session:
        row = session.execute(select(DiagramDraft).where(DiagramDraft.process_id == process_id)
                              .with_for_update()).scalar_one_or_none()
        current = row.revision if row is not None else 0
        if current != expected_revision:
            by = f" par {row.updated_by}" if row is not None else ""
            raise Conflict(f"Le brouillon a été enregistré entre-temps{by} ; rechargez-le avant de continuer.")
        if row is None:
            if base_definition_id is None:
                base_definition_id = session.execute(
                    select(ProcessDefinition.id).where(ProcessDefinition.process_id == process_id)
                    .order_by(ProcessDefinition.version.desc()).limit(1)).scalar()
            row = DiagramDraft(process_id=process_id, base_definition_id=base_definition_id, revision=0)
            session.add(row)
        row.files = json.dumps(files, ensure_ascii=False)
        row.report = json.dumps([r.as_dict() for r in reports], ensure_ascii=False)
        row.error_count, row.warning_count = errors, warnings
        row.revision = current + 1
        row.updated_by, row.updated_at = actor.user_id, now
        session.flush()
        base_version = session.execute(select(ProcessDefinition.version)
                                       .where(ProcessDefinition.id == row.base_definition_id)).scalar()
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "draft.saved", None, {
            "process_id": process_id, "revision": row.revision, "errors": errors, "warnings": warnings})], now)
        info = _draft_info(row, base_version)
        session.commit()
    return info


def discard_draft(ctx: EngineContext, actor: Actor, process_id: str) -> None:
    require_designer(actor)
    with ctx.write() as session:
        deleted = session.execute(delete(DiagramDraft).where(DiagramDraft.process_id == process_id))
        if deleted.rowcount:  # type: ignore[attr-defined]
            audit.append_global(session, [audit.AuditEntry(actor.user_id, "draft.discarded", None,
                                                            {"process_id": process_id})], ctx.clock.now())
        session.commit()


def deploy_draft(ctx: EngineContext, actor: Actor, process_id: str, expected_revision: int) -> Deployed:
    """Validate the saved draft again and make it the new version; the draft is removed in the same transaction.
    Raises DefinitionRefused (with the findings) when anything is wrong."""
    require_designer(actor)
    with ctx.read() as session:
        row = session.execute(select(DiagramDraft).where(DiagramDraft.process_id == process_id)).scalar_one_or_none()
        if row is None:
            raise NotFound("aucun brouillon à déployer")
        files = json.loads(row.files)
    reports = draft_reports(ctx, process_id, files)
    findings = [f for r in reports for f in r.errors]
    if findings:
        raise DefinitionRefused(findings)
    bundle = next(b for b in bundles_from_library(files) if b.process_id == process_id)
    with ctx.write() as session:
        locked = session.execute(select(DiagramDraft).where(DiagramDraft.process_id == process_id)
                                 .with_for_update()).scalar_one_or_none()
        if locked is None or locked.revision != expected_revision or locked.files != row.files:
            raise Conflict("Le brouillon a changé entre-temps ; rechargez-le avant de déployer.")
        deployed = store_definition(ctx, session, actor, bundle)
        session.delete(locked)
        session.commit()
    return deployed


def import_diagram(ctx: EngineContext, actor: Actor, file_name: str, content: bytes,
                   process_id: str | None = None) -> DraftInfo:
    """A .bpmn/.dmn made elsewhere: added to (or replacing the same file in) a process's draft, or starting
    the draft of the process it defines. Broken files are stored with their findings, never a crash."""
    require_designer(actor)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DefinitionRefused([Finding("", "file.encoding", "Le fichier n'est pas en UTF-8.", file_name)]) from err
    if process_id is None:
        process_id = defined_process(text, file_name)
        existing = [p for p in list_processes(ctx, actor) if p.process_id == process_id]
        files: dict[str, str] = dict(open_draft(ctx, actor, process_id).files) if existing else {}
        revision = existing[0].draft.revision if existing and existing[0].draft else 0
    else:
        draft = open_draft(ctx, actor, process_id)
        files, revision = dict(draft.files), draft.revision
    files[file_name] = text
    return save_draft(ctx, actor, process_id, files, revision)


# ----------------------------------------------------------------------------------------------- forms


def form_schema(ctx: EngineContext, actor: Actor, key: str) -> dict[str, Any]:
    require_designer(actor)
    try:
        return ctx.forms.schema(key)
    except UnknownForm as err:
        raise NotFound(str(err)) from err


def check_form_schema(text: str) -> dict[str, Any]:
    """The parsed schema, or FormRefused with a French explanation."""
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as err:
        raise FormRefused(f"JSON invalide (ligne {err.lineno}, colonne {err.colno}) : {err.msg}") from err
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise FormRefused('Le formulaire doit décrire un objet (« "type": "object" »).')
    try:
        check_schema(schema)
    except UnknownForm as err:
        raise FormRefused(f"Ce n'est pas un JSON Schema valide : {err}") from err
    if not isinstance(schema.get("properties"), dict) or not schema["properties"]:
        raise FormRefused("Le formulaire doit décrire au moins un champ (« properties »).")
    if "patternProperties" in schema:
        raise FormRefused("Le formulaire doit nommer chacun de ses champs (« properties ») : les champs décrits par "
                          "un motif (« patternProperties ») ne sont pas acceptés.")
    if schema.get("additionalProperties") is not False:
        raise FormRefused("Le formulaire doit refuser les champs qu'il ne décrit pas "
                          "(« \"additionalProperties\": false ») : sinon une saisie pourrait écrire dans le dossier "
                          "des données que le moteur seul écrit.")
    owned = sorted(set(schema["properties"]) & ENGINE_OWNED_FIELDS)
    if owned:
        raise FormRefused("Ces champs sont écrits par le moteur (offre, validation, radiologue…) et ne peuvent pas "
                          "être saisis dans un formulaire : " + ", ".join(owned) + ".")
    return schema


class FormRefused(ValueError):
    pass


def save_form_schema(ctx: EngineContext, actor: Actor, based_on: str, text: str) -> str:
    """Store an edited schema under a new immutable key derived from `based_on` (td_report.schema.json ->
    td_report.v2.schema.json, then .v3 ...); returns the key to put on the user task."""
    require_designer(actor)
    schema = check_form_schema(text)
    match = _VERSIONED_FORM.fullmatch(based_on or "")
    if match is None:
        raise FormRefused("Nom de formulaire de départ invalide.")
    unknown = context_problems(ctx.forms, based_on, schema)
    if unknown:  # the context shown above the fields must name forms and fields that exist
        raise FormRefused("Le contexte affiché au-dessus des champs (« x-context ») nomme un formulaire ou un champ "
                          "qui n'existe pas : " + " ; ".join(problem.split(" : ", 1)[-1] for problem in unknown))
    base = match.group("base")
    with ctx.write() as session:
        taken = set(session.execute(select(FormSchemaRow.key).where(FormSchemaRow.key.like(f"{base}.v%"))).scalars())
        taken |= {k for k in ctx.forms.keys() if k.startswith(f"{base}.v")}  # noqa: SIM118 - not a dict
        number = 2
        while f"{base}.v{number}.schema.json" in taken:
            number += 1
        key = f"{base}.v{number}.schema.json"
        session.add(FormSchemaRow(key=key, schema=json.dumps(schema, ensure_ascii=False, indent=2), based_on=based_on,
                                  created_by=actor.user_id, created_at=ctx.clock.now()))
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "form.saved", None,
                                                       {"key": key, "based_on": based_on})], ctx.clock.now())
        session.commit()
    return key


# ------------------------------------------------------------------------------ versions compared


def diff_versions(ctx: EngineContext, actor: Actor, old_id: int, new_id: int) -> VersionComparison:
    """Added, removed and changed element ids, file by file, between two versions of a process."""
    from engine.runtime.diff import diff_bundles

    old, old_bundle = version_bundle(ctx, actor, old_id)
    new, new_bundle = version_bundle(ctx, actor, new_id)
    if old.process_id != new.process_id:
        raise NotFound("versions de processus différents")
    files = tuple(FileComparison(name, name in old_bundle.files, name in new_bundle.files, d.added, d.removed,
                                 d.changed) for name, d in sorted(diff_bundles(old_bundle, new_bundle).items()))
    return VersionComparison(old, new, files)


def plan(ctx: EngineContext, actor: Actor, from_id: int, to_id: int) -> list[Any]:
    """Dry run: every running case of `from_id` with what would keep it from moving to `to_id`."""
    from engine.services.case_migration import plan_migration

    require_designer(actor)
    return plan_migration(ctx, from_id, to_id)


def migrate(ctx: EngineContext, actor: Actor, from_id: int, to_id: int, case_ids: list[int]) -> list[Any]:
    from engine.services.case_migration import migrate_cases

    require_designer(actor)
    return migrate_cases(ctx, actor, from_id, to_id, case_ids)
