"""Start process instances."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert, select

from engine.domain import gates
from engine.domain.actors import Actor
from engine.domain.charter_roles import FAMILY_REQUIRED_ROLES
from engine.domain.data_checks import data_problems, paris_date
from engine.errors import CharterRefused, Forbidden, NotFound
from engine.runtime import using_clock
from engine.services.case_changes import (
    INDICATION_FIELDS,
    ORDER_FIELDS,
    amendment_refusals,
    cancel_refusals,
    images_attached,
)
from engine.services.context import EngineContext
from engine.services.persistence import InstanceRow, bundle_of, prepare_save, save_workflow, write_save
from engine.services.refusals import record_refusal
from engine.services.task_checks import as_refusals, check_engine_owned, task_data_problems
from engine.store import audit
from engine.store.db import GENESIS_HASH
from engine.store.driver import DriverQuery, Source
from engine.store.models import ProcessDefinition, ProcessInstance, Task, table_of
from forms import FormValidationError
from forms.validation import forbidden_characters


def start_instance(ctx: EngineContext, actor: Actor, process_id: str, data: dict[str, Any] | None = None,
                   site_id: str | None = None, first_task: dict[str, Any] | None = None) -> int:
    """Start the latest version of a process; return the new instance id.

    The site id is also given to the diagram as ``site_id`` (routing and numbering use it). With
    ``first_task``, the first user task (the request form) is validated and completed by the actor in the
    same transaction: a refused form leaves no half-created case behind. A person asking so (a page, the API, a
    service call) can only start a process whose first step is a request (charter role ``request``: the two
    families of CH-1.1); other processes, such as an image reconciliation, are started by the engine itself.
    """
    # Every case has an accession number (its images correlate on it); a RIS order brings its own.
    start_data = {"accession_number": None, **(data or {}), "site_id": site_id}
    # A NUL byte or a lone surrogate cannot be stored (pre-filled data of an HL7 order skips the form check);
    # then the charter's data checks, e.g. an INS whose key is wrong.
    problems = forbidden_characters(start_data) or data_problems(start_data, paris_date(ctx.clock.now()))
    if problems:
        raise FormValidationError(problems)
    # The engine steps and the encoding of the state run before the write transaction (a new case has nothing
    # to lock), so the write lock is held for the inserts alone.
    with ctx.driver_read() as reader:
        definition_id = _latest_definition_id(reader, process_id)
        bundle = bundle_of(ctx, reader, definition_id)
    with using_clock(ctx.clock):
        live = ctx.runtime.start(bundle, start_data)
        submitted = None if first_task is None else _complete_first_task(ctx, actor, live, first_task)
    state = ctx.runtime.dump(live)
    with ctx.write() as session:
        now = ctx.clock.now()
        instance_id = session.execute(insert(table_of(ProcessInstance)).values(
            definition_id=definition_id, process_id=process_id, status="running", site_id=site_id, state="",
            version=1, audit_seq=0, audit_hash=GENESIS_HASH, started_by=actor.user_id, started_at=now,
            updated_at=now,
        )).inserted_primary_key[0]  # type: ignore[attr-defined]
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "instance.started", instance_id, {
            "process_id": process_id, "definition_id": definition_id, "site_id": site_id})], now)
        row = InstanceRow(instance_id, definition_id, process_id, "running", site_id, 1, 0, GENESIS_HASH)
        events = [audit.AuditEntry(actor.user_id, "instance.started", instance_id, {"fields": sorted(data or {})})]
        if submitted is not None:
            session.execute(insert(table_of(Task)).values(
                id=submitted.task_id, instance_id=instance_id, spec_name=submitted.spec_name,
                title=submitted.title[:256], lane=submitted.lane, form_key=submitted.form_key, site_id=site_id,
                status="completed", restricted=False, assignee=actor.user_id, urgency=9, created_at=now,
                ended_at=now, ended_by=actor.user_id))
            events.append(audit.AuditEntry(actor.user_id, "task.completed", instance_id, {
                "task_id": submitted.task_id, "task": submitted.spec_name, "title": submitted.title,
                "fields": sorted(first_task or {})}))
        prepared = prepare_save(ctx, row, live, None, actor, events, state=state)
        cached = write_save(ctx, session, prepared, actor)
        session.commit()
    ctx.live_cache.put(instance_id, cached)
    return instance_id


def _complete_first_task(ctx: EngineContext, actor: Actor, live: Any, data: dict[str, Any]) -> Any:
    tasks = live.snapshot().user_tasks
    if not tasks:
        raise NotFound("ce processus ne commence pas par un formulaire")
    first = tasks[0]
    if not actor.is_system and (first.charter_role != "request" or first.process_id not in FAMILY_REQUIRED_ROLES):
        raise NotFound("Ce processus ne se demande pas : une demande est un télédiagnostic ou une téléexpertise.")
    if first.lane is not None and first.lane not in actor.roles:
        raise Forbidden("Votre rôle ne permet pas de faire cette demande.")
    check_engine_owned(ctx, first.form_key, data)
    if first.form_key:
        data = ctx.forms.validate(first.form_key, data)
    problems = task_data_problems(ctx, first.form_key, live.latest_data().get("site_id"), data, live.case_data())
    if problems:
        record_refusal(ctx, None, actor, CharterRefused("", as_refusals(problems)), first.spec_name)
        raise FormValidationError(problems)
    live.complete_user_task(first.task_id, data, actor.user_id)
    return first


_LATEST_DEFINITION = DriverQuery(select(ProcessDefinition.id).where(ProcessDefinition.process_id == bindparam("p"))
                                 .order_by(ProcessDefinition.version.desc()).limit(1))


def _latest_definition_id(session: Source, process_id: str) -> int:
    found = _LATEST_DEFINITION.one_or_none(session, {"p": process_id})
    if found is None:
        raise NotFound(f"Aucun processus déployé ne s'appelle « {process_id} ».")
    return int(found.id)


def case_data(ctx: EngineContext, instance_id: int) -> dict[str, Any]:
    """The data a case has gathered (no permission check: callers check who may see the case)."""
    from engine.services.persistence import load_workflow, lock_instance

    with ctx.read() as session:
        instance = lock_instance(session, instance_id)
        cached = load_workflow(ctx, session, instance)
        data = cached.live.case_data()
    ctx.live_cache.put(instance_id, cached)
    return data


def cancel_instance(ctx: EngineContext, actor: Actor, case_id: int, reason: str) -> None:
    """Cancel a running case (e.g. the RIS cancelled the order): tasks, timers and subscriptions end.

    Once the case has reached the acquisition step (acquisition recorded or its task opened, or images attached),
    it ends only with a released report or a motivated refusal (CH-1.2): CharterRefused, traced on the case.
    """
    from engine.services.persistence import load_workflow, lock_instance

    _check_outside_change(actor)
    refused: CharterRefused | None = None
    with ctx.write() as session:
        instance = lock_instance(session, case_id)
        if instance.status != "running":
            return
        cached = load_workflow(ctx, session, instance)
        refusals = cancel_refusals(cached.live.charter_facts(), cached.snapshot,
                                   _acquisition_task_seen(session, case_id, cached.live),
                                   images_attached(session, case_id))
        if refusals:
            refused = _refusal(refusals, "annulation du dossier")
        else:
            cached.live.cancel()
            saved = save_workflow(ctx, session, instance, cached.live, cached.snapshot, actor, [
                audit.AuditEntry(actor.user_id, "instance.cancelled", case_id, {"reason": reason})],
                end_as="cancelled")
            session.commit()
    if refused is not None:
        ctx.live_cache.put(case_id, cached)  # unchanged by the refused attempt
        record_refusal(ctx, case_id, actor, refused, "cancel")
        raise refused
    ctx.live_cache.put(case_id, saved)


def _acquisition_task_seen(session: Any, case_id: int, live: Any) -> bool:
    specs = [name for name, role in getattr(live.definition, "charter_roles", {}).items() if role == "acquisition"]
    return bool(specs) and session.execute(select(Task.id).where(
        Task.instance_id == case_id, Task.spec_name.in_(specs)).limit(1)).first() is not None


# What the hospital's systems may correct in a running case: the order's content and the patient's traits. What
# the case's own steps recorded (who requested, which radiologist, the report, the facts...) is never amended.
AMENDABLE_FIELDS = frozenset({"patient", *INDICATION_FIELDS, *ORDER_FIELDS, "ris_order"})


def _check_outside_change(actor: Actor, values: dict[str, Any] | None = None) -> None:
    """Amending or cancelling a case from outside its steps is for the hospital's systems (or administrators)."""
    if not (actor.is_interface or "administrator" in actor.roles):
        raise Forbidden("Un dossier ne se modifie ou ne s'annule de l'extérieur que par le système d'information de "
                        "l'établissement ou un administrateur ; les cliniciens passent par les étapes du dossier.")
    fixed = sorted(set(values or {}) - AMENDABLE_FIELDS)
    if fixed:
        raise Forbidden(f"Ces données du dossier ne se modifient pas de l'extérieur : {', '.join(fixed)}.")


