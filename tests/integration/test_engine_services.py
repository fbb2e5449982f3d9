"""The engine's use cases on a real database, driving the test diagram (lanes, gateway, boundary timer,
correlated message catch, call activity, service task)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from engine.domain.actors import Actor
from engine.errors import Conflict, NotFound
from engine.services.definitions import deploy_library
from engine.services.instances import start_instance
from engine.services.messages import deliver_message
from engine.services.tasks import claim_task, complete_task, list_tasks, unclaim_task
from engine.services.timers import fire_due_timers
from engine.store import audit
from engine.store.models import InboundMessage, ProcessInstance, Task, Timer
from forms import FormValidationError
from tests.conftest import DATA

REQUESTER = Actor("dr.martin", frozenset({"requester"}), frozenset({"site-a"}))
RADIOLOGIST = Actor("dr.rad", frozenset({"radiologist"}), frozenset({"site-a"}))
OTHER_SITE = Actor("dr.other", frozenset({"requester", "radiologist"}), frozenset({"site-b"}))
SUBMIT = {"accepted": True, "urgency": "urgent", "accession_number": "ACC-1"}


def only_task(ctx, actor):
    tasks = list_tasks(ctx, actor)
    assert len(tasks) == 1, tasks
    return tasks[0]


def instance_row(ctx, instance_id):
    with ctx.read() as session:
        return session.get(ProcessInstance, instance_id)


def start_and_submit(ctx, data=SUBMIT):
    instance_id = start_instance(ctx, REQUESTER, "engine_flow", {}, site_id="site-a")
    complete_task(ctx, REQUESTER, only_task(ctx, REQUESTER).id, dict(data))
    return instance_id


def test_happy_path_through_gateway_message_and_call_activity(deployed):
    ctx = deployed
    instance_id = start_and_submit(ctx)
    review = only_task(ctx, RADIOLOGIST)
    assert (review.spec_name, review.lane, review.urgency) == ("review", "radiologist", 1)
    assert list_tasks(ctx, REQUESTER) == []  # lanes route tasks to roles
    complete_task(ctx, RADIOLOGIST, review.id, {})
    with ctx.read() as session:
        assert session.execute(select(Timer)).first() is None  # the boundary timer left with its task
    delivery = deliver_message(ctx, "images_received", {"accession_number": "ACC-1"}, {"series": 3})
    assert delivery.delivered_to == (instance_id,)
    acknowledge = only_task(ctx, REQUESTER)  # inside the call activity
    assert acknowledge.spec_name == "acknowledge"
    complete_task(ctx, REQUESTER, acknowledge.id, {})
    row = instance_row(ctx, instance_id)
    assert row.status == "completed" and row.ended_at is not None
    with ctx.read() as session:
        statuses = session.execute(select(Task.spec_name, Task.status).order_by(Task.created_at)).all()
        assert sorted(statuses) == sorted([("submit", "completed"), ("review", "completed"),
                                           ("acknowledge", "completed")])
        checked, problems = audit.verify(session)
    assert problems == [] and checked >= 6


def test_declined_request_ends_at_the_gateway_default(deployed):
    instance_id = start_and_submit(deployed, {**SUBMIT, "accepted": False})
    assert instance_row(deployed, instance_id).status == "completed"
    assert list_tasks(deployed, RADIOLOGIST) == []


def test_boundary_timer_fires_only_once_due_and_only_once(deployed, clock):
    ctx = deployed
    instance_id = start_and_submit(ctx)
    clock.advance(minutes=59)
    assert fire_due_timers(ctx).fired == 0
    assert only_task(ctx, RADIOLOGIST).spec_name == "review"
    clock.advance(minutes=2)
    report = fire_due_timers(ctx)
    assert (report.fired, report.instances) == (1, [instance_id])
    assert only_task(ctx, RADIOLOGIST).spec_name == "escalate"  # interrupting: review was cancelled
    assert fire_due_timers(ctx).fired == 0
    with ctx.read() as session:
        review = session.execute(select(Task).where(Task.spec_name == "review")).scalar_one()
        assert review.status == "cancelled"
        fired = session.execute(select(audit.AuditEvent).where(audit.AuditEvent.action == "timer.fired")).all()
        assert len(fired) == 1


def test_timer_due_time_comes_from_the_escalation_setting(make_ctx, clock):
    ctx = make_ctx(escalation={"review": "PT10M"})
    deploy_library(ctx, Actor("designer"), DATA / "bpmn")
    start_and_submit(ctx)
    with ctx.read() as session:
        timer = session.execute(select(Timer)).scalar_one()
    assert timer.expression == 'escalation["review"]'
    assert (timer.due_at - clock.now()).total_seconds() == 600


def test_wrongly_correlated_message_reaches_no_instance_and_is_kept(deployed):
    ctx = deployed
    instance_id = start_and_submit(ctx)
    complete_task(ctx, RADIOLOGIST, only_task(ctx, RADIOLOGIST).id, {})
    wrong = deliver_message(ctx, "images_received", {"accession_number": "ACC-999"}, {"series": 1}, source="pacs")
    assert not wrong.delivered
    assert list_tasks(ctx, REQUESTER) == []  # still waiting for its own images
    with ctx.read() as session:
        kept = session.get(InboundMessage, wrong.message_id)
        assert (kept.status, kept.source, kept.correlation_key) == (
            "undelivered", "pacs", '{"accession_number":"ACC-999"}')
    right = deliver_message(ctx, "images_received", {"accession_number": "ACC-1"}, {"series": 1})
    assert right.delivered_to == (instance_id,)


def test_form_is_validated_before_anything_changes(deployed):
    ctx = deployed
    start_instance(ctx, REQUESTER, "engine_flow", {}, site_id="site-a")
    task = only_task(ctx, REQUESTER)
    with pytest.raises(FormValidationError) as refused:
        complete_task(ctx, REQUESTER, task.id, {"accepted": True, "urgency": "someday"})
    assert refused.value.errors == {"accession_number": "Ce champ est obligatoire.",
                                    "urgency": "Choisissez une des valeurs proposées."}
    assert only_task(ctx, REQUESTER).id == task.id


def test_other_site_cannot_see_or_complete_a_task(deployed):
    ctx = deployed
    start_instance(ctx, REQUESTER, "engine_flow", {}, site_id="site-a")
    task = only_task(ctx, REQUESTER)
    assert list_tasks(ctx, OTHER_SITE) == []
    with pytest.raises(NotFound):
        complete_task(ctx, OTHER_SITE, task.id, dict(SUBMIT))
    with pytest.raises(NotFound):
        claim_task(ctx, OTHER_SITE, task.id)


def test_claim_and_unclaim(deployed):
    ctx = deployed
    start_instance(ctx, REQUESTER, "engine_flow", {}, site_id="site-a")
    colleague = Actor("dr.durand", frozenset({"requester"}), frozenset({"site-a"}))
    task = only_task(ctx, REQUESTER)
    assert claim_task(ctx, REQUESTER, task.id).assignee == "dr.martin"
    assert list_tasks(ctx, colleague) == []
    with pytest.raises(Conflict):
        claim_task(ctx, colleague, task.id)
    with pytest.raises(Conflict, match="prise par dr.martin"):
        complete_task(ctx, colleague, task.id, dict(SUBMIT))
    unclaim_task(ctx, REQUESTER, task.id)
    complete_task(ctx, colleague, task.id, dict(SUBMIT))


def test_a_completion_committed_between_the_tasks_read_and_the_cases_read_is_a_french_conflict(deployed, make_ctx,
                                                                                                monkeypatch):
    """On PostgreSQL (read committed) the task row and the case's state are two statements: a colleague's completion
    can commit between them, so the task reads open and the state has it done. The completion reads again and says
    the task is done, in French (it said "task not found or no longer open", the runtime's words)."""
    import engine.services.tasks as tasks_module

    first, second = deployed, make_ctx()
    start_instance(first, REQUESTER, "engine_flow", {}, site_id="site-a")
    task = only_task(first, REQUESTER)
    real_load = tasks_module.load_workflow
    calls = []

    def colleague_completes_first(ctx, reader, instance):
        if ctx is second and not calls:
            calls.append(complete_task(first, REQUESTER, task.id, dict(SUBMIT)))
        return real_load(ctx, reader, instance)

    monkeypatch.setattr(tasks_module, "load_workflow", colleague_completes_first)
    with pytest.raises(Conflict, match="déjà terminée"):
        complete_task(second, REQUESTER, task.id, dict(SUBMIT))
    assert len(calls) == 1


def test_a_task_row_out_of_step_with_its_case_is_said_closed_and_logged_not_retried_forever(deployed, monkeypatch,
                                                                                             caplog):
    import engine.services.tasks as tasks_module

    start_instance(deployed, REQUESTER, "engine_flow", {}, site_id="site-a")
    task = only_task(deployed, REQUESTER)
    monkeypatch.setattr(tasks_module, "_ready_in", lambda live, task_id: False)  # the case has it done, always
    with pytest.raises(NotFound, match="plus ouverte"):
        complete_task(deployed, REQUESTER, task.id, dict(SUBMIT))
    assert any("reads open but case" in record.getMessage() for record in caplog.records)


def test_two_threads_completing_one_task_exactly_one_wins(deployed, make_ctx):
    # Two contexts: two "servers", each with its own pool and live-workflow cache.
    first, second = deployed, make_ctx()
    start_instance(first, REQUESTER, "engine_flow", {}, site_id="site-a")
    task = only_task(first, REQUESTER)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def attempt(ctx):
        barrier.wait()
        try:
            outcomes.append(complete_task(ctx, REQUESTER, task.id, dict(SUBMIT)))
        except Exception as err:  # noqa: BLE001 - the outcome is what we test
            outcomes.append(err)

    threads = [threading.Thread(target=attempt, args=(c,)) for c in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    successes = [o for o in outcomes if isinstance(o, int)]
    conflicts = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(successes) == 1 and len(conflicts) == 1, outcomes
    assert "déjà terminée" in str(conflicts[0])
    with first.read() as session:
        assert session.execute(select(Task).where(Task.spec_name == "review")).scalars().all().__len__() == 1
        completed = session.execute(
            select(audit.AuditEvent).where(audit.AuditEvent.action == "task.completed")).all()
        assert len(completed) == 1
        assert audit.verify(session)[1] == []


def _interleaved(monkeypatch, meanwhile):
    """Run `meanwhile` once, between a completion's read and its write (after the engine steps); the list
    returned counts the saves prepared (one per attempt, those of `meanwhile` included)."""
    from engine.services import tasks as task_service

    original = task_service.prepare_save
    calls = []

    def prepare_then_interfere(*args, **kwargs):
        prepared = original(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            meanwhile()
        return prepared

    monkeypatch.setattr(task_service, "prepare_save", prepare_then_interfere)
    return calls


def test_completion_chains_after_events_recorded_between_read_and_write(deployed, make_ctx, monkeypatch):
    # Another server claims and releases the task after this completion read it: the workflow did not change,
    # only the case's audit chain grew, so the completion is saved with its event chained after those.
    ctx, other = deployed, make_ctx()
    instance_id = start_instance(ctx, REQUESTER, "engine_flow", {}, site_id="site-a")
    task = only_task(ctx, REQUESTER)
    calls = _interleaved(monkeypatch, lambda: (claim_task(other, REQUESTER, task.id),
                                               unclaim_task(other, REQUESTER, task.id)))
    assert complete_task(ctx, REQUESTER, task.id, dict(SUBMIT)) == instance_id
    assert calls == [1]  # worked out once, not redone
    with ctx.read() as session:
        actions = session.execute(select(audit.AuditEvent.action).where(audit.AuditEvent.chain == instance_id)
                                  .order_by(audit.AuditEvent.seq)).scalars().all()
        assert actions[-3:] == ["task.claimed", "task.unclaimed", "task.completed"]
        assert audit.verify(session)[1] == []
        assert session.get(Task, task.id).status == "completed"
    assert only_task(ctx, RADIOLOGIST).spec_name == "review"


def test_completion_refused_when_a_colleague_claimed_the_task_between_read_and_write(deployed, make_ctx,
                                                                                    monkeypatch):
    ctx, other = deployed, make_ctx()
    colleague = Actor("dr.durand", frozenset({"requester"}), frozenset({"site-a"}))
    start_instance(ctx, REQUESTER, "engine_flow", {}, site_id="site-a")
    task = only_task(ctx, REQUESTER)
    _interleaved(monkeypatch, lambda: claim_task(other, colleague, task.id))
    with pytest.raises(Conflict, match="prise par dr.durand"):
        complete_task(ctx, REQUESTER, task.id, dict(SUBMIT))
    with ctx.read() as session:
        assert session.get(Task, task.id).status == "open"
        assert audit.verify(session)[1] == []
    complete_task(ctx, colleague, task.id, dict(SUBMIT))  # the copy changed by the refused attempt was dropped
    assert only_task(ctx, RADIOLOGIST).spec_name == "review"


def test_completion_redone_when_the_workflow_changed_between_read_and_write(deployed, make_ctx, monkeypatch):
    from engine.services.instances import amend_case

    ctx, other = deployed, make_ctx()
    instance_id = start_instance(ctx, REQUESTER, "engine_flow", {}, site_id="site-a")
    task = only_task(ctx, REQUESTER)
    calls = _interleaved(monkeypatch, lambda: amend_case(other, Actor.system(), instance_id,
                                                         {"accession_number": "ACC-AMENDED"}, "RIS"))
    version_before = instance_row(ctx, instance_id).version
    assert complete_task(ctx, REQUESTER, task.id, dict(SUBMIT)) == instance_id
    assert calls == [1, 1]  # worked out twice
    row = instance_row(ctx, instance_id)
    assert row.version == version_before + 2  # the amendment, then the completion worked out again on it
    with ctx.read() as session:
        actions = session.execute(select(audit.AuditEvent.action).where(audit.AuditEvent.chain == instance_id)
                                  .order_by(audit.AuditEvent.seq)).scalars().all()
        assert actions[-2:] == ["case.amended", "task.completed"]
        assert audit.verify(session)[1] == []
    assert only_task(ctx, RADIOLOGIST).spec_name == "review"


def test_completion_refused_when_the_task_was_completed_between_read_and_write(deployed, make_ctx, monkeypatch):
    ctx, other = deployed, make_ctx()
    start_instance(ctx, REQUESTER, "engine_flow", {}, site_id="site-a")
    task = only_task(ctx, REQUESTER)
    _interleaved(monkeypatch, lambda: complete_task(other, REQUESTER, task.id, dict(SUBMIT)))
    with pytest.raises(Conflict, match="déjà terminée"):
        complete_task(ctx, REQUESTER, task.id, dict(SUBMIT))
    with ctx.read() as session:
        completed = session.execute(
            select(audit.AuditEvent).where(audit.AuditEvent.action == "task.completed")).all()
        assert len(completed) == 1
        assert len(session.execute(select(Task).where(Task.spec_name == "review")).all()) == 1
        assert audit.verify(session)[1] == []
    assert only_task(ctx, RADIOLOGIST).spec_name == "review"  # the dropped workflow was not cached


def test_completion_tried_again_when_postgresql_reports_a_deadlock(deployed, monkeypatch):
    # PostgreSQL aborts one of two savers of a case that lock its task rows in opposite orders (SQLSTATE
    # 40P01); the completion is worked out again instead of failing. Other database errors propagate.
    import psycopg

    from engine.services import tasks as task_service

    ctx = deployed
    original = task_service.write_save
    raised: list[Exception] = []

    def deadlock_once(*args, **kwargs):
        if not raised:
            raised.append(psycopg.errors.DeadlockDetected("deadlock detected"))
            raise raised[0]
        return original(*args, **kwargs)

    monkeypatch.setattr(task_service, "write_save", deadlock_once)
    instance_id = start_instance(ctx, REQUESTER, "engine_flow", {}, site_id="site-a")
    task = only_task(ctx, REQUESTER)
    assert complete_task(ctx, REQUESTER, task.id, dict(SUBMIT)) == instance_id
    assert len(raised) == 1 and raised[0].sqlstate == "40P01"
    with ctx.read() as session:
        assert len(session.execute(
            select(audit.AuditEvent).where(audit.AuditEvent.action == "task.completed")).all()) == 1
        assert audit.verify(session)[1] == []

    def other_failure(*args, **kwargs):
        raise psycopg.errors.UniqueViolation("duplicate key")

    monkeypatch.setattr(task_service, "write_save", other_failure)
    review = only_task(ctx, RADIOLOGIST)
    with pytest.raises(psycopg.errors.UniqueViolation):
        complete_task(ctx, RADIOLOGIST, review.id, {})
    assert only_task(ctx, RADIOLOGIST).id == review.id  # nothing written


@pytest.mark.charter("CH-4.1.6", negative=True)
@pytest.mark.parametrize("bad", ["LE\x00BIHAN", "\ud800"])
def test_a_direct_start_with_a_nul_byte_or_a_lone_surrogate_is_refused_and_writes_nothing(deployed, bad):
    with pytest.raises(FormValidationError) as refused:
        start_instance(deployed, REQUESTER, "engine_flow", {"patient_name": bad}, site_id="site-a")
    assert refused.value.errors == {"patient_name": "Caractère non autorisé."}
    with deployed.read() as session:
        assert session.execute(select(func.count()).select_from(ProcessInstance)).scalar() == 0
