"""Proximity-first routing (CH-3.3): which radiologists a case is offered to, tier by tier.

Tier 1: the site's own territory; tier 2: neighbouring territories; tier 3: the same department, then
the same region (department candidates listed first); tier 4: an external teleradiology company, only
where the site's convention allows it. Only radiologists bound to the site by an active convention
(CH-3.4, CH-6.1) and holding valid credentials (CH-3.1, CH-3.2) are ever offered a case.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from engine.domain.charter import enforces
from engine.domain.credentials import RadiologistCredentials, may_be_assigned

ON_CALL, LOCAL, NEIGHBOURS, REGIONAL, EXTERNAL = 0, 1, 2, 3, 4
MAX_TIER = EXTERNAL


@dataclass(frozen=True)
class Territory:
    id: str
    name: str
    department: str
    region: str
    neighbours: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Site:
    id: str
    name: str
    territory_id: str


@dataclass(frozen=True)
class Radiologist:
    user_id: str
    name: str
    territory_id: str | None
    credentials: RadiologistCredentials
    external_company: str | None = None  # name of the teleradiology company (tier 4), if any


@dataclass(frozen=True)
class Convention:
    """Medico-organisational convention between a site and radiologists (CH-6.1)."""

    site_id: str
    radiologist_ids: frozenset[str]
    cme_validated: bool = False  # CH-3.4: validated by the site's medical committee
    approved_by_g4: bool = False  # CH-3.4: approved by the regional G4
    approved_by_council: bool = False  # CH-3.4: approved by the departmental Medical Council
    external_allowed: bool = False  # tier 4 permitted
    tiers: frozenset[int] = field(default_factory=lambda: frozenset({LOCAL, NEIGHBOURS, REGIONAL}))

    @property
    def active(self) -> bool:
        return self.cme_validated and self.approved_by_g4 and self.approved_by_council


@enforces("CH-3.4")
def active_conventions(site_id: str, conventions: Iterable[Convention]) -> list[Convention]:
    return [c for c in conventions if c.site_id == site_id and c.active]


@enforces("CH-3.3")
def tier_of(radiologist: Radiologist, site: Site, territories: Mapping[str, Territory]) -> int | None:
    """The proximity tier of a radiologist for a site (None: outside every tier)."""
    if radiologist.external_company:
        return EXTERNAL
    home = territories.get(site.territory_id)
    theirs = territories.get(radiologist.territory_id or "")
    if home is None or theirs is None:
        return None
    if theirs.id == home.id:
        return LOCAL
    if theirs.id in home.neighbours or home.id in theirs.neighbours:
        return NEIGHBOURS
    if theirs.department == home.department or theirs.region == home.region:
        return REGIONAL
    return None


@enforces("CH-3.1", "CH-3.2", "CH-3.3", "CH-3.4")
def candidate_pool(site: Site, tier: int, radiologists: Iterable[Radiologist], conventions: Iterable[Convention],
                   territories: Mapping[str, Territory], on: date) -> list[str]:
    """User ids of the radiologists a case of this site is offered to at this tier, nearest first."""
    # Each convention opens its own tiers to its own radiologists only.
    bound = {rid for c in active_conventions(site.id, conventions) for rid in c.radiologist_ids
             if (c.external_allowed if tier == EXTERNAL else tier in c.tiers)}
    if not bound:
        return []
    home = territories.get(site.territory_id)
    chosen = []
    for radiologist in radiologists:
        if radiologist.user_id not in bound or not may_be_assigned(radiologist.credentials, on):
            continue
        if tier_of(radiologist, site, territories) != tier:
            continue
        theirs = territories.get(radiologist.territory_id or "")
        same_department = bool(home and theirs and theirs.department == home.department)
        chosen.append((0 if same_department else 1, radiologist.name, radiologist.user_id))
    return [user_id for _, _, user_id in sorted(chosen)]


def last_tier(site_id: str, conventions: Iterable[Convention]) -> int:
    """The farthest tier the site's active conventions allow."""
    contracts = active_conventions(site_id, conventions)
    if any(c.external_allowed for c in contracts):
        return EXTERNAL
    return max((t for c in contracts for t in c.tiers if t != EXTERNAL), default=LOCAL)
