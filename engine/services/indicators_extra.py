"""The indicators of engine.services.indicators that do not come from the tasks: refusal reasons (case data),
image transfer (DICOM tables), technical incidents (audit trail, DICOM and HL7 tables) and on-call coverage
(on-call slots). Each is one SQL aggregate, except the coverage gaps, computed on the period's slots."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from engine.domain.indicators import uncovered_spans
from engine.domain.oncall import out_of_hours_intervals
from engine.services.context import EngineContext
from engine.services.incidents import incident_figures
from engine.services.indicators_sql import (
    DICOM_HELD_INSTANCE,
    DICOM_STUDY,
    FACTS,
    HL7_MESSAGE,
    SITE,
    case_conditions,
    seconds_between,
    utc,
)
from engine.store.directory_models import OnCallSlotRow, TerritoryRow
from engine.store.models import AuditEvent, table_of

AUDIT = table_of(AuditEvent)
INCIDENT_ACTIONS = ("instance.failed", "dicom.priors_failed", "dicom.original_study_failed")


def _of_cases(statement: Any, case_id: Any, filters: Any, since: datetime, until: datetime) -> Any:
    """`statement` restricted to the rows of the counted cases: joined to their facts by case, so that the (usually
    few) rows of the adapter's table drive the query, not the period's cases."""
    return statement.join_from(case_id.table, FACTS, FACTS.c.case_id == case_id).where(
        *case_conditions(filters, since, until))


def image_transfer(ctx: EngineContext, filters: Any, since: datetime, until: datetime) -> dict[str, Any]:
    """Studies attached to the cases: time from first to last instance received, and the wait for the study to
    be stable (last instance -> the case notified of its images)."""
    transfer = seconds_between(DICOM_STUDY.c.first_received_at, DICOM_STUDY.c.last_received_at)
    stability = seconds_between(DICOM_STUDY.c.last_received_at, DICOM_STUDY.c.notified_at)
    statement = _of_cases(select(func.count().label("studies"), func.avg(transfer).label("mean"),
                                 func.max(transfer).label("max"),
                                 func.count(DICOM_STUDY.c.notified_at).label("notified"),
                                 func.avg(stability).label("stability")),
                          DICOM_STUDY.c.case_id, filters, since, until)
    with ctx.read() as session:
        row = session.execute(statement).one()
    return {"studies": int(row.studies or 0),
            "mean_transfer_seconds": round(float(row.mean), 1) if row.mean is not None else None,
            "max_transfer_seconds": round(float(row.max), 1) if row.max is not None else None,
            "notified": int(row.notified or 0),
            "mean_stability_seconds": round(float(row.stability), 1) if row.stability is not None else None}


def technical_incidents(ctx: EngineContext, filters: Any, since: datetime, until: datetime, difficulties: int,
                        failed_cases: int) -> dict[str, int]:
    """What the system records as technical trouble today (docs/indicators.md)."""
    with ctx.read() as session:
        events = dict(session.execute(_of_cases(
            select(AUDIT.c.action, func.count()).where(AUDIT.c.action.in_(INCIDENT_ACTIONS), AUDIT.c.at >= utc(since)),
            AUDIT.c.instance_id, filters, since, until).group_by(AUDIT.c.action)).tuples().all())
        held_studies = session.execute(_of_cases(
            select(func.count()).where(DICOM_STUDY.c.status.in_(("held", "rejected"))),
            DICOM_STUDY.c.case_id, filters, since, until)).scalar_one()
        held_instances = session.execute(_of_cases(select(func.count()), DICOM_HELD_INSTANCE.c.case_id, filters,
                                                   since, until)).scalar_one()
        hl7 = select(func.count()).where(HL7_MESSAGE.c.direction == "in",
                                         HL7_MESSAGE.c.status.in_(("rejected", "error")),
                                         HL7_MESSAGE.c.received_at >= utc(since),
                                         HL7_MESSAGE.c.received_at < utc(until))
        if filters.site_id is not None:
            hl7 = hl7.where(HL7_MESSAGE.c.site_id == filters.site_id)
        if filters.territory_id is not None:
            hl7 = hl7.where(HL7_MESSAGE.c.site_id.in_(
                select(SITE.c.id).where(SITE.c.territory_id == filters.territory_id)))
        hl7_errors = session.execute(hl7).scalar_one()
        downtime = incident_figures(session, since, until, filters.site_id, filters.territory_id,
                                    ctx.clock.now())
    return {"failed_cases": failed_cases, "technical_difficulties": difficulties,
            "images_held": int(held_studies or 0) + int(held_instances or 0),
            "priors_failed": int(events.get("dicom.priors_failed", 0) + events.get("dicom.original_study_failed", 0)),
            "hl7_errors": int(hl7_errors or 0), **downtime}  # declared downtime incidents (CH-5.5)


def oncall_coverage(ctx: EngineContext, filters: Any, since: datetime, until: datetime) -> dict[str, Any]:
    """Out-of-hours time of the period up to now, per territory in scope, and the part no on-call slot covers."""
    with ctx.read() as session:
        territories = select(TerritoryRow.id, TerritoryRow.name)
        if filters.territory_id is not None:
            territories = territories.where(TerritoryRow.id == filters.territory_id)
        elif filters.site_id is not None:
            territories = territories.where(TerritoryRow.id.in_(
                select(SITE.c.territory_id).where(SITE.c.id == filters.site_id)))
        names = dict(session.execute(territories.order_by(TerritoryRow.id)).tuples().all())
        slots: dict[str, list[tuple[datetime, datetime]]] = {territory_id: [] for territory_id in names}
        for row in session.execute(select(OnCallSlotRow.territory_id, OnCallSlotRow.starts_at, OnCallSlotRow.ends_at)
                                   .where(OnCallSlotRow.territory_id.in_(sorted(names)),
                                          OnCallSlotRow.starts_at < utc(until), OnCallSlotRow.ends_at > utc(since))):
            slots[row.territory_id].append((row.starts_at, row.ends_at))
    periods = out_of_hours_intervals(since, until) if until > since else []
    out_of_hours = sum((end - start).total_seconds() for start, end in periods)
    result: dict[str, Any] = {"out_of_hours_hours": round(out_of_hours / 3600, 1), "territories": []}
    for territory_id, name in names.items():
        gaps = uncovered_spans(periods, slots[territory_id])  # as engine.domain.oncall.coverage_gaps, linear
        uncovered = sum((end - start).total_seconds() for start, end in gaps)
        result["territories"].append({
            "territory_id": territory_id, "name": name, "gaps": len(gaps),
            "uncovered_hours": round(uncovered / 3600, 1),
            "longest_gap_hours": round(max(((e - s).total_seconds() for s, e in gaps), default=0) / 3600, 1),
            "covered_share": round(1 - uncovered / out_of_hours, 4) if out_of_hours else None})
    return result
