"""Named delays used by diagram timers, e.g. ``escalation["accept_tier1"]`` (ISO 8601 durations)."""

from __future__ import annotations

import re
from datetime import timedelta

DEFAULT_ESCALATION: dict[str, str] = {
    "accept_oncall": "PT10M",
    "accept_tier1": "PT15M",
    "accept_tier2": "PT15M",
    "accept_tier3": "PT30M",
    "accept_tier4": "PT30M",
    "report_vital": "PT1H",
    "report_urgent": "PT4H",
    "report_scheduled": "P2D",
    "teleexpertise_answer": "P3D",
    "reminder": "PT30M",
    "no_radiologist_alert": "PT15M",
    # Due time of every other step of a case, by urgency (telediagnosis) or for a teleexpertise / a reconciliation.
    "step_vital": "PT30M",
    "step_urgent": "PT2H",
    "step_scheduled": "P1D",
    "teleexpertise_step": "P2D",
    "identity_reconciliation": "PT1H",
}

_DURATION = re.compile(
    r"P(?!$)(?:(?P<weeks>[0-9]{1,6})W)?(?:(?P<days>[0-9]{1,6})D)?"
    r"(?:T(?=[0-9])(?:(?P<hours>[0-9]{1,7})H)?(?:(?P<minutes>[0-9]{1,9})M)?"
    r"(?:(?P<seconds>[0-9]{1,11}(?:\.[0-9]{1,6})?)S)?)?"
)
MAX_DURATION = timedelta(days=366)


class InvalidDuration(ValueError):
    pass


def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration without years or months (their length varies): P2D, PT15M, P1DT2H."""
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise InvalidDuration(f"'{text}' n'est pas une durée ISO 8601 (exemples : PT15M, PT4H, P2D)")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    try:
        duration = timedelta(**parts)
    except OverflowError:
        raise InvalidDuration("la durée dépasse un an") from None
    if duration <= timedelta(0):
        raise InvalidDuration("la durée doit être strictement positive")
    if duration > MAX_DURATION:
        raise InvalidDuration("la durée dépasse un an")
    return duration
