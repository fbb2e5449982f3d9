"""SQL building blocks of the quality indicators (engine.services.indicators): a portable "seconds between two
timestamps", the tables the adapters define (read here by name: the engine never imports an adapter), and the
case population selected by the filters.

Timestamps are stored as naive UTC text on SQLite and as ``timestamptz`` on PostgreSQL; ``seconds_between`` hides
the difference (julianday arithmetic on SQLite, EXTRACT(EPOCH ...) on PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, Integer, column, literal, select, table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import GenericFunction

from engine.store.directory_models import SiteRow
from engine.store.indicator_models import CaseIndicator
from engine.store.models import ProcessInstance, Task, UTCDateTime, table_of

PARIS = ZoneInfo("Europe/Paris")
INSTANCE = table_of(ProcessInstance)
TASK = table_of(Task)
SITE = table_of(SiteRow)
FACTS = table_of(CaseIndicator)
CASE_PROCESSES = ("telediagnosis", "teleexpertise")

# Tables of integrations.dicom.models and integrations.hl7.models (one metadata, one Alembic history).
DICOM_STUDY = table("dicom_study", column("uid"), column("case_id"), column("site_id"), column("status"),
                    column("first_received_at"), column("last_received_at"), column("notified_at"))
DICOM_HELD_INSTANCE = table("dicom_held_instance", column("sop_instance_uid"), column("case_id"))
HL7_MESSAGE = table("hl7_message", column("id"), column("direction"), column("site_id"), column("status"),
                    column("received_at"))


class seconds_between(GenericFunction[float]):  # noqa: N801 - named like the SQL expression it stands for
    """seconds_between(earlier, later): the seconds from one timestamp to another (NULL if either is NULL)."""

    type = Float()
    inherit_cache = True


@compiles(seconds_between, "sqlite")
def _sqlite(element: seconds_between, compiler: Any, **kw: Any) -> str:
    earlier, later = list(element.clauses)
    return (f"((julianday({compiler.process(later, **kw)}) - julianday({compiler.process(earlier, **kw)}))"
            " * 86400.0)")


@compiles(seconds_between, "postgresql")
def _postgresql(element: seconds_between, compiler: Any, **kw: Any) -> str:
    earlier, later = list(element.clauses)
    return (f"EXTRACT(EPOCH FROM (CAST({compiler.process(later, **kw)} AS TIMESTAMPTZ)"
            f" - CAST({compiler.process(earlier, **kw)} AS TIMESTAMPTZ)))")


class whole(GenericFunction[int]):  # noqa: N801 - a SQL expression
    """The integer part of a non-negative number (CAST truncates on SQLite; PostgreSQL's CAST rounds)."""

    type = Integer()
    inherit_cache = True


@compiles(whole, "sqlite")
def _whole_sqlite(element: whole, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


@compiles(whole, "postgresql")
def _whole_postgresql(element: whole, compiler: Any, **kw: Any) -> str:
    return f"CAST(FLOOR({compiler.process(element.clauses, **kw)}) AS INTEGER)"


# Weeks are counted from Monday 3 January 2000, 00:00 Paris (winter) time: a case's week is stored with its facts.
WEEK_EPOCH = date(2000, 1, 3)
WEEK_SECONDS = 7 * 86400


def week_number(monday: date) -> int:
    """The number of the week starting on that Monday."""
    return (monday - WEEK_EPOCH).days // 7


def week_number_of(moment: Any) -> Any:
    """The SQL week number of a timestamp column."""
    return whole(seconds_between(utc(paris_midnight(WEEK_EPOCH)), moment) / WEEK_SECONDS)


def paris_midnight(day: date) -> datetime:
    """00:00 Paris time of a calendar day, in UTC."""
    return datetime.combine(day, time(0), tzinfo=PARIS).astimezone(UTC)


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, the day after end 00:00) in Paris time, as UTC instants."""
    return paris_midnight(start), paris_midnight(end + timedelta(days=1))


def first_monday(start: date) -> date:
    return start - timedelta(days=start.weekday())


def utc(value: datetime) -> ColumnElement[Any]:
    """A typed timestamp literal (stored like the columns on each database)."""
    return literal(value, UTCDateTime())


def case_conditions(filters: Any, since: datetime, until: datetime) -> list[ColumnElement[bool]]:
    """The cases counted, on their facts (engine.services.indicators_facts): telediagnoses and teleexpertises created
    in the period, with the filters' values."""
    conditions: list[ColumnElement[bool]] = [
        FACTS.c.process_id.in_(CASE_PROCESSES), FACTS.c.started_at >= utc(since), FACTS.c.started_at < utc(until)]
    if filters.site_id is not None:
        conditions.append(FACTS.c.site_id == filters.site_id)
    if filters.territory_id is not None:
        conditions.append(FACTS.c.site_id.in_(
            select(SITE.c.id).where(SITE.c.territory_id == filters.territory_id).scalar_subquery()))
    if filters.urgency is not None:
        conditions.append(FACTS.c.urgency == filters.urgency)
    if filters.modality is not None:
        conditions.append(FACTS.c.modality == filters.modality)
    if filters.radiologist is not None:
        conditions.append(FACTS.c.radiologist == filters.radiologist)
    return conditions