def _refusal(refusals: list[gates.Refusal], step: str) -> CharterRefused:
    return CharterRefused(gates.describe(refusals, step), [(r.rule, r.message) for r in refusals])


def amend_case(ctx: EngineContext, actor: Actor, case_id: int, values: dict[str, Any], reason: str) -> bool:
    """Update what a running case knows (e.g. patient traits corrected by the RIS); False if it has ended.

    Identity traits after the identity check (or the justification), modality or indication after the
    justification, cannot be changed from outside any more: CharterRefused with the reason, traced on the case
    (engine.services.case_changes). An INS with a wrong key is refused (FormValidationError, by field)."""
    from engine.services.persistence import load_workflow, lock_instance

    _check_outside_change(actor, values)
    problems = data_problems(values, paris_date(ctx.clock.now()))
    if problems:
        raise FormValidationError(problems)
    refused: CharterRefused | None = None
    with ctx.write() as session:
        instance = lock_instance(session, case_id)
        if instance.status != "running":
            return False
        cached = load_workflow(ctx, session, instance)
        refusals = amendment_refusals(cached.live.charter_facts(), cached.live.latest_data(), values)
        if refusals:
            refused = _refusal(refusals, "modification du dossier")
        else:
            cached.live.update_data(values)
            saved = save_workflow(ctx, session, instance, cached.live, cached.snapshot, actor, [
                audit.AuditEntry(actor.user_id, "case.amended", case_id, {"fields": sorted(values),
                                                                          "reason": reason})])
            session.commit()
    if refused is not None:
        ctx.live_cache.put(case_id, cached)  # unchanged by the refused attempt
        record_refusal(ctx, case_id, actor, refused, "amend")
        raise refused
    ctx.live_cache.put(case_id, saved)
    return True


