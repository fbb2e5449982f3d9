"""The case indicators of engine.services.indicators in one SQL statement over the cases' facts (one row per case,
engine.services.indicators_facts): grouped by process, urgency, week, turnaround bucket, within-delay flag and tier
reached, and summed. Python then adds up those groups (a few hundred at most), never the cases.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, func, literal_column, select

from engine.domain.urgency import LEVELS
from engine.services.context import EngineContext
from engine.services.indicators_facts import REFUSAL_REASONS
from engine.services.indicators_sql import FACTS, case_conditions, week_number

BUCKET_EDGES_MINUTES = (30, 60, 120, 240, 480, 1440, 2880, 10080)
TIER_KEYS = {0: "first_offer", 1: "tier_1", 2: "tier_2", 3: "tier_3", 4: "tier_4"}


def _statement(filters: Any, since: datetime, until: datetime, week0: date, due: dict[str, float]) -> Any:
    c = FACTS.c
    turnaround, reading, answer = c.turnaround_minutes, c.report_minutes, c.answer_minutes
    acceptance, acknowledgement = c.acceptance_minutes, c.acknowledgement_minutes
    bucket = case(*[(turnaround < edge, index) for index, edge in enumerate(BUCKET_EDGES_MINUTES)],
                  else_=len(BUCKET_EDGES_MINUTES))
    within = case(*[(and_(c.urgency == level, reading <= due[f"report_{level}"]), 1) for level in LEVELS],
                  else_=0)
    tier = c.tier_after
    keys: dict[str, Any] = {
        "process": c.process_id, "urgency": c.urgency,
        "week": c.week_number - week_number(week0),
        "bucket": case((c.released_at.is_not(None), bucket)),
        "within": case((c.released_at.is_not(None), within)),
        "tier": case((c.offer_at.is_not(None), tier)),
    }
    sums: dict[str, Any] = {
        "cases": func.count(), "released": func.count(c.released_at), "turnaround_sum": func.sum(turnaround),
        "turnaround_max": func.max(turnaround), "reading_sum": func.sum(reading), "offered": func.count(c.offer_at),
        "accepted": func.sum(case((c.accepted > 0, 1), else_=0)), "acceptance_sum": func.sum(acceptance),
    }
    # The other sums need no group: one pass without sorting (SQLite sorts every row a GROUP BY reads, with the
    # columns its aggregates read: the fewer, the faster).
    totals: dict[str, Any] = {
        "acknowledged": func.count(c.acknowledged_at), "acknowledgement_sum": func.sum(acknowledgement),
        "more_info_cases": func.sum(case((c.more_info > 0, 1), else_=0)), "more_info_loops": func.sum(c.more_info),
        "urgent_findings": func.sum(c.urgent_findings), "phone_calls": func.sum(c.phone_calls),
        "announcement_cases": func.sum(case((c.announcements > 0, 1), else_=0)),
        "announcements_confirmed": func.sum(c.announcements_confirmed),
        "refused": func.sum(case((c.refusals > 0, 1), else_=0)), "refusal_visits": func.sum(c.refusal_visits),
        "refusal_fallbacks": func.sum(c.refusal_fallbacks),
        "te_loop_cases": func.sum(case((c.te_loops > 0, 1), else_=0)), "te_loops": func.sum(c.te_loops),
        "te_answered": func.count(c.answered_at), "te_answer_sum": func.sum(answer),
        "te_within": func.sum(case((answer <= due["teleexpertise_answer"], 1), else_=0)),
        "report_late": func.sum(c.report_late), "te_late": func.sum(c.te_late),
        "difficulties": func.sum(c.difficulties), "no_radiologist": func.sum(case((c.no_radiologist > 0, 1),
                                                                                  else_=0)),
        "failed": func.sum(case((c.status == "failed", 1), else_=0)),
        **{f"refused_{reason}": func.sum(case((and_(c.refusals > 0, c.refusal_reason == reason), 1), else_=0))
           for reason in REFUSAL_REASONS},
    }
    grouping = [expr.label(name) for name, expr in keys.items()]
    conditions = case_conditions(filters, since, until)
    grouped = (select(*grouping, *[expr.label(name) for name, expr in sums.items()]).where(*conditions)
               .group_by(*[literal_column(name) for name in keys]))
    return grouped, select(*[expr.label(name) for name, expr in totals.items()]).where(*conditions)


def case_groups(ctx: EngineContext, filters: Any, since: datetime, until: datetime, week0: date, weeks: int,
                due: dict[str, float]) -> dict[str, Any]:
    grouped, totals = _statement(filters, since, until, week0, due)
    with ctx.read() as session:
        rows = [row._asdict() for row in session.execute(grouped)]
        overall = {name: _n(value) for name, value in session.execute(totals).one()._asdict().items()}
    return _reduce(rows, overall, weeks)


def _n(value: Any) -> float:
    return float(value or 0)


def _mean(total: float, count: float) -> float | None:
    return round(total / count, 1) if count else None


def _share(part: float, whole_: float) -> float | None:
    return round(part / whole_, 4) if whole_ else None


def _reduce(rows: list[dict[str, Any]], overall: dict[str, float], weeks: int) -> dict[str, Any]:
    total: dict[str, float] = dict(overall)
    levels = {level: {"released": 0.0, "within": 0.0, "turnaround_sum": 0.0, "requests": 0.0, "reading_sum": 0.0}
              for level in (*LEVELS, "unknown")}
    buckets = [0] * (len(BUCKET_EDGES_MINUTES) + 1)
    bucket_levels = {level: [0] * len(buckets) for level in LEVELS}
    tiers: dict[int, dict[str, float]] = {}
    weekly = [{"requests": 0.0, "released": 0.0, "within": 0.0, "turnaround_sum": 0.0} for _ in range(weeks)]
    processes = {"telediagnosis": 0.0, "teleexpertise": 0.0}
    turnaround_max: float | None = None
    for row in rows:
        for name, value in row.items():
            if name not in ("process", "urgency", "week", "bucket", "within", "tier", "turnaround_max"):
                total[name] = total.get(name, 0.0) + _n(value)
        if row["turnaround_max"] is not None:
            turnaround_max = max(turnaround_max or 0.0, float(row["turnaround_max"]))
        processes[row["process"]] = processes.get(row["process"], 0.0) + row["cases"]
        telediagnosis = row["process"] == "telediagnosis"
        level = levels[row["urgency"] if row["urgency"] in LEVELS else "unknown"]
        if telediagnosis:
            level["requests"] += row["cases"]
            level["released"] += row["released"]
            level["within"] += _n(row["within"]) * row["released"]
            level["turnaround_sum"] += _n(row["turnaround_sum"])
            level["reading_sum"] += _n(row["reading_sum"])
        if row["bucket"] is not None:
            buckets[int(row["bucket"])] += int(row["released"])
            if row["urgency"] in LEVELS:
                bucket_levels[row["urgency"]][int(row["bucket"])] += int(row["released"])
        if row["tier"] is not None:
            tier = tiers.setdefault(int(row["tier"]), {"cases": 0.0, "accepted": 0.0, "acceptance_sum": 0.0})
            tier["cases"] += row["offered"]
            tier["accepted"] += _n(row["accepted"])
            tier["acceptance_sum"] += _n(row["acceptance_sum"])
        week = int(row["week"]) if row["week"] is not None else -1
        if 0 <= week < weeks:
            entry = weekly[week]
            entry["requests"] += row["cases"]
            entry["released"] += row["released"]
            entry["within"] += _n(row["within"]) * row["released"]
            entry["turnaround_sum"] += _n(row["turnaround_sum"])
    t = total.get
    return {
        "requests": {"total": int(t("cases", 0)), "telediagnosis": int(processes["telediagnosis"]),
                     "teleexpertise": int(processes["teleexpertise"]),
                     "by_urgency": {name: int(value["requests"]) for name, value in levels.items()}},
        "acceptance": {
            "offered": int(t("offered", 0)), "accepted": int(t("accepted", 0)),
            "mean_minutes": _mean(t("acceptance_sum", 0), t("accepted", 0)),
            "no_radiologist_alerts": int(t("no_radiologist", 0)),
            "by_tier": {TIER_KEYS[tier]: {"cases": int(v["cases"]), "accepted": int(v["accepted"]),
                                    "mean_minutes": _mean(v["acceptance_sum"], v["accepted"])}
                        for tier, v in sorted(tiers.items())}},
        "turnaround": {
            "released": int(t("released", 0)), "mean_minutes": _mean(t("turnaround_sum", 0), t("released", 0)),
            "mean_report_minutes": _mean(t("reading_sum", 0), t("released", 0)),
            "max_minutes": round(turnaround_max, 1) if turnaround_max is not None else None,
            "distribution": buckets, "distribution_by_urgency": bucket_levels,
            "overdue_alerts": int(t("report_late", 0)),
            "by_urgency": {name: {"requests": int(v["requests"]), "released": int(v["released"]),
                                  "within_delay": int(v["within"]), "within_share": _share(v["within"], v["released"]),
                                  "mean_minutes": _mean(v["turnaround_sum"], v["released"]),
                                  "mean_report_minutes": _mean(v["reading_sum"], v["released"])}
                           for name, v in levels.items()}},
        "weekly": [{"requests": int(w["requests"]), "released": int(w["released"]),
                    "within_share": _share(w["within"], w["released"]),
                    "mean_turnaround_minutes": _mean(w["turnaround_sum"], w["released"])} for w in weekly],
        "phone_calls": {"urgent_findings": int(t("urgent_findings", 0)), "calls_recorded": int(t("phone_calls", 0))},
        "refusals": {"cases": int(t("refused", 0)), "site_visits": int(t("refusal_visits", 0)),
                     "fallback_procedures": int(t("refusal_fallbacks", 0)),
                     "by_reason": {reason: int(t(f"refused_{reason}", 0)) for reason in REFUSAL_REASONS}},
        "more_information": {"cases": int(t("more_info_cases", 0)), "loops": int(t("more_info_loops", 0))},
        "announcements": {"cases": int(t("announcement_cases", 0)),
                          "confirmed": int(t("announcements_confirmed", 0))},
        "acknowledgement": {"acknowledged": int(t("acknowledged", 0)),
                            "pending": int(t("released", 0) - t("acknowledged", 0)),
                            "mean_minutes": _mean(t("acknowledgement_sum", 0), t("acknowledged", 0))},
        "teleexpertise": {"requests": int(processes["teleexpertise"]), "answered": int(t("te_answered", 0)),
                          "completeness_loop_cases": int(t("te_loop_cases", 0)),
                          "completeness_loops": int(t("te_loops", 0)),
                          "mean_answer_minutes": _mean(t("te_answer_sum", 0), t("te_answered", 0)),
                          "within_delay": int(t("te_within", 0)),
                          "within_share": _share(t("te_within", 0), t("te_answered", 0)),
                          "overdue_alerts": int(t("te_late", 0))},
        "_technical_difficulties": int(t("difficulties", 0)),
        "_failed_cases": int(t("failed", 0)),
    }

