"""Running cases move to a new version of their process only when safe, one audited transaction per case (CH-9.1).

Diagrams: tests/data/bpmn/migration/ (submit -> review with a boundary timer -> call activity "acknowledge"),
each new version made by editing the text of the first one.
"""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from engine.domain.actors import Actor
from engine.errors import Conflict, Forbidden, NotFound
from engine.ports import FakeClock
from engine.runtime import Bundle, Runtime, bundles_from_library, using_clock
from engine.runtime.migration import Blocker, migration_blockers
from engine.services.audit import verify_audit
from engine.services.case_migration import CaseMigration, migrate_cases, plan_migration
from engine.services.definitions import deploy_definition
from engine.services.instances import cancel_instance, start_instance
from engine.services.tasks import claim_task, complete_task, list_tasks
from engine.services.timers import fire_due_timers
from engine.store.models import AuditEvent, ProcessInstance, Task, Timer
from tests.conftest import DATA, engine_test_operations

MIGRATION = DATA / "bpmn" / "migration"
DESIGNER = Actor("designer", frozenset({"process_designer"}))
ADMIN = Actor("admin", frozenset({"administrator"}))
REQUESTER = Actor("dr.martin", frozenset({"requester"}), frozenset({"site-a"}))
RADIOLOGIST = Actor("dr.rad", frozenset({"radiologist"}), frozenset({"site-a"}))
SUBMIT = {"accepted": True, "urgency": "urgent", "accession_number": "ACC-1"}

RELABEL_SUBMIT = ('name="Submit the request"', 'name="Soumettre la demande"')
RELABEL_REVIEW = ('name="Review the case"', 'name="Relire le dossier"')
ADD_AFTER_REVIEW = [
    ('<bpmn:sequenceFlow id="f_review_call" sourceRef="review" targetRef="call_ack" />',
     '<bpmn:sequenceFlow id="f_review_call" sourceRef="review" targetRef="double_check" />\n'
     '    <bpmn:userTask id="double_check" name="Second look" />\n'
     '    <bpmn:sequenceFlow id="f_check_call" sourceRef="double_check" targetRef="call_ack" />'),
    ("<bpmn:flowNodeRef>call_ack</bpmn:flowNodeRef>",
     "<bpmn:flowNodeRef>call_ack</bpmn:flowNodeRef><bpmn:flowNodeRef>double_check</bpmn:flowNodeRef>"),
]
REVIEW_FORM = [('<bpmn:userTask id="review" name="Review the case" />',
                '<bpmn:userTask id="review" name="Review the case"><bpmn:extensionElements><spiffworkflow:properties>'
                '<spiffworkflow:property name="formJsonSchemaFilename" value="bench_step.schema.json" />'
                "</spiffworkflow:properties></bpmn:extensionElements></bpmn:userTask>")]
REMOVE_REVIEW = [
    ('targetRef="review" />', 'targetRef="call_ack" />'),
    (re.compile(r'<bpmn:userTask id="review".*?<bpmn:sequenceFlow id="f_review_call"[^>]*/>', re.S), ""),
    (re.compile(r"<bpmn:flowNodeRef>(review|review_timeout|escalate|end_late)</bpmn:flowNodeRef>"), ""),
    (re.compile(r'<bpmndi:BPMNShape id="review_di".*?</bpmndi:BPMNShape>', re.S), ""),
]


def library(flow_edits=(), ack_edits=()) -> dict[str, str]:
    files = {p.name: p.read_text(encoding="utf-8") for p in MIGRATION.glob("*.bpmn")}
    for name, edits in (("mig_flow.bpmn", flow_edits), ("mig_ack.bpmn", ack_edits)):
        for old, new in edits:
            files[name] = old.sub(new, files[name]) if isinstance(old, re.Pattern) else files[name].replace(old, new)
    return files


def bundle(flow_edits=(), ack_edits=()) -> Bundle:
    (found,) = bundles_from_library(library(flow_edits, ack_edits))
    return found


def deploy(ctx, flow_edits=(), ack_edits=()) -> int:
    return deploy_definition(ctx, DESIGNER, bundle(flow_edits, ack_edits)).definition_id


def engine_flow_bundle() -> Bundle:
    (found,) = bundles_from_library({p.name: p.read_text(encoding="utf-8")
                                     for p in (DATA / "bpmn").glob("engine_*.bpmn")})
    return found


def task_of(ctx, actor, case_id):
    (task,) = [t for t in list_tasks(ctx, actor) if t.instance_id == case_id]
    return task


