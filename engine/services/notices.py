"""Case notices: what must reach people's inboxes without anyone watching the case (CH-3.3, CH-4.1.12).

- A report past its due time (the element with charter role ``report_overdue`` ran): the radiologist, the
  requester and the site's medical lead.
- No radiologist left at any tier (an element with role ``routing_alert`` opened): the site's medical lead, the
  administrators and the on-call radiologist of the site's territory; again when its reminder runs
  (role ``routing_alert_reminder``).

Notices are computed with the save that raises them and written in its transaction; the save that ends the
situation (the report written, the alert handled, the case ended) resolves them. A notice names the case and the
site, never the patient: whoever opens the case goes through the case's own access check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.runtime import LiveWorkflow, Snapshot
from engine.services.charter_gates import roles_reached
from engine.services.context import EngineContext
from engine.store.models import CaseNotice, ProcessInstance, table_of

_NOTICE = table_of(CaseNotice)
REPORT_OVERDUE, NO_RADIOLOGIST = "report_overdue", "no_radiologist"
# kind -> roles whose later fact, or the end of the case, resolves it
_RESOLVED_BY = {REPORT_OVERDUE: ("report",), NO_RADIOLOGIST: ("routing_alert",)}
TITLES = {REPORT_OVERDUE: "Compte-rendu en retard", NO_RADIOLOGIST: "Aucun radiologue disponible"}


@dataclass(frozen=True)
class NoticeChanges:
    new: list[dict[str, Any]] = field(default_factory=list)
    resolve_kinds: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.new or self.resolve_kinds)


def notice_changes(ctx: EngineContext, site_id: str | None, live: LiveWorkflow, before: Snapshot | None,
                   after: Snapshot) -> NoticeChanges:
    recorded, opened = roles_reached(live, before, after)
    if not recorded and not opened and not after.completed:
        return NoticeChanges()
    data = live.latest_data()
    new: list[dict[str, Any]] = []
    if "report_overdue" in recorded:
        users = [u for u in (data.get("radiologist_id"), data.get("requester_id")) if isinstance(u, str) and u]
        new.append(_notice(REPORT_OVERDUE, site_id, users, ["site_lead"]))
    if "routing_alert" in opened or "routing_alert_reminder" in recorded:
        new.append(_notice(NO_RADIOLOGIST, site_id, _on_call(ctx, site_id), ["site_lead", "administrator"]))
    if after.completed:
        resolve = tuple(_RESOLVED_BY)
    else:
        resolve = tuple(kind for kind, roles in _RESOLVED_BY.items() if recorded & set(roles))
    return NoticeChanges(new, resolve)


def _notice(kind: str, site_id: str | None, users: list[str], roles: list[str]) -> dict[str, Any]:
    return {"kind": kind, "site_id": site_id, "audience": json.dumps({"users": sorted(set(users)), "roles": roles})}


def _on_call(ctx: EngineContext, site_id: str | None) -> list[str]:
    if ctx.directory is None or not site_id:
        return []
    site = ctx.directory.site(site_id)
    on_duty = ctx.directory.on_call(site.territory_id, ctx.clock.now()) if site is not None else None
    return [on_duty] if on_duty else []


def write_notices(session: Session, instance_id: int, changes: NoticeChanges, now: datetime) -> None:
    if changes.resolve_kinds:
        session.connection().execute(update(_NOTICE).where(
            _NOTICE.c.instance_id == instance_id, _NOTICE.c.kind.in_(changes.resolve_kinds),
            _NOTICE.c.resolved_at.is_(None)).values(resolved_at=now))
    if changes.new:
        session.connection().execute(insert(_NOTICE), [
            {**notice, "instance_id": instance_id, "created_at": now, "resolved_at": None} for notice in changes.new])


@dataclass(frozen=True)
class NoticeView:
    case_id: int
    site_id: str | None
    kind: str
    title: str
    created_at: datetime


def list_notices(ctx: EngineContext, actor: Actor, limit: int = 50) -> list[NoticeView]:
    """Open notices addressed to this actor: by name, or by role on one of the actor's sites (administrators:
    every site)."""
    query = (select(CaseNotice).join(ProcessInstance, ProcessInstance.id == CaseNotice.instance_id)
             .where(CaseNotice.resolved_at.is_(None), ProcessInstance.status == "running")
             .order_by(CaseNotice.created_at.desc()).limit(500))
    if "administrator" not in actor.roles:
        query = query.where(or_(CaseNotice.site_id.in_(sorted(actor.sites) or [""]),
                                CaseNotice.audience.contains(json.dumps(actor.user_id))))
    found: list[NoticeView] = []
    with ctx.read() as session:
        for notice in session.execute(query).scalars():
            audience = json.loads(notice.audience)
            by_role = set(audience.get("roles", ())) & set(actor.roles) and (
                notice.site_id in actor.sites or "administrator" in actor.roles)
            if actor.user_id in audience.get("users", ()) or by_role:
                found.append(NoticeView(notice.instance_id, notice.site_id, notice.kind,
                                        TITLES.get(notice.kind, notice.kind), notice.created_at))
            if len(found) >= limit:
                break
    return found
