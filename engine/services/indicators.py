"""Quality indicators (CH-6.3, CH-4.1.12, CH-5.4): what the cases, their tasks, the audit trail, the image and
message tables and the on-call slots say about a period, for a site, a territory, a radiologist, an urgency level
or a modality. Every figure is an SQL aggregate (GROUP BY in the database); Python only adds up the few groups.

    figures = compute_indicators(ctx, IndicatorFilters(start=date(2026, 11, 1), end=date(2026, 11, 30)))

The exact definition of each figure and the JSON shape are in docs/indicators.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from engine.domain.charter import enforces
from engine.domain.escalation import DEFAULT_ESCALATION, InvalidDuration, parse_duration
from engine.domain.urgency import LEVELS
from engine.services.context import EngineContext
from engine.services.indicators_extra import image_transfer, oncall_coverage, technical_incidents
from engine.services.indicators_facts import refresh_facts
from engine.services.indicators_main import BUCKET_EDGES_MINUTES, case_groups
from engine.services.indicators_sql import first_monday, period_bounds
from engine.store.directory_models import SiteRow, TerritoryRow, User, UserRole
from engine.store.models import EscalationSetting

MAX_PERIOD_DAYS = 731
MIN_YEAR, MAX_YEAR = 2000, 2100
MODALITIES = ("CT", "MR", "US", "XR", "MG")


class IndicatorError(ValueError):
    """Filters the indicators cannot be computed for (French message)."""


@dataclass(frozen=True)
class IndicatorFilters:
    start: date  # inclusive (Europe/Paris calendar day)
    end: date  # inclusive
    site_id: str | None = None
    territory_id: str | None = None
    radiologist: str | None = None  # username
    urgency: str | None = None
    modality: str | None = None


def check_filters(filters: IndicatorFilters) -> None:
    """Raises IndicatorError for a period or a value the indicators do not know."""
    if not (MIN_YEAR <= filters.start.year <= MAX_YEAR and MIN_YEAR <= filters.end.year <= MAX_YEAR):
        raise IndicatorError(f"Choisissez des dates entre {MIN_YEAR} et {MAX_YEAR}.")
    if filters.end < filters.start:
        raise IndicatorError("La fin de la période précède son début.")
    if (filters.end - filters.start).days >= MAX_PERIOD_DAYS:
        raise IndicatorError("La période dépasse deux ans : choisissez une période plus courte.")
    if filters.urgency is not None and filters.urgency not in LEVELS:
        raise IndicatorError("Niveau d'urgence inconnu.")
    if filters.modality is not None and filters.modality not in MODALITIES:
        raise IndicatorError("Modalité inconnue.")


@dataclass(frozen=True)
class FilterChoices:
    """What the filters offer: (id, name) pairs, sorted by name."""

    sites: list[tuple[str, str]]
    territories: list[tuple[str, str]]
    radiologists: list[tuple[str, str]]


READING_ROLES = ("radiologist", "tele_expert")


def filter_choices(ctx: EngineContext) -> FilterChoices:
    with ctx.read() as session:
        sites = session.execute(select(SiteRow.id, SiteRow.name).order_by(SiteRow.name)).tuples().all()
        territories = session.execute(select(TerritoryRow.id, TerritoryRow.name)
                                      .order_by(TerritoryRow.name)).tuples().all()
        radiologists = session.execute(
            select(User.username, User.display_name).where(User.username.in_(
                select(UserRole.username).where(UserRole.role.in_(READING_ROLES))))
            .order_by(User.display_name)).tuples().all()
    return FilterChoices(list(sites), list(territories), list(radiologists))


def check_references(ctx: EngineContext, filters: IndicatorFilters) -> None:
    """Raises IndicatorError when the site, the territory or the radiologist of the filters does not exist."""
    checks = ((filters.site_id, SiteRow, "Site inconnu."), (filters.territory_id, TerritoryRow, "Territoire inconnu."),
              (filters.radiologist, User, "Radiologue inconnu."))
    with ctx.read() as session:
        for value, model, message in checks:
            if value is not None and session.get(model, value) is None:
                raise IndicatorError(message)


def delays(ctx: EngineContext) -> dict[str, float]:
    """The due times in force (administrators' settings, else the defaults), in minutes, by setting name."""
    names = [f"report_{level}" for level in LEVELS] + ["teleexpertise_answer"]
    values = {name: DEFAULT_ESCALATION[name] for name in names}
    with ctx.read() as session:
        for row in session.execute(select(EscalationSetting.name, EscalationSetting.duration)
                                   .where(EscalationSetting.name.in_(names))):
            values[row.name] = row.duration
    minutes: dict[str, float] = {}
    for name, text in values.items():
        try:
            minutes[name] = parse_duration(text).total_seconds() / 60
        except InvalidDuration:
            minutes[name] = parse_duration(DEFAULT_ESCALATION[name]).total_seconds() / 60
    return minutes


@enforces("CH-6.3", "CH-4.1.12", "CH-5.4")
def compute_indicators(ctx: EngineContext, filters: IndicatorFilters) -> dict[str, Any]:
    """The period's indicators as a JSON-ready dict (docs/indicators.md). Raises IndicatorError."""
    check_filters(filters)
    check_references(ctx, filters)
    since, until = period_bounds(filters.start, filters.end)
    refresh_facts(ctx, since, until)  # the facts of the period's cases saved since they were last read
    week0 = first_monday(filters.start)
    due = delays(ctx)
    figures: dict[str, Any] = {
        "period": {"start": filters.start.isoformat(), "end": filters.end.isoformat(),
                   "timezone": "Europe/Paris"},
        "filters": {key: value for key, value in asdict(filters).items()
                    if key not in ("start", "end") and value is not None},
        "due_minutes": {level: due[f"report_{level}"] for level in LEVELS}
        | {"teleexpertise": due["teleexpertise_answer"]},
        "turnaround_buckets_minutes": list(BUCKET_EDGES_MINUTES),
    }
    weeks = _week_starts(week0, filters.end)
    figures.update(case_groups(ctx, filters, since, until, week0, len(weeks), due))
    for index, week in enumerate(figures["weekly"]):
        week["week_start"] = weeks[index].isoformat()
    figures["image_transfer"] = image_transfer(ctx, filters, since, until)
    figures["technical_incidents"] = technical_incidents(ctx, filters, since, until,
                                                         figures.pop("_technical_difficulties"),
                                                         figures.pop("_failed_cases"))
    figures["oncall"] = oncall_coverage(ctx, filters, since, min(until, max(since, ctx.clock.now())))
    return figures


def _week_starts(week0: date, end: date) -> list[date]:
    weeks, day = [], week0
    while day <= end:
        weeks.append(day)
        day += timedelta(days=7)
    return weeks


def as_datetime_range(filters: IndicatorFilters) -> tuple[datetime, datetime]:
    """The period's UTC instants [start 00:00 Paris, the day after end 00:00 Paris)."""
    return period_bounds(filters.start, filters.end)
