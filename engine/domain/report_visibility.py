"""Who may read a report whose diagnosis has a poor prognosis (CH-4.1.13).

Until the requester has confirmed the announcement plan, the report is not "simply released": only the
reporting radiologist and the requester may read what reveals the diagnosis. Everyone else who may open the case
(technologists, other physicians of the site, administrators) sees that the report awaits the announcement.

Withheld fields, and why each one:
- findings, conclusion: the diagnosis itself;
- technique: may name the lesion targeted (a protocol "for staging", a biopsy guidance), so it goes with them;
- complementary_strategy: the next steps point at the diagnosis ("bilan d'extension", "biopsie");
- summary: what was said on the urgent phone call (td_phone_call), which is the finding;
- announcement_proposal: the radiologist's proposal to the requester names what is to be announced;
- opinion: a tele-expert's written opinion (same nature as findings, should a family flag a poor prognosis).
Left visible: certainty, urgent_finding, poor_prognosis (the placeholder tells that much anyway, and the care
team must know an announcement is pending), the release and acknowledgement records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from engine.domain.actors import SYSTEM_USER
from engine.domain.charter import enforces

WITHHELD_FIELDS = ("technique", "findings", "conclusion", "complementary_strategy", "summary",
                   "announcement_proposal", "opinion")
WITHHELD_KEY = "report_withheld"
WITHHELD_MESSAGE = "Compte-rendu en attente de la procédure d'annonce"


def _roles(facts: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The facts by role, from either shape the engine gives: {"roles": {role: fact}} or {role: fact}."""
    if not facts:
        return {}
    roles = facts.get("roles")
    return roles if isinstance(roles, Mapping) else facts


def _fact(facts: Mapping[str, Any] | None, role: str) -> Mapping[str, Any] | None:
    found = _roles(facts).get(role)
    return found if isinstance(found, Mapping) else None


@enforces("CH-4.1.13")
def announcement_pending(data: Mapping[str, Any], facts: Mapping[str, Any] | None = None) -> bool:
    """True while a poor-prognosis report waits for the requester's confirmation of the announcement plan.

    The one place that decides it. With the engine's charter facts (an element of role ``report`` recorded its
    ``poor_prognosis``), the plan counts as confirmed only when an ``announcement`` fact with
    ``plan_confirmed`` was recorded after that report: facts cannot be forged by a form. Without a report fact
    (a diagram whose elements carry no charter role yet), the case data decide: ``poor_prognosis`` from the
    report form, ``plan_confirmed`` from the confirmation form (bn_confirm), which no other form may carry.
    """
    report = _fact(facts, "report")
    if report is not None:
        values = report.get("values") if isinstance(report.get("values"), Mapping) else {}
        assert isinstance(values, Mapping)
        if values.get("poor_prognosis") is not True:
            return False
        announcement = _fact(facts, "announcement")
        if announcement is None:
            return True
        confirmed = announcement.get("values") if isinstance(announcement.get("values"), Mapping) else {}
        assert isinstance(confirmed, Mapping)
        after = _seq(announcement) > _seq(report)
        return not (after and confirmed.get("plan_confirmed") is True)
    return data.get("poor_prognosis") is True and data.get("plan_confirmed") is not True


def _seq(fact: Mapping[str, Any]) -> int:
    value = fact.get("seq")
    return value if isinstance(value, int) else 0


def report_readers(data: Mapping[str, Any], facts: Mapping[str, Any] | None = None,
                   started_by: str | None = None) -> frozenset[str]:
    """The reporting radiologist and the requester: who completed the report (fact) or is assigned to it
    (``radiologist_id``), who wrote the request (``requester_id``) or started the case."""
    readers: set[str] = set()
    report = _fact(facts, "report")
    candidates: Iterable[Any] = (report.get("by") if report else None, data.get("radiologist_id"),
                                 data.get("requester_id"), started_by)
    for value in candidates:
        if isinstance(value, str) and value and value != SYSTEM_USER:
            readers.add(value)
    return frozenset(readers)


@enforces("CH-4.1.13")
def may_read_report(user_id: str, data: Mapping[str, Any], facts: Mapping[str, Any] | None = None,
                    started_by: str | None = None) -> bool:
    """Whether this user may read the report fields of the case now (the system always may: it releases)."""
    if user_id == SYSTEM_USER or not announcement_pending(data, facts):
        return True
    return user_id in report_readers(data, facts, started_by)


@enforces("CH-4.1.13")
def redact_report(user_id: str, data: Mapping[str, Any], facts: Mapping[str, Any] | None = None,
                  started_by: str | None = None) -> dict[str, Any]:
    """A copy of the case data this user may read: the withheld fields removed and ``report_withheld`` set to
    the French notice when the report is not his to read yet; otherwise an unchanged copy."""
    copy = dict(data)
    if may_read_report(user_id, data, facts, started_by):
        return copy
    for name in WITHHELD_FIELDS:
        copy.pop(name, None)
    copy[WITHHELD_KEY] = WITHHELD_MESSAGE
    return copy
