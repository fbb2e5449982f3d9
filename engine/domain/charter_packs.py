"""Charter versions as rule packs (CH-9.1): the 2020 charter and its 2025 update, each a versioned pack of rules
with parameters, and the teleradiology share screen of the 2025 pack (CH-3.5).

Each organisation (a territory, or a convention of a site) says which pack applies from which date; a case follows
the pack in force for its site when it started, and keeps it while it runs. Sources of each rule:
docs/charter/packs.md. Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from engine.domain.charter import enforces

DEFAULT_PACK = "2020"
SKIP, WARN = "skip", "warn"  # what routing does with a radiologist over the cap (the organisation's setting)
OVER_CAP_MODES = (SKIP, WARN)
OVER_CAP, EXCLUSIVE = "over_cap", "exclusive"  # why a radiologist was screened out (or warned about)
DEFAULT_SHARE_CAP_PERCENT = 20  # to be confirmed against the official 2025 text (docs/charter/packs.md)
DEFAULT_SHARE_WINDOW_DAYS = 365  # "rolling 12 months", to be confirmed likewise


class UnknownPack(ValueError):
    """A pack id that is not one of PACKS (French message)."""


@dataclass(frozen=True)
class PackRule:
    """One rule of a pack: an id of the charter catalogue (docs/charter/REQUIREMENTS.md), how the software treats
    it (``enforced``: applied by the product; ``outside``: declared, not checked by software), its source and
    whether its exact wording must still be confirmed against the official text."""

    id: str
    summary: str
    treatment: str
    source: str
    to_confirm: bool = False


@dataclass(frozen=True)
class CharterPack:
    id: str
    version: str
    title: str
    source: str
    rules: tuple[PackRule, ...] = ()
    excludes: frozenset[str] = frozenset()  # catalogue rules this pack does not contain (added by later packs)
    share_cap: bool = False  # CH-3.5.1: teleradiology share capped
    refuse_exclusive: bool = False  # CH-3.5.2: exclusive teleradiologists refused
    parameters: Mapping[str, object] = field(default_factory=dict)

    def rule_ids(self, catalogue: Iterable[str]) -> list[str]:
        """The catalogue ids this pack is made of, in catalogue order."""
        return [rule_id for rule_id in catalogue if rule_id not in self.excludes]


_SOURCE_2020 = "Charte de téléradiologie G4-CNOM, 3e version (2020) : /work/shared/charter/, docs/charter/"
_SOURCE_2025 = ("Mise à jour de la charte, CNOM, mars 2025 (annoncée par le G4 comme la mise à jour de janvier 2025), "
                "telle que rapportée : texte officiel à confirmer")
ADDED_2025 = frozenset({"CH-3.5.1", "CH-3.5.2", "CH-10.1", "CH-10.2", "CH-10.3"})

PACKS: dict[str, CharterPack] = {
    "2020": CharterPack(
        "2020", "2020.1", "Charte de téléradiologie 2020", _SOURCE_2020, (
            PackRule("CH-3.3", "Proximité d'abord : territoire, voisins, département puis région, société externe",
                     "enforced", "Charte 2020, § organisation"),
            PackRule("CH-3.5", "Part de téléradiologie de chaque radiologue visible des administrateurs",
                     "enforced", "Charte 2020, § organisation"),
        ), excludes=ADDED_2025),
    "2025": CharterPack(
        "2025", "2025.1", "Charte de téléradiologie, mise à jour 2025", _SOURCE_2025, (
            PackRule("CH-3.3", "Organisation territoriale privilégiée (niveaux territoriaux avant la société externe)",
                     "enforced", "Mise à jour 2025, rapportée", to_confirm=True),
            PackRule("CH-3.5", "Part de téléradiologie de chaque radiologue visible des administrateurs",
                     "enforced", "Charte 2020, réaffirmée en 2025"),
            PackRule("CH-3.5.1", "Téléradiologie limitée à 20 % de l'activité d'un radiologue (12 mois glissants)",
                     "enforced", "Mise à jour 2025, rapportée", to_confirm=True),
            PackRule("CH-3.5.2", "Téléradiologues exclusifs non acceptés", "enforced", "Mise à jour 2025, rapportée"),
            PackRule("CH-10.1", "Dépistage", "outside", "Mise à jour 2025, rapportée", to_confirm=True),
            PackRule("CH-10.2", "Traitement des données", "outside", "Mise à jour 2025, rapportée", to_confirm=True),
            PackRule("CH-10.3", "Cybersécurité", "outside", "Mise à jour 2025, rapportée", to_confirm=True),
        ), share_cap=True, refuse_exclusive=True,
        parameters={"share_cap_percent": DEFAULT_SHARE_CAP_PERCENT, "share_window_days": DEFAULT_SHARE_WINDOW_DAYS}),
}


def get_pack(pack_id: str) -> CharterPack:
    try:
        return PACKS[pack_id]
    except KeyError:
        known = ", ".join(sorted(PACKS))
        raise UnknownPack(f"Version de charte inconnue : « {pack_id} » (versions connues : {known}).") from None


@dataclass(frozen=True)
class PackAssignment:
    """An organisation's choice: this pack from this date (Paris calendar date)."""

    pack: str
    effective_from: date
    share_cap_percent: int | None = None  # None: the pack's default
    over_cap_mode: str = SKIP