def start_case(ctx, at: str = "submit") -> int:
    """A case standing at `submit`, `review` or `acknowledge` (inside the call activity)."""
    case_id = start_instance(ctx, REQUESTER, "mig_flow", {"accession_number": None}, site_id="site-a")
    if at in ("review", "acknowledge"):
        complete_task(ctx, REQUESTER, task_of(ctx, REQUESTER, case_id).id, dict(SUBMIT))
    if at == "acknowledge":
        complete_task(ctx, RADIOLOGIST, task_of(ctx, RADIOLOGIST, case_id).id, {})
    return case_id


def case_row(ctx, case_id):
    with ctx.read() as session:
        row = session.get(ProcessInstance, case_id)
        return row.definition_id, row.version, row.status, row.state


def events(ctx, case_id, action):
    with ctx.read() as session:
        rows = session.execute(select(AuditEvent).where(AuditEvent.instance_id == case_id,
                                                        AuditEvent.action == action)).scalars().all()
        return [(row.chain, row.actor, json.loads(row.detail)) for row in rows]


def element_ids(migration: CaseMigration) -> set[str]:
    return {b.element_id for b in migration.blockers}


@pytest.mark.charter("CH-9.1")
def test_case_moves_when_the_new_version_adds_a_step_ahead_and_relabels_done_ones_then_finishes_on_it(ctx, clock):
    v1 = deploy(ctx)
    moving, staying = start_case(ctx, "review"), start_case(ctx, "submit")
    review = task_of(ctx, RADIOLOGIST, moving)
    claim_task(ctx, RADIOLOGIST, review.id)
    with ctx.read() as session:
        timer_before = session.execute(select(Timer.id, Timer.due_at).where(Timer.instance_id == moving)).one()
    v2 = deploy(ctx, [RELABEL_SUBMIT, RELABEL_REVIEW, *ADD_AFTER_REVIEW])
    _, version_before, _, _ = case_row(ctx, moving)

    assert plan_migration(ctx, v1, v2) == [CaseMigration(moving, 1, 2, ()), CaseMigration(staying, 1, 2, ())]
    assert case_row(ctx, moving)[:2] == (v1, version_before)  # a dry run writes nothing

    (result,) = migrate_cases(ctx, DESIGNER, v1, v2, [moving])
    assert result == CaseMigration(moving, 1, 2, ()) and result.safe
    definition_id, version, status, _ = case_row(ctx, moving)
    assert (definition_id, version, status) == (v2, version_before + 1, "running")
    assert case_row(ctx, staying)[0] == v1  # only the cases asked for move
    moved = task_of(ctx, RADIOLOGIST, moving)
    # same open task (id, claim), its row retitled from the new version
    assert (moved.id, moved.title, moved.assignee) == (review.id, "Relire le dossier", RADIOLOGIST.user_id)
    with ctx.read() as session:
        assert session.execute(select(Timer.id, Timer.due_at).where(Timer.instance_id == moving)).one() \
            == timer_before  # the boundary timer keeps its due time
    assert events(ctx, moving, "instance.migrated") == [
        (moving, DESIGNER.user_id, {"from_version": 1, "to_version": 2, "definition_id": v2})]
    assert ctx.live_cache.take(moving, version) is None  # dropped: reloaded on its new version

    complete_task(ctx, RADIOLOGIST, review.id, {})
    second_look = task_of(ctx, RADIOLOGIST, moving)
    assert (second_look.spec_name, second_look.title) == ("double_check", "Second look")  # the step v2 added
    complete_task(ctx, RADIOLOGIST, second_look.id, {})
    complete_task(ctx, REQUESTER, task_of(ctx, REQUESTER, moving).id, {})
    assert case_row(ctx, moving)[2] == "completed"
    checked, problems = verify_audit(ctx)
    assert problems == [] and checked > 0


def test_timer_armed_before_the_migration_fires_on_the_new_version(ctx, clock):
    v1 = deploy(ctx)
    case_id = start_case(ctx, "review")
    v2 = deploy(ctx, [RELABEL_REVIEW, *ADD_AFTER_REVIEW, ("Handle the late review", "Traiter le retard")])
    assert migrate_cases(ctx, ADMIN, v1, v2, [case_id])[0].safe
    clock.advance(hours=2)
    assert fire_due_timers(ctx).instances == [case_id]
    late = task_of(ctx, RADIOLOGIST, case_id)
    assert (late.spec_name, late.title) == ("escalate", "Traiter le retard")
    complete_task(ctx, RADIOLOGIST, late.id, {})
    assert case_row(ctx, case_id)[2] == "completed"
    assert verify_audit(ctx)[1] == []


