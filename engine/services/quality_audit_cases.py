"""The notable cases of a quality audit's period (CH-6.3), found by SQL where each fact is recorded:

- ``overdue``: a report past its due time, the ``report_overdue`` case notice (engine.services.notices) raised in
  the period;
- ``refusal``: a motivated refusal (CH-4.1.14), the ``state_refusal`` task of the refusal diagram completed in the
  period;
- ``tier4``: the case offered beyond tier 3 (CH-3.3: to an external teleradiology company, or, without one, to
  nobody): a ``timer.fired`` audit event of the ``accept_tier3`` delay in the period;
- ``identity_hold``: images held for an identity mismatch (CH-4.1.6, CH-8.1): a ``dicom.instance_held`` audit
  event, or a ``dicom.study_held`` one whose reason is a discordance (not the routine wait for the identity check
  or the protocol), in the period.

A case appears once per kind, at the first such fact. The rows name the case, its site, its urgency and the fact's
date, never the patient: the report page shows the patient and the link to the case only to those who may see it
(``visible_cases``, the rule of engine.services.case_visibility).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.domain.quality_audit import NOTABLE_KINDS, SITE, AuditScope
from engine.services.case_visibility import may_see_case_column
from engine.services.context import EngineContext
from engine.services.notices import REPORT_OVERDUE
from engine.store.directory_models import SiteRow
from engine.store.models import AuditEvent, CaseNotice, ProcessInstance, Task

PARIS = ZoneInfo("Europe/Paris")
REFUSAL_TASK = "state_refusal"  # workflows/bpmn/refusal.bpmn, charter role motivated_refusal
TIER4_SETTING = '"setting": "accept_tier3"'  # as engine.store.audit serialises a timer.fired event's detail
HOLD_ACTIONS = ("dicom.instance_held", "dicom.study_held")
DISCORDANCE = "identité différente"  # integrations.dicom.matching: a study held for a mismatch
INSTANCE_HOLD_REASONS = {
    "dicom.instance_held": "instance d'un autre patient, d'un autre site ou d'un autre dossier",
}
MAX_PER_KIND = 500


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, the day after end 00:00) in Paris time, as UTC instants."""
    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=PARIS).astimezone(UTC)

    return midnight(start), midnight(end + timedelta(days=1))


def _in_scope(query: Select[Any], scope: AuditScope) -> Select[Any]:
    if scope.kind == SITE:
        return query.where(ProcessInstance.site_id == scope.id)
    return query.where(ProcessInstance.site_id.in_(select(SiteRow.id).where(SiteRow.territory_id == scope.id)))


def _rows(session: Session, scope: AuditScope, fact: Select[Any]) -> list[Any]:
    query = _in_scope(fact.add_columns(ProcessInstance.site_id, ProcessInstance.urgency), scope)
    return list(session.execute(query.limit(MAX_PER_KIND * 4)).all())


def notable_cases(ctx: EngineContext, scope: AuditScope, start: date, end: date) -> list[dict[str, Any]]:
    """The period's notable cases of the site or organisation, JSON-ready, by kind then date."""
    since, until = period_bounds(start, end)
    found: dict[tuple[str, int], dict[str, Any]] = {}

    def keep(kind: str, rows: Iterable[Any], reason: Any = None) -> None:
        for row in rows:
            key = (kind, int(row.case_id))
            if key in found and found[key]["at"] <= row.at.isoformat():
                continue
            found[key] = {"kind": kind, "case_id": int(row.case_id), "at": row.at.isoformat(),
                          "site_id": row.site_id, "urgency": row.urgency,
                          "reason": reason(row) if callable(reason) else reason}

    with ctx.read() as session:
        keep("overdue", _rows(session, scope, select(
            CaseNotice.instance_id.label("case_id"), CaseNotice.created_at.label("at"))
            .join(ProcessInstance, ProcessInstance.id == CaseNotice.instance_id)
            .where(CaseNotice.kind == REPORT_OVERDUE, CaseNotice.created_at >= since, CaseNotice.created_at < until)))
        keep("refusal", _rows(session, scope, select(Task.instance_id.label("case_id"), Task.ended_at.label("at"))
                              .join(ProcessInstance, ProcessInstance.id == Task.instance_id)
                              .where(Task.spec_name == REFUSAL_TASK, Task.status == "completed",
                                     Task.ended_at >= since, Task.ended_at < until)))
        events = select(AuditEvent.instance_id.label("case_id"), AuditEvent.at.label("at"),
                        AuditEvent.action, AuditEvent.detail).join(
            ProcessInstance, ProcessInstance.id == AuditEvent.instance_id).where(
            AuditEvent.chain == AuditEvent.instance_id, AuditEvent.at >= since, AuditEvent.at < until)
        keep("tier4", _rows(session, scope, events.where(AuditEvent.action == "timer.fired",
                                                         AuditEvent.detail.contains(TIER4_SETTING))))
        holds = [row for row in _rows(session, scope, events.where(AuditEvent.action.in_(HOLD_ACTIONS)))
                 if row.action == "dicom.instance_held" or _reason(row).startswith(DISCORDANCE)]
        keep("identity_hold", holds, _reason)
    order = list(NOTABLE_KINDS)
    return sorted(found.values(), key=lambda c: (order.index(c["kind"]), c["at"], c["case_id"]))


def _reason(row: Any) -> str:
    """Why the images were held (French, names the differing traits, never their values)."""
    try:
        detail = json.loads(row.detail)
    except (TypeError, ValueError):
        return ""
    reason = detail.get("reason") if isinstance(detail, dict) else None
    return str(reason)[:200] if reason else INSTANCE_HOLD_REASONS.get(row.action, "")


def visible_cases(ctx: EngineContext, actor: Actor, case_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Of these cases, those the actor may see (CH-5.3, CH-8.1), with their patient and summary for the page:
    a case the actor may not see is absent (shown by its number only, without a link)."""
    wanted = sorted({int(c) for c in case_ids})
    if not wanted:
        return {}
    visible = may_see_case_column(actor, ProcessInstance.id)
    with ctx.read() as session:
        rows = session.execute(select(ProcessInstance.id, ProcessInstance.patient_name, ProcessInstance.summary)
                               .where(ProcessInstance.id.in_(wanted), visible)).all()
    return {row.id: {"patient_name": row.patient_name, "summary": row.summary} for row in rows}
