"""Cases found by what the adapters know of them: an accession number, a site, a case id.

No permission check: the callers are the HL7 and DICOM receptions (which already know the sending site) and
web pages that already allowed the person to see the case. Each query is one statement; the ones taking a
session read in the caller's transaction, the others in one of their own.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from engine.services.context import EngineContext
from engine.store.models import ProcessInstance


@dataclass(frozen=True)
class CaseRef:
    id: int
    site_id: str | None
    status: str  # running, completed, cancelled...


@dataclass(frozen=True)
class CaseAccession:
    status: str
    accession_number: str | None


def latest_case_by_accession(ctx: EngineContext, accession_number: str) -> CaseRef | None:
    """The newest case with this accession number, whatever its site (the caller decides what another site's
    case means)."""
    with ctx.read() as session:
        row = session.execute(select(ProcessInstance.id, ProcessInstance.site_id, ProcessInstance.status).where(
            ProcessInstance.accession_number == accession_number).order_by(ProcessInstance.id.desc()).limit(1)
        ).first()
    return CaseRef(row.id, row.site_id, row.status) if row is not None else None


def latest_site_case_by_accession(ctx: EngineContext, accession_number: str, site_id: str) -> int | None:
    """The newest case of this site with this accession number."""
    with ctx.read() as session:
        return session.execute(select(ProcessInstance.id).where(
            ProcessInstance.accession_number == accession_number, ProcessInstance.site_id == site_id)
            .order_by(ProcessInstance.id.desc()).limit(1)).scalar_one_or_none()


def sites_of_cases(ctx: EngineContext, case_ids: Collection[int]) -> dict[int, str | None]:
    """The site of each case (cases that do not exist are left out)."""
    with ctx.read() as session:
        return dict(session.execute(select(ProcessInstance.id, ProcessInstance.site_id)
                                    .where(ProcessInstance.id.in_(case_ids))).tuples().all())


def case_site(ctx: EngineContext, case_id: int) -> str | None:
    """The site of an existing case (NoResultFound when there is no such case)."""
    with ctx.read() as session:
        return session.execute(select(ProcessInstance.site_id).where(ProcessInstance.id == case_id)).scalar_one()


def case_accession(session: Session, case_id: int) -> CaseAccession:
    """The status and accession number of an existing case, in the caller's transaction."""
    row = session.execute(select(ProcessInstance.status, ProcessInstance.accession_number)
                          .where(ProcessInstance.id == case_id)).one()
    return CaseAccession(row.status, row.accession_number)


def with_case_status(query: Select[Any], case_id_column: ColumnElement[Any]) -> Select[Any]:
    """`query` with the status of the case `case_id_column` names as its last column, in the same statement
    (an outer join: None when the column is null or names no case)."""
    return query.add_columns(ProcessInstance.status).outerjoin(ProcessInstance, ProcessInstance.id == case_id_column)


def case_urgency(ctx: EngineContext, case_id: int) -> str | None:
    """The urgency level of a case (vital, urgent, scheduled...), None when it has none or does not exist."""
    with ctx.read() as session:
        return session.execute(select(ProcessInstance.urgency).where(ProcessInstance.id == case_id)).scalar()