@pytest.mark.charter("CH-9.1", negative=True)
def test_removed_active_task_blocks_the_case_and_nothing_is_written(ctx):
    v1 = deploy(ctx)
    blocked, early = start_case(ctx, "review"), start_case(ctx, "submit")
    v2 = deploy(ctx, REMOVE_REVIEW)
    before = case_row(ctx, blocked)

    plan = {m.case_id: m for m in plan_migration(ctx, v1, v2)}
    assert not plan[blocked].safe and {"review", "review_timeout"} <= element_ids(plan[blocked])
    assert all(b.message and "n'existe plus" in b.message for b in plan[blocked].blockers
               if b.element_id == "review")
    assert plan[early].safe  # review was not reached yet: that case may take the shorter path

    (result,) = migrate_cases(ctx, DESIGNER, v1, v2, [blocked])
    assert result.blockers == plan[blocked].blockers
    assert case_row(ctx, blocked) == before  # definition, version counter and state unchanged
    assert events(ctx, blocked, "instance.migrated") == []
    assert task_of(ctx, RADIOLOGIST, blocked).title == "Review the case"

    (moved,) = migrate_cases(ctx, ADMIN, v1, v2, [early])
    assert moved.safe
    complete_task(ctx, REQUESTER, task_of(ctx, REQUESTER, early).id, dict(SUBMIT))
    assert task_of(ctx, REQUESTER, early).spec_name == "acknowledge"  # straight to the call activity
    assert verify_audit(ctx)[1] == []


@pytest.mark.charter("CH-9.1", negative=True)
def test_changed_form_of_the_active_task_blocks(ctx):
    v1 = deploy(ctx)
    blocked, early = start_case(ctx, "review"), start_case(ctx, "submit")
    v2 = deploy(ctx, REVIEW_FORM)
    before = case_row(ctx, blocked)
    plan = {m.case_id: m for m in plan_migration(ctx, v1, v2)}
    assert plan[early].safe
    (blocker,) = plan[blocked].blockers
    assert blocker.element_id == "review" and "formulaire" in blocker.message
    assert migrate_cases(ctx, DESIGNER, v1, v2, [blocked]) == [plan[blocked]]
    assert case_row(ctx, blocked) == before
    assert events(ctx, blocked, "instance.migrated") == []


@pytest.mark.charter("CH-9.1")
def test_case_inside_a_call_activity(ctx):
    v1 = deploy(ctx)
    case_id = start_case(ctx, "acknowledge")
    relabelled = deploy(ctx, [*ADD_AFTER_REVIEW], [("Acknowledge the report", "Prendre connaissance du compte rendu")])
    other_lane = deploy(ctx, (), [('name="requester"', 'name="radiologist"')])
    (blocked,) = plan_migration(ctx, v1, other_lane)
    assert "acknowledge" in element_ids(blocked)  # the open task of the called process changed role

    # review (done) now leads elsewhere: a changed outgoing flow of a completed task is fine
    assert migrate_cases(ctx, DESIGNER, v1, relabelled, [case_id]) == [CaseMigration(case_id, 1, 2, ())]
    task = task_of(ctx, REQUESTER, case_id)
    assert (task.spec_name, task.title) == ("acknowledge", "Prendre connaissance du compte rendu")
    complete_task(ctx, REQUESTER, task.id, {})
    assert case_row(ctx, case_id)[2] == "completed"


def test_a_case_is_checked_again_when_migrated(ctx):
    v1 = deploy(ctx)
    first, cancelled = start_case(ctx, "review"), start_case(ctx, "review")
    v2 = deploy(ctx, [RELABEL_REVIEW])
    assert all(m.safe for m in plan_migration(ctx, v1, v2))
    cancel_instance(ctx, ADMIN, cancelled, "commande annulée")
    results = migrate_cases(ctx, DESIGNER, v1, v2, [first, first, cancelled, 999_999])
    assert [(m.case_id, m.safe) for m in results] == [(first, True), (cancelled, False), (999_999, False)]
    assert "plus en cours" in results[1].blockers[0].message
    (again,) = migrate_cases(ctx, DESIGNER, v1, v2, [first])  # already moved: no longer on v1
    assert not again.safe and "version 1" in again.blockers[0].message
    assert len(events(ctx, first, "instance.migrated")) == 1
    assert plan_migration(ctx, v1, v2) == []  # no running case left on v1
    # and back: a migration may go to an older version when that is safe too
    assert migrate_cases(ctx, DESIGNER, v2, v1, [first])[0].safe
    assert task_of(ctx, RADIOLOGIST, first).title == "Review the case"


@pytest.mark.charter("CH-9.1", negative=True)
def test_only_designers_and_administrators_migrate(ctx):
    v1 = deploy(ctx)
    case_id = start_case(ctx, "review")
    v2 = deploy(ctx, [RELABEL_REVIEW])
    before = case_row(ctx, case_id)
    for actor in (RADIOLOGIST, Actor("auditor", frozenset({"auditor"})), Actor.system()):
        with pytest.raises(Forbidden):
            migrate_cases(ctx, actor, v1, v2, [case_id])
    assert case_row(ctx, case_id) == before
    with ctx.read() as session:
        assert session.execute(select(func.count()).select_from(Task).where(
            Task.instance_id == case_id, Task.title == "Relire le dossier")).scalar() == 0


