"""The per-case facts the quality indicators read (table ``case_indicator``, engine.store.indicator_models).

Before computing, ``refresh_facts`` rebuilds the facts of the period's cases that are new or whose version changed
since they were read (every save of a case bumps its version: a completed task, a fired timer, an amendment). Each
rebuild is one INSERT ... SELECT that reduces the cases' tasks to their moments and counts (GROUP BY case), reads
their timer events from the audit trail, and their requested modality and refusal reason from their saved state,
in the transaction that deletes the old rows. Finding the stale cases reads an index only (process_instance
started_at, process_id, version). The first call on a large database builds every case of the period once;
later calls rebuild only the cases saved since.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from engine.services.context import EngineContext
from engine.services.indicators_sql import (
    CASE_PROCESSES,
    FACTS,
    INSTANCE,
    TASK,
    seconds_between,
    utc,
    week_number_of,
)
from engine.store.models import AuditEvent, table_of

AUDIT = table_of(AuditEvent)
CHUNK = 500
# The worker keeps the facts of the cases of this span current (the longest period the indicators show: two
# years), so that a dashboard or an audit report seldom has any to rebuild.
KEPT_CURRENT = timedelta(days=2 * 366)
MODALITY_CODES = ("CT", "MR", "US", "XR", "MG")
REFUSAL_REASONS = ("insufficient_information", "inappropriate_images", "insufficient_quality")
# Offer level after the last acceptance timeout that fired (audit "timer.fired", setting of the accept timer).
TIER_AFTER = {"accept_oncall": 1, "accept_tier1": 2, "accept_tier2": 3, "accept_tier3": 4, "accept_tier4": 4}


def _spec(name: str | Sequence[str], completed: bool = False) -> ColumnElement[bool]:
    names = (name,) if isinstance(name, str) else tuple(name)
    condition = TASK.c.spec_name.in_(names)
    return and_(condition, TASK.c.status == "completed") if completed else condition


def _count(name: str | Sequence[str], completed: bool = False) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((_spec(name, completed), 1), else_=0)), 0)


def _data_value(values: Sequence[str], key: str) -> ColumnElement[Any]:
    """The first of `values` found as `key` in the case data (the saved state is compact JSON, written by orjson)."""
    return case(*[(INSTANCE.c.state.like(f'%"{key}":"{value}"%'), value) for value in values], else_=None)


def _timer_facts(ids: Sequence[int]) -> Any:
    detail = AUDIT.c.detail
    tier = case(*[(detail.like(f'%"setting": "{name}"%'), level) for name, level in TIER_AFTER.items()], else_=0)
    return (select(AUDIT.c.instance_id.label("case_id"), func.max(tier).label("tier_after"),
                   func.max(case((detail.like('%"timer": "report_due"%'), 1), else_=0)).label("report_late"),
                   func.max(case((detail.like('%"timer": "te_answer_due"%'), 1), else_=0)).label("te_late"))
            .where(AUDIT.c.instance_id.in_(list(ids)), AUDIT.c.action == "timer.fired")
            .group_by(AUDIT.c.instance_id).subquery("timer_facts"))


def _facts_of(ids: Sequence[int]) -> Any:
    timers = _timer_facts(ids)
    data = (select(INSTANCE.c.id.label("case_id"), _data_value(MODALITY_CODES, "modality").label("modality"),
                   _data_value(REFUSAL_REASONS, "refusal_reason").label("refusal_reason"))
            .where(INSTANCE.c.id.in_(list(ids))).subquery("case_data"))  # each state matched once
    columns = {
        "case_id": INSTANCE.c.id, "version": INSTANCE.c.version, "process_id": INSTANCE.c.process_id,
        "site_id": INSTANCE.c.site_id, "urgency": INSTANCE.c.urgency, "status": INSTANCE.c.status,
        "started_at": INSTANCE.c.started_at, "week_number": week_number_of(INSTANCE.c.started_at),
        "modality": data.c.modality,
        "refusal_reason": data.c.refusal_reason,
        "radiologist": func.max(case((_spec(("interpret", "te_report"), True), TASK.c.ended_by))),
        "sent_at": func.min(case((_spec(("request", "te_request"), True), TASK.c.ended_at))),
        "offer_at": func.min(case((_spec("accept_case"), TASK.c.created_at))),
        "accepted_at": func.max(case((_spec("accept_case", True), TASK.c.ended_at))),
        "accepted": _count("justify"),  # only an accepted case reaches the justification
        "reading_at": func.min(case((_spec("interpret"), TASK.c.created_at))),
        "released_at": func.min(case((_spec("acknowledge_report"), TASK.c.created_at))),
        "acknowledged_at": func.max(case((_spec("acknowledge_report", True), TASK.c.ended_at))),
        "answered_at": func.min(case((_spec("te_report", True), TASK.c.ended_at))),
        "more_info": _count("provide_information"), "urgent_findings": _count("record_phone_call"),
        "phone_calls": _count("record_phone_call", True), "announcements": _count("propose_announcement"),
        "announcements_confirmed": _count("confirm_announcement_plan", True),
        "refusals": _count("state_refusal", True), "refusal_visits": _count("plan_site_visit"),
        "refusal_fallbacks": _count("apply_fallback"), "te_loops": _count("te_complete_file"),
        "difficulties": _count("review_difficulty"), "no_radiologist": _count("no_radiologist_alert"),
        "tier_after": func.coalesce(func.max(timers.c.tier_after), 0),
        "report_late": func.coalesce(func.max(timers.c.report_late), 0),
        "te_late": func.coalesce(func.max(timers.c.te_late), 0),
    }
    sent = func.coalesce(columns["sent_at"], INSTANCE.c.started_at)
    columns.update({
        "turnaround_minutes": seconds_between(sent, columns["released_at"]) / 60.0,
        "report_minutes": seconds_between(columns["reading_at"], columns["released_at"]) / 60.0,
        "acceptance_minutes": case((columns["accepted"] > 0,
                                    seconds_between(columns["offer_at"], columns["accepted_at"]) / 60.0)),
        "acknowledgement_minutes": seconds_between(columns["released_at"], columns["acknowledged_at"]) / 60.0,
        "answer_minutes": seconds_between(sent, columns["answered_at"]) / 60.0,
    })
    statement = (select(*[expr.label(name) for name, expr in columns.items()])
                 .select_from(INSTANCE.join(data, data.c.case_id == INSTANCE.c.id)
                              .outerjoin(TASK, TASK.c.instance_id == INSTANCE.c.id)
                              .outerjoin(timers, timers.c.case_id == INSTANCE.c.id))
                 .where(INSTANCE.c.id.in_(list(ids)))
                 .group_by(INSTANCE.c.id, INSTANCE.c.version, INSTANCE.c.process_id, INSTANCE.c.site_id,
                           INSTANCE.c.urgency, INSTANCE.c.status, INSTANCE.c.started_at, data.c.modality,
                           data.c.refusal_reason))
    return list(columns), statement


def stale_cases(ctx: EngineContext, since: datetime, until: datetime) -> list[int]:
    """The period's cases with no facts yet, or facts read at another version. Facts are read at a version the case
    had, never a later one: when the period's cases and facts are as many with the same sum of versions, every
    fact is current (two aggregates, the usual answer), else the cases are compared one by one."""
    period = (INSTANCE.c.started_at >= utc(since), INSTANCE.c.started_at < utc(until),
              INSTANCE.c.process_id.in_(CASE_PROCESSES))
    with ctx.read() as session:
        cases = session.execute(select(func.count(), func.sum(INSTANCE.c.version)).where(*period)).one()
        facts = session.execute(select(func.count(), func.sum(FACTS.c.version)).where(
            FACTS.c.started_at >= utc(since), FACTS.c.started_at < utc(until),
            FACTS.c.process_id.in_(CASE_PROCESSES))).one()
        if tuple(cases) == tuple(facts):
            return []
        return list(session.execute(
            select(INSTANCE.c.id).select_from(INSTANCE.outerjoin(FACTS, FACTS.c.case_id == INSTANCE.c.id))
            .where(INSTANCE.c.started_at >= utc(since), INSTANCE.c.started_at < utc(until),
                   INSTANCE.c.process_id.in_(CASE_PROCESSES),
                   or_(FACTS.c.case_id.is_(None), FACTS.c.version != INSTANCE.c.version))).scalars())


def refresh_facts(ctx: EngineContext, since: datetime, until: datetime) -> int:
    """Rebuild the facts of the period's stale cases; returns how many were rebuilt. A chunk another process
    rebuilt at the same moment is left to it."""
    ids = stale_cases(ctx, since, until)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        names, statement = _facts_of(chunk)
        try:
            with ctx.write() as session:
                session.execute(delete(FACTS).where(FACTS.c.case_id.in_(chunk)))
                session.execute(insert(FACTS).from_select(names, statement))
                session.commit()
        except IntegrityError:
            continue  # rebuilt concurrently: those rows are as fresh as ours
    return len(ids)


def refresh_recent_facts(ctx: EngineContext) -> int:
    """Run by the worker every few minutes: the facts of the last two years' changed cases rebuilt (two aggregates
    when nothing changed)."""
    now = ctx.clock.now()
    return refresh_facts(ctx, now - KEPT_CURRENT, now + timedelta(days=1))