@enforces("CH-9.1")
def pack_in_force(assignments: Iterable[PackAssignment], on: date) -> PackAssignment:
    """The assignment in force on that date: the latest that started on or before it (of two from the same day, the
    one given last, i.e. recorded last); the 2020 pack otherwise."""
    started = [(a.effective_from, n, a) for n, a in enumerate(assignments) if a.effective_from <= on]
    if not started:
        return PackAssignment(DEFAULT_PACK, date.min)
    return max(started, key=lambda found: found[:2])[2]


@dataclass(frozen=True)
class ShareFacts:
    """A radiologist's teleradiology acts (counted from the cases) and declared total activity over the window."""

    teleradiology_acts: int
    declared_acts: int | None  # None: nothing declared over the window

    @property
    def exclusive(self) -> bool:
        """No local activity declared: nothing declared, or no more than his teleradiology acts."""
        return self.declared_acts is None or self.declared_acts <= self.teleradiology_acts

    @property
    def share(self) -> float | None:
        """Teleradiology acts over all his acts (the declared total, at least his teleradiology acts)."""
        total = max(self.declared_acts or 0, self.teleradiology_acts)
        return None if total == 0 else self.teleradiology_acts / total


def share_cap_percent(pack: CharterPack, assignment: PackAssignment) -> int:
    if assignment.share_cap_percent is not None:
        return assignment.share_cap_percent
    return int(str(pack.parameters.get("share_cap_percent", DEFAULT_SHARE_CAP_PERCENT)))


@dataclass(frozen=True)
class Screened:
    radiologist: str
    reason: str  # OVER_CAP or EXCLUSIVE
    share: float | None


@dataclass(frozen=True)
class Screening:
    kept: list[str]
    skipped: list[Screened]
    warned: list[Screened]


@enforces("CH-3.5.1", "CH-3.5.2")
def screen_pool(pack: CharterPack, assignment: PackAssignment, candidates: Sequence[str],
                facts: Mapping[str, ShareFacts]) -> Screening:
    """With a pack that caps the share, the candidates over the cap (or exclusive teleradiologists) are skipped, or
    only warned about when the organisation chose to warn; the order of the others is kept."""
    if not (pack.share_cap or pack.refuse_exclusive):
        return Screening(list(candidates), [], [])
    cap = share_cap_percent(pack, assignment) / 100
    kept, skipped, warned = [], [], []
    for user_id in candidates:
        found = facts.get(user_id, ShareFacts(0, None))
        problem = None
        if pack.refuse_exclusive and found.exclusive:
            problem = Screened(user_id, EXCLUSIVE, found.share)
        elif pack.share_cap and (found.share or 0) > cap:
            problem = Screened(user_id, OVER_CAP, found.share)
        if problem is None:
            kept.append(user_id)
        elif assignment.over_cap_mode == WARN:
            kept.append(user_id)
            warned.append(problem)
        else:
            skipped.append(problem)
    return Screening(kept, skipped, warned)