def test_versions_of_different_processes_or_unknown_versions_are_refused(ctx):
    mig = deploy(ctx)
    engine_flow = deploy_definition(ctx, DESIGNER, engine_flow_bundle()).definition_id
    start_case(ctx, "review")
    with pytest.raises(Conflict, match="mig_flow"):
        plan_migration(ctx, mig, engine_flow)
    with pytest.raises(Conflict):
        migrate_cases(ctx, DESIGNER, mig, engine_flow, [1])
    with pytest.raises(Conflict):
        plan_migration(ctx, mig, mig)
    with pytest.raises(NotFound):
        plan_migration(ctx, mig, 424242)


# The rule itself, on workflows in memory (no database).

def runtime_and_case(at: str):
    runtime = Runtime(engine_test_operations(), {"escalation": {"review": "PT1H"}})
    clock = FakeClock()
    with using_clock(clock):
        live = runtime.start(bundle(), {"accession_number": None})
        if at in ("review", "acknowledge"):
            live.complete_user_task(live.snapshot().user_tasks[0].task_id, dict(SUBMIT))
        if at == "acknowledge":
            live.complete_user_task(live.snapshot().user_tasks[0].task_id, {})
    return runtime, runtime.dump(live)


def blockers(at: str, flow_edits=(), ack_edits=(), new: Bundle | None = None) -> list[Blocker]:
    runtime, state = runtime_and_case(at)
    target = new or bundle(flow_edits, ack_edits)
    return migration_blockers(state, runtime.definition(bundle()), runtime.definition(target), runtime)


def test_labels_are_not_changes_even_of_a_waiting_timer():
    named_timer = ('attachedToRef="review"', 'attachedToRef="review" name="Délai de relecture"')
    documented = ('<bpmn:userTask id="review" name="Review the case" />',
                  '<bpmn:userTask id="review" name="Relire"><bpmn:documentation>Aide</bpmn:documentation>'
                  "</bpmn:userTask>")
    assert blockers("review", [named_timer, documented, RELABEL_SUBMIT]) == []


def test_a_lane_is_compared_through_its_role():
    renamed = [('<bpmn:lane id="mig_lane_radiologist" name="radiologist">',
                '<bpmn:lane id="mig_lane_radiologist" name="Radiologue"><bpmn:extensionElements>'
                '<spiffworkflow:properties><spiffworkflow:property name="role" value="radiologist" />'
                "</spiffworkflow:properties></bpmn:extensionElements>")]
    assert blockers("review", renamed) == []
    other_role = [(old, new.replace('value="radiologist"', 'value="requester"')) for old, new in renamed]
    found = {b.element_id: b.message for b in blockers("review", other_role)}
    assert "rôle" in found["review"] and "review_timeout" in found  # the open task and its waiting timer
    assert blockers("submit", other_role) == []  # the radiologist lane has not been reached yet


def test_changed_timer_of_an_active_task_and_a_timer_added_to_it_block():
    (changed,) = blockers("review", [('escalation["review"]', 'escalation["review"] if True else "PT2H"')])
    assert changed.element_id == "review_timeout"
    added_timer = [('<bpmn:sequenceFlow id="f_submit_review"',
                    '<bpmn:boundaryEvent id="submit_late" attachedToRef="submit" cancelActivity="false">'
                    '<bpmn:timerEventDefinition id="submit_late_def"><bpmn:timeDuration xsi:type="bpmn:'
                    'tFormalExpression">"PT4H"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>'
                    '<bpmn:sequenceFlow id="f_submit_late" sourceRef="submit_late" targetRef="end_late" />'
                    '<bpmn:sequenceFlow id="f_submit_review"')]
    assert "submit" in {b.element_id for b in blockers("submit", added_timer)}
    assert blockers("review", added_timer) == []  # submit is done: its new timer concerns later cases only


def test_a_completed_task_that_changed_blocks():
    other_form = [('value="test_submit.schema.json"', 'value="bench_step.schema.json"')]
    (blocker,) = blockers("review", other_form)
    assert blocker.element_id == "submit" and "déjà faite" in blocker.message


def test_another_process_or_an_unreadable_state_blocks():
    runtime, state = runtime_and_case("review")
    (other,) = migration_blockers(state, runtime.definition(bundle()), runtime.definition(engine_flow_bundle()),
                                  runtime)
    assert other.element_id == "engine_flow" and "autre processus" in other.message
    (broken,) = migration_blockers("{}", runtime.definition(bundle()), runtime.definition(bundle()), runtime)
    assert "ne peut pas être rechargé" in broken.message
