"""Periodic quality audits (CH-6.3): the quarter a report covers, what it covers (a site or an organisation, that is a
territory), and who may read, issue and follow it up. Standard library only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from engine.domain.actors import Actor

SITE, TERRITORY = "site", "territory"
SCOPES = (SITE, TERRITORY)
# The kinds of notable cases a report lists, in the order it lists them, with their French titles.
NOTABLE_KINDS = {
    "overdue": "Comptes-rendus en retard",
    "refusal": "Refus motivés",
    "tier4": "Escalades au niveau 4 (société extérieure ou au-delà)",
    "identity_hold": "Images retenues pour discordance d'identité",
}
_QUARTER = re.compile(r"^\s*(\d{4})\s*-?\s*[QqTt]\s*([0-9]+)\s*$")
MAX_ACTION_TEXT = 2000


class QualityAuditError(ValueError):
    """Refused with a French message (bad quarter, unknown site, empty action...)."""


@dataclass(frozen=True)
class Quarter:
    year: int
    number: int  # 1..4

    @property
    def label(self) -> str:
        return f"{self.year}-Q{self.number}"

    @property
    def start(self) -> date:
        return date(self.year, 3 * self.number - 2, 1)

    @property
    def end(self) -> date:
        """The quarter's last day (inclusive)."""
        following = date(self.year + 1, 1, 1) if self.number == 4 else date(self.year, 3 * self.number + 1, 1)
        return following - timedelta(days=1)

    @property
    def title(self) -> str:
        return f"{self.number}{'er' if self.number == 1 else 'e'} trimestre {self.year}"


def parse_quarter(text: str | None) -> Quarter:
    """'2026-Q4' (also '2026Q4', '2026-T4') -> Quarter; anything else is refused in French."""
    found = _QUARTER.match(text or "")
    number = int(found.group(2)) if found else 0
    year = int(found.group(1)) if found else 0
    if not found or not 1 <= number <= 4 or not 2000 <= year <= 2100:
        raise QualityAuditError(f"Trimestre invalide : « {(text or '').strip()[:20]} ». Indiquez l'année et le "
                                "numéro du trimestre (1 à 4), par exemple 2026-Q4.")
    return Quarter(year, number)


def quarter_of(day: date) -> Quarter:
    return Quarter(day.year, (day.month - 1) // 3 + 1)


def previous_quarter(day: date) -> Quarter:
    """The last quarter already over on `day`: the one an audit is usually issued for."""
    current = quarter_of(day)
    return Quarter(current.year - 1, 4) if current.number == 1 else Quarter(current.year, current.number - 1)


@dataclass(frozen=True)
class AuditScope:
    kind: str  # SITE or TERRITORY
    id: str

    def __post_init__(self) -> None:
        if self.kind not in SCOPES:
            raise QualityAuditError("Périmètre d'audit inconnu : un site ou une organisation (territoire).")
        if not self.id or len(self.id) > 64:
            raise QualityAuditError("Choisissez le site ou l'organisation (territoire) de l'audit.")


def may_read(actor: Actor, scope: AuditScope) -> bool:
    """Administrators and auditors read every report; a site's medical lead reads his site's only."""
    if actor.is_system or actor.roles & {"administrator", "auditor"}:
        return True
    return "site_lead" in actor.roles and scope.kind == SITE and scope.id in actor.sites


def may_issue(actor: Actor, scope: AuditScope) -> bool:
    """An administrator issues any report; a site's medical lead his site's. Auditors only read."""
    if actor.is_system or "administrator" in actor.roles:
        return True
    return "site_lead" in actor.roles and scope.kind == SITE and scope.id in actor.sites


def may_follow_up(actor: Actor) -> bool:
    """Follow-up actions are added and marked done by an administrator."""
    return actor.is_system or "administrator" in actor.roles


def readable_sites(actor: Actor) -> frozenset[str] | None:
    """The sites whose reports the actor may list: None for all of them."""
    if actor.is_system or actor.roles & {"administrator", "auditor"}:
        return None
    return actor.sites if "site_lead" in actor.roles else frozenset()
