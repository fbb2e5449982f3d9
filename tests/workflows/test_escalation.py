"""Escalation settings administrators control (CH-3.3, CH-4.1.12): validation, audit, the two modes."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.domain.escalation import InvalidDuration
from engine.errors import Forbidden
from engine.services.escalation import change_setting, list_settings, preview_change
from engine.services.timers import fire_due_timers
from engine.store.models import AuditEvent, Task, Timer
from tests.workflows.conftest import REQUESTER

ADMIN = Actor("admin", frozenset({"administrator"}))


def accept_timer(ctx, case_id):
    with ctx.read() as session:
        return session.execute(select(Timer).where(Timer.instance_id == case_id)).scalar_one()


@pytest.mark.parametrize("value", ["", "15", "PT", "P0D", "PT0S", "-PT5M", "P400D", "PT30S", "P1Y", "abc"])
def test_malformed_zero_negative_or_absurd_durations_are_refused(charter_ctx, value):
    with pytest.raises(InvalidDuration):
        change_setting(charter_ctx, ADMIN, "accept_tier1", value)
    assert {s.name: s.duration for s in list_settings(charter_ctx)}["accept_tier1"] == "PT15M"


def test_only_administrators_change_settings_and_unknown_names_are_refused(charter_ctx):
    with pytest.raises(Forbidden):
        change_setting(charter_ctx, REQUESTER, "accept_tier1", "PT5M")
    with pytest.raises(InvalidDuration):
        change_setting(charter_ctx, ADMIN, "coffee_break", "PT5M")


@pytest.mark.charter("CH-3.3")
def test_timer_due_time_shows_on_the_task_and_names_its_setting(new_case, charter_ctx, clock):
    case = new_case()
    timer = accept_timer(charter_ctx, case.id)
    assert timer.setting == "accept_tier1" and (timer.due_at - clock.now()).total_seconds() == 15 * 60
    with charter_ctx.read() as session:
        task = session.execute(select(Task).where(Task.instance_id == case.id, Task.status == "open")).scalar_one()
    assert task.spec_name == "accept_case" and task.due_at == timer.due_at


@pytest.mark.charter("CH-3.3")
def test_future_mode_leaves_waiting_timers_and_applies_to_the_next_ones(new_case, charter_ctx, clock):
    first = new_case()
    before = accept_timer(charter_ctx, first.id).due_at
    preview = change_setting(charter_ctx, ADMIN, "accept_tier1", "PT5M")
    assert (preview.old, preview.new, preview.rearm) == ("PT15M", "PT5M", False)
    assert accept_timer(charter_ctx, first.id).due_at == before
    second = new_case()
    assert (accept_timer(charter_ctx, second.id).due_at - clock.now()).total_seconds() == 300
    with charter_ctx.read() as session:
        change = session.execute(select(AuditEvent).where(AuditEvent.action == "setting.changed")).scalar_one()
    detail = json.loads(change.detail)
    assert (change.actor, detail["old"], detail["new"], detail["mode"]) == ("admin", "PT15M", "PT5M", "future")


@pytest.mark.charter("CH-3.3")
def test_rearm_mode_previews_then_moves_waiting_timers_from_when_they_were_armed(new_case, charter_ctx, clock):
    case = new_case()
    armed = clock.now()
    clock.advance(minutes=7)
    other = new_case()
    preview = preview_change(charter_ctx, "accept_tier1", "PT5M", rearm=True)
    assert preview.timers == 2 and preview.cases == sorted([case.id, other.id])
    assert [o["case_id"] for o in preview.overdue] == [case.id]  # armed 7 min ago: due at once with 5 min
    change_setting(charter_ctx, ADMIN, "accept_tier1", "PT5M", rearm=True)
    moved = accept_timer(charter_ctx, case.id)
    assert (moved.due_at - armed).total_seconds() == 300 and moved.armed_at == armed
    with charter_ctx.read() as session:
        task_due = session.execute(select(Task.due_at).where(Task.instance_id == case.id,
                                                             Task.status == "open")).scalar_one()
        rearmed = session.execute(select(AuditEvent).where(AuditEvent.action == "timer.rearmed")).all()
    assert task_due == moved.due_at and len(rearmed) == 2
    clock.advance(seconds=1)
    report = fire_due_timers(charter_ctx)
    assert report.instances == [case.id]  # the overdue one moves to tier 2 at the next tick
    assert case.data["offer"]["tier"] == 2 and other.data["offer"]["tier"] == 1
