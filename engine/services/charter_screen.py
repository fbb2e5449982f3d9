"""What the charter pack in force for a site says of radiologists, read from the database (CH-9.1, CH-3.5): the
pack assignment of a site, each radiologist's teleradiology acts and declared activity (one aggregate per pool), and
the radiologists a request naming its radiologist may not ask (the tele-expert). The routing of offers
(engine.services.charter_routing) builds on it; this module saves nothing, so that the checks of a form
(engine.services.eligibility) can use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from engine.domain import charter_packs as packs
from engine.domain.charter import enforces
from engine.domain.data_checks import paris_date
from engine.services.context import EngineContext
from engine.store.charter_pack_models import ActivityDeclaration, CharterPackAssignment
from engine.store.directory_models import ConventionRow, SiteRow
from engine.store.models import AuditEvent

# A teleradiology act: a released report (telediagnosis) or opinion (teleexpertise) signed by the radiologist, the
# `report.signed` event of the case's audit chain (engine.services.report_signature), by its signer.
SIGNED_EVENT = "report.signed"


def assignment_for_site(session: Session, site_id: str | None, on: date) -> packs.PackAssignment:
    """The pack in force for a site on that date: a convention of the site that chose a pack wins over its
    territory; the 2020 pack when neither chose."""
    if not site_id:
        return packs.pack_in_force((), on)
    territory = select(SiteRow.territory_id).where(SiteRow.id == site_id).scalar_subquery()
    rows = session.execute(
        select(CharterPackAssignment, ConventionRow.site_id)
        .outerjoin(ConventionRow, ConventionRow.id == CharterPackAssignment.convention_id)
        .where(or_(ConventionRow.site_id == site_id, CharterPackAssignment.territory_id == territory))
        .order_by(CharterPackAssignment.id)).all()
    by_convention = [_assignment(row) for row, site in rows if site is not None]
    by_territory = [_assignment(row) for row, site in rows if site is None]
    chosen = packs.pack_in_force(by_convention, on)
    return chosen if chosen.effective_from != date.min else packs.pack_in_force(by_territory, on)


def _assignment(row: CharterPackAssignment) -> packs.PackAssignment:
    return packs.PackAssignment(row.pack, row.effective_from, row.share_cap_percent, row.over_cap_mode)


@enforces("CH-3.5")
def share_facts(session: Session, usernames: Iterable[str], today: date,
                window_days: int = packs.DEFAULT_SHARE_WINDOW_DAYS) -> dict[str, packs.ShareFacts]:
    """Each radiologist's teleradiology acts (signed reports and opinions) and declared total activity over
    the rolling window ending today: ONE aggregate statement for the whole pool."""
    wanted = sorted(set(usernames))
    if not wanted:
        return {}
    since = today - timedelta(days=window_days)
    acts = select(AuditEvent.actor.label("who"), literal(1).label("acts"), literal(0).label("declared"),
                  literal(0).label("declarations")).where(
        AuditEvent.action == SIGNED_EVENT, AuditEvent.at >= _midnight(since), AuditEvent.actor.in_(wanted),
        AuditEvent.instance_id.is_not(None))
    declared = select(ActivityDeclaration.username, literal(0), ActivityDeclaration.total_acts, literal(1)).where(
        ActivityDeclaration.username.in_(wanted), ActivityDeclaration.period_end >= since,
        ActivityDeclaration.period_start <= today)
    both = union_all(acts, declared).subquery()
    rows = session.execute(select(both.c.who, func.sum(both.c.acts), func.sum(both.c.declared),
                                  func.sum(both.c.declarations)).group_by(both.c.who)).all()
    found = {who: packs.ShareFacts(int(tele or 0), int(total or 0) if count else None)
             for who, tele, total, count in rows}
    return {user: found.get(user, packs.ShareFacts(0, None)) for user in wanted}


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@enforces("CH-3.5.1", "CH-3.5.2")
def screened_out(ctx: EngineContext, site_id: str | None, usernames: Iterable[str]) -> dict[str, str]:
    """The radiologists the pack in force today for the site keeps out of a request made now (the 2025 pack: over
    the share cap, or exclusive), for a request that names its radiologist instead of offering the case to a pool
    (the tele-expert of a teleexpertise): user id -> French reason. Empty when the organisation chose to warn only."""
    wanted = sorted(set(usernames))
    if not wanted:
        return {}
    today = paris_date(ctx.clock.now())
    with ctx.read() as session:
        assignment = assignment_for_site(session, site_id, today)
        pack = packs.get_pack(assignment.pack)
        if not (pack.share_cap or pack.refuse_exclusive):
            return {}
        window = int(str(pack.parameters.get("share_window_days", packs.DEFAULT_SHARE_WINDOW_DAYS)))
        facts = share_facts(session, wanted, today, window)
    screening = packs.screen_pool(pack, assignment, wanted, facts)
    cap = packs.share_cap_percent(pack, assignment)
    return {item.radiologist: (
        f"aucune activité locale déclarée : téléradiologue exclusif, non accepté par la charte {pack.id}"
        if item.reason == packs.EXCLUSIVE else
        f"sa part de téléradiologie sur 12 mois dépasse le plafond de {cap} % de la charte {pack.id}")
        for item in screening.skipped}
