"""Small interfaces the engine depends on, each with a fake twin for tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

from engine.domain.oncall import OnCallSlot, on_call_at
from engine.domain.routing import Convention, Radiologist, Site, Territory


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment


class Directory(Protocol):
    """Sites, territories, conventions and radiologists, as routing and patient information need them."""

    def site(self, site_id: str) -> Site | None: ...

    def territories(self) -> Mapping[str, Territory]: ...

    def conventions(self, site_id: str) -> list[Convention]: ...

    def radiologists(self) -> list[Radiologist]: ...

    def radiologist(self, user_id: str) -> Radiologist | None: ...

    def on_call(self, territory_id: str, moment: datetime) -> str | None: ...


class InMemoryDirectory:
    """A directory held in memory: the fake twin for tests, and the directory of the demo data."""

    def __init__(self, sites: Iterable[Site] = (), territories: Iterable[Territory] = (),
                 conventions: Iterable[Convention] = (), radiologists: Iterable[Radiologist] = (),
                 on_call: Iterable[OnCallSlot] = ()):
        self._on_call = list(on_call)
        self._sites = {s.id: s for s in sites}
        self._territories = {t.id: t for t in territories}
        self._conventions = list(conventions)
        self._radiologists = {r.user_id: r for r in radiologists}

    def site(self, site_id: str) -> Site | None:
        return self._sites.get(site_id)

    def territories(self) -> Mapping[str, Territory]:
        return self._territories

    def conventions(self, site_id: str) -> list[Convention]:
        return [c for c in self._conventions if c.site_id == site_id]

    def radiologists(self) -> list[Radiologist]:
        return list(self._radiologists.values())

    def radiologist(self, user_id: str) -> Radiologist | None:
        return self._radiologists.get(user_id)

    def on_call(self, territory_id: str, moment: datetime) -> str | None:
        return on_call_at(self._on_call, territory_id, moment)