def check_amendment(ctx: EngineContext, actor: Actor, case_id: int, values: dict[str, Any]) -> None:
    """Refuse (CharterRefused, traced) an amendment amend_case would refuse, without writing anything: lets a
    message that amends several cases be refused whole before any of them is changed."""
    from engine.services.persistence import load_workflow, lock_instance

    _check_outside_change(actor, values)
    with ctx.read() as session:
        instance = lock_instance(session, case_id)
        if instance.status != "running":
            return
        cached = load_workflow(ctx, session, instance)
        refusals = amendment_refusals(cached.live.charter_facts(), cached.live.latest_data(), values)
    ctx.live_cache.put(case_id, cached)
    if refusals:
        refused = _refusal(refusals, "modification du dossier")
        record_refusal(ctx, case_id, actor, refused, "amend")
        raise refused


def cases_for_patient(ctx: EngineContext, site_id: str, patient_ref: str) -> list[int]:
    """Running cases of a site for a patient identifier of that site (e.g. PID-3 of the RIS)."""
    with ctx.read() as session:
        return list(session.execute(select(ProcessInstance.id).where(
            ProcessInstance.site_id == site_id, ProcessInstance.patient_ref == patient_ref,
            ProcessInstance.status == "running").order_by(ProcessInstance.id)).scalars())


def case_by_accession(ctx: EngineContext, accession_number: str) -> int | None:
    with ctx.read() as session:
        return session.execute(select(ProcessInstance.id).where(
            ProcessInstance.accession_number == accession_number).order_by(ProcessInstance.id.desc())
            .limit(1)).scalar_one_or_none()


def case_by_study_uid(ctx: EngineContext, study_uid: str) -> int | None:
    """The newest running case whose data names this DICOM Study Instance UID (``study_instance_uid``, e.g. from
    the RIS order). The state text is searched first, then the case data of each candidate is checked."""
    if not study_uid or len(study_uid) > 64 or not study_uid.replace(".", "").isdigit():
        return None
    with ctx.read() as session:
        candidates = session.execute(select(ProcessInstance.id).where(
            ProcessInstance.status == "running", ProcessInstance.state.contains(f'"{study_uid}"', autoescape=True))
            .order_by(ProcessInstance.id.desc()).limit(20)).scalars().all()
    for candidate in candidates:
        if case_data(ctx, candidate).get("study_instance_uid") == study_uid:
            return int(candidate)
    return None
