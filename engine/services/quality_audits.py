"""Periodic quality audits (CH-6.3): the quarterly report of a site or of an organisation (a territory), from the
indicators of the quarter (engine.services.indicators) and its notable cases (engine.services.quality_audit_cases).

- ``preview_report``: the report as it would be issued now (nothing stored);
- ``issue_report``: an administrator, or the site's medical lead for his site, issues it: the figures and the
  notable cases are frozen in a JSON snapshot with who and when, a new version each time the same quarter is issued
  again (never an overwrite), audited (``quality_audit.issued`` with the snapshot's SHA-256). Nothing updates or
  deletes an issued report (engine.store.quality_audit_models: the ORM and the database refuse it);
- ``list_reports`` / ``get_report``: what the actor may read (administrators and auditors all, a site's medical
  lead his site's; any other report is "not found").

The follow-up actions of an issued report are in engine.services.quality_audit_actions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.quality_audit import (
    NOTABLE_KINDS,
    SITE,
    TERRITORY,
    AuditScope,
    QualityAuditError,
    Quarter,
    may_issue,
    may_read,
    readable_sites,
)
from engine.errors import Conflict, Forbidden, NotFound
from engine.services.case_record import display_names
from engine.services.context import EngineContext
from engine.services.indicators import IndicatorError, IndicatorFilters, compute_indicators
from engine.services.quality_audit_cases import notable_cases
from engine.store import audit
from engine.store.directory_models import SiteRow, TerritoryRow
from engine.store.quality_audit_models import QualityAuditAction, QualityAuditReport

PARIS = ZoneInfo("Europe/Paris")
SNAPSHOT_FORMAT = 1
ISSUE_ATTEMPTS = 3


@dataclass(frozen=True)
class ReportSummary:
    id: int
    scope: AuditScope
    scope_name: str
    quarter: str
    version: int
    issued_by: str
    issued_at: Any
    open_actions: int
    issued_by_name: str


@dataclass(frozen=True)
class ActionView:
    id: int
    text: str
    owner: str
    due_date: date
    created_by: str
    created_at: Any
    done_by: str | None
    done_at: Any


@dataclass(frozen=True)
class IssuedReport:
    id: int
    scope: AuditScope
    quarter: str
    version: int
    issued_by: str
    issued_at: Any
    sha256: str
    snapshot: dict[str, Any]
    actions: list[ActionView]
    versions: list[tuple[int, int]]  # (report id, version) of the same scope and quarter, oldest first
    names: dict[str, str]  # username -> display name, of who issued it and who followed it up
    snapshot_text: str  # the JSON exactly as stored, whose SHA-256 is sha256


def scope_name(session: Session, scope: AuditScope) -> str:
    """The site's or territory's name; QualityAuditError when the directory does not know it."""
    model = SiteRow if scope.kind == SITE else TerritoryRow
    name = session.execute(select(model.name).where(model.id == scope.id)).scalar_one_or_none()
    if name is None:
        raise QualityAuditError("Site inconnu." if scope.kind == SITE else "Organisation (territoire) inconnue.")
    return str(name)


def scope_choices(ctx: EngineContext, actor: Actor) -> list[tuple[AuditScope, str]]:
    """The sites and organisations whose reports the actor may read, with their names."""
    sites = readable_sites(actor)
    with ctx.read() as session:
        found = [(AuditScope(SITE, row.id), row.name) for row in session.execute(select(SiteRow).order_by(
            SiteRow.name)).scalars() if sites is None or row.id in sites]
        if sites is None:
            found += [(AuditScope(TERRITORY, row.id), row.name)
                      for row in session.execute(select(TerritoryRow).order_by(TerritoryRow.name)).scalars()]
    return found


def _check_read(actor: Actor, scope: AuditScope) -> None:
    if not may_read(actor, scope):
        raise Forbidden("Vous ne pouvez consulter que les audits de votre site.")


def _build(ctx: EngineContext, scope: AuditScope, name: str, quarter: Quarter) -> dict[str, Any]:
    today = ctx.clock.now().astimezone(PARIS).date()
    if quarter.start > today:
        raise QualityAuditError(f"Le trimestre {quarter.label} n'a pas commencé : aucun audit possible.")
    filters = IndicatorFilters(start=quarter.start, end=quarter.end, site_id=scope.id if scope.kind == SITE else None,
                               territory_id=scope.id if scope.kind == TERRITORY else None)
    try:
        indicators = compute_indicators(ctx, filters)
    except IndicatorError as err:
        raise QualityAuditError(str(err)) from err
    cases = notable_cases(ctx, scope, quarter.start, quarter.end)
    return {
        "format": SNAPSHOT_FORMAT,
        "scope": {"kind": scope.kind, "id": scope.id, "name": name},
        "quarter": quarter.label,
        "period": {"start": quarter.start.isoformat(), "end": quarter.end.isoformat(), "timezone": "Europe/Paris"},
        "complete": quarter.end < today,  # False: a quarter still running, figures as of computed_at
        "computed_at": ctx.clock.now().isoformat(),
        "indicators": indicators,
        "notable_counts": {kind: sum(1 for c in cases if c["kind"] == kind) for kind in NOTABLE_KINDS},
        "notable_cases": cases,
    }


def preview_report(ctx: EngineContext, actor: Actor, scope: AuditScope, quarter: Quarter) -> dict[str, Any]:
    """The report as it would be issued now; nothing is stored."""
    _check_read(actor, scope)
    with ctx.read() as session:
        name = scope_name(session, scope)
    return _build(ctx, scope, name, quarter)


@enforces("CH-6.3")
def issue_report(ctx: EngineContext, actor: Actor, scope: AuditScope, quarter: Quarter) -> int:
    """Freeze the quarter's report as a new version (1, 2...) and audit it; returns the report id."""
    if not may_issue(actor, scope):
        raise Forbidden("Seul un administrateur, ou le médecin responsable du site pour son site, émet un audit.")
    with ctx.read() as session:
        name = scope_name(session, scope)
    snapshot = _build(ctx, scope, name, quarter)
    for attempt in range(ISSUE_ATTEMPTS):
        try:
            return _store(ctx, actor, scope, quarter, snapshot)
        except IntegrityError:  # issued at the same moment by someone else: the next version number
            if attempt == ISSUE_ATTEMPTS - 1:
                raise Conflict("Ce rapport vient d'être émis par quelqu'un d'autre : rechargez la page.") from None
    raise AssertionError("unreachable")


