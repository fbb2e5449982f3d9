"""The Directory port backed by the database (users, territories, sites, conventions)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.domain.credentials import RadiologistCredentials
from engine.domain.data_checks import paris_date
from engine.domain.oncall import OnCallSlot, on_call_at
from engine.domain.routing import Convention, Radiologist, Site, Territory
from engine.store.convention_models import document_kinds, routes_cases
from engine.store.directory_models import (
    ConventionRadiologist,
    ConventionRow,
    OnCallSlotRow,
    SiteRow,
    TerritoryNeighbour,
    TerritoryRow,
    User,
    UserRole,
)


class _Clock(Protocol):
    def now(self) -> datetime: ...


class SqlDirectory:
    def __init__(self, reader: sessionmaker[Session], clock: _Clock | None = None):
        self._reader = reader
        self._clock = clock  # what "today" is for the conventions' expiry (the system clock by default)

    def site(self, site_id: str) -> Site | None:
        with self._reader() as session:
            row = session.get(SiteRow, site_id)
            return Site(row.id, row.name, row.territory_id) if row else None

    def territories(self) -> Mapping[str, Territory]:
        with self._reader() as session:
            neighbours: dict[str, set[str]] = {}
            for link in session.execute(select(TerritoryNeighbour)).scalars():
                neighbours.setdefault(link.territory_id, set()).add(link.neighbour_id)
                neighbours.setdefault(link.neighbour_id, set()).add(link.territory_id)
            return {row.id: Territory(row.id, row.name, row.department, row.region,
                                      frozenset(neighbours.get(row.id, ())))
                    for row in session.execute(select(TerritoryRow)).scalars()}

    def conventions(self, site_id: str) -> list[Convention]:
        """The site's conventions as routing sees them: one is active only while it is approved, complete (or
        flagged legacy_incomplete) and not expired at today's Paris date (engine.store.convention_models)."""
        today = paris_date(self._clock.now() if self._clock is not None else datetime.now(UTC))
        with self._reader() as session:
            rows = session.execute(select(ConventionRow).where(ConventionRow.site_id == site_id)
                                   .order_by(ConventionRow.id)).scalars().all()
            kinds = document_kinds(session, [row.id for row in rows])
            result = []
            for row in rows:
                members = session.execute(select(ConventionRadiologist.username)
                                          .where(ConventionRadiologist.convention_id == row.id)).scalars()
                active = routes_cases(row, kinds[row.id], today)
                result.append(Convention(
                    row.site_id, frozenset(members), active, active, active, row.external_allowed,
                    frozenset(int(t) for t in row.tiers.split(",") if t.strip().isdigit())))
            return result

    def radiologists(self) -> list[Radiologist]:
        with self._reader() as session:
            users = session.execute(
                select(User).join(UserRole, UserRole.username == User.username)
                .where(UserRole.role == "radiologist", User.active.is_(True))
            ).scalars().all()
            return [_radiologist(u) for u in users]

    def radiologist(self, user_id: str) -> Radiologist | None:
        """A radiologist or tele-expert account (None for anyone else)."""
        with self._reader() as session:
            user = session.execute(
                select(User).join(UserRole, UserRole.username == User.username)
                .where(User.username == user_id, User.active.is_(True),
                       UserRole.role.in_(("radiologist", "tele_expert"))).limit(1)
            ).scalar_one_or_none()
            return _radiologist(user) if user else None


    def on_call(self, territory_id: str, moment: datetime) -> str | None:
        with self._reader() as session:
            rows = session.execute(select(OnCallSlotRow).where(
                OnCallSlotRow.territory_id == territory_id, OnCallSlotRow.starts_at <= moment,
                OnCallSlotRow.ends_at > moment)).scalars().all()
            slots = [OnCallSlot(r.territory_id, r.username, r.starts_at, r.ends_at) for r in rows]
        return on_call_at(slots, territory_id, moment)


def _radiologist(user: User) -> Radiologist:
    return Radiologist(user.username, user.display_name, user.territory_id, RadiologistCredentials(
        user.rpps, user.authorization_expires, user.insurance_expires, user.extraterritorial,
        user.foreign_authorization_on_file, user.foreign_insurance_on_file), user.external_company)