def _store(ctx: EngineContext, actor: Actor, scope: AuditScope, quarter: Quarter, snapshot: dict[str, Any]) -> int:
    now = ctx.clock.now()
    with ctx.write() as session:
        version = 1 + (session.execute(select(func.max(QualityAuditReport.version)).where(
            QualityAuditReport.scope == scope.kind, QualityAuditReport.scope_id == scope.id,
            QualityAuditReport.quarter == quarter.label)).scalar_one() or 0)
        frozen = {**snapshot, "version": version, "issued_by": actor.user_id, "issued_at": now.isoformat()}
        text = json.dumps(frozen, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
        digest = hashlib.sha256(text.encode()).hexdigest()
        row = QualityAuditReport(scope=scope.kind, scope_id=scope.id, quarter=quarter.label, version=version,
                                 period_start=quarter.start, period_end=quarter.end, snapshot=text, sha256=digest,
                                 issued_by=actor.user_id, issued_at=now)
        session.add(row)
        session.flush()
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "quality_audit.issued", None, {
            "report": row.id, "scope": scope.kind, "scope_id": scope.id, "quarter": quarter.label,
            "version": version, "sha256": digest, "notable_cases": len(snapshot["notable_cases"])})], now)
        session.commit()
        return int(row.id)


def list_reports(ctx: EngineContext, actor: Actor) -> list[ReportSummary]:
    """The issued reports the actor may read, newest quarter first, then newest version first."""
    sites = readable_sites(actor)
    open_actions = (select(func.count()).where(QualityAuditAction.report_id == QualityAuditReport.id,
                                               QualityAuditAction.done_at.is_(None)).scalar_subquery())
    query = select(QualityAuditReport, open_actions.label("open_actions"))
    if sites is not None:
        query = query.where(QualityAuditReport.scope == SITE, QualityAuditReport.scope_id.in_(sites or {""}))
    with ctx.read() as session:
        rows = session.execute(query.order_by(QualityAuditReport.quarter.desc(), QualityAuditReport.scope,
                                              QualityAuditReport.scope_id, QualityAuditReport.version.desc())).all()
        names = {**dict(session.execute(select(SiteRow.id, SiteRow.name)).tuples().all())}
        territories = dict(session.execute(select(TerritoryRow.id, TerritoryRow.name)).tuples().all())
        people = display_names(session, [r.issued_by for r, _count in rows])
    return [ReportSummary(r.id, AuditScope(r.scope, r.scope_id),
                          (names if r.scope == SITE else territories).get(r.scope_id, r.scope_id), r.quarter,
                          r.version, r.issued_by, r.issued_at, int(count), people.get(r.issued_by, r.issued_by))
            for r, count in rows]


def get_report(ctx: EngineContext, actor: Actor, report_id: int) -> IssuedReport:
    """An issued report as frozen, with its follow-up actions; NotFound for one the actor may not read."""
    with ctx.read() as session:
        row = session.get(QualityAuditReport, report_id)
        if row is None or not may_read(actor, AuditScope(row.scope, row.scope_id)):
            raise NotFound("rapport d'audit introuvable")
        actions = session.execute(select(QualityAuditAction).where(QualityAuditAction.report_id == report_id)
                                  .order_by(QualityAuditAction.due_date, QualityAuditAction.id)).scalars().all()
        versions = session.execute(select(QualityAuditReport.id, QualityAuditReport.version).where(
            QualityAuditReport.scope == row.scope, QualityAuditReport.scope_id == row.scope_id,
            QualityAuditReport.quarter == row.quarter).order_by(QualityAuditReport.version)).tuples().all()
        names = display_names(session, [row.issued_by, *(a.created_by for a in actions), *(a.done_by for a in actions)])
    return IssuedReport(row.id, AuditScope(row.scope, row.scope_id), row.quarter, row.version, row.issued_by,
                        row.issued_at, row.sha256, json.loads(row.snapshot),
                        [ActionView(a.id, a.text, a.owner, a.due_date, a.created_by, a.created_at, a.done_by,
                                    a.done_at) for a in actions], list(versions), names, row.snapshot)
