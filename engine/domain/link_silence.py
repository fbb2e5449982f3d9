"""When a site's link looks silent (CH-5.5): longer without a message (HL7 order or DICOM study) than its usual
pattern, i.e. more than `factor` times its median gap between arrivals over the observed window, and never less
than `minimum`; a site with too few arrivals to have a pattern is never called silent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from statistics import median

FACTOR = 3
MINIMUM = timedelta(hours=2)
MIN_ARRIVALS = 5


def silence_threshold(arrivals: Sequence[datetime], factor: float = FACTOR,
                      minimum: timedelta = MINIMUM, min_arrivals: int = MIN_ARRIVALS) -> timedelta | None:
    """The silence after which the site is unusual; None without enough arrivals to tell."""
    ordered = sorted(arrivals)
    if len(ordered) < min_arrivals:
        return None
    gaps = [(b - a).total_seconds() for a, b in zip(ordered, ordered[1:], strict=False)]
    return max(minimum, timedelta(seconds=factor * median(gaps)))


def is_silent(arrivals: Sequence[datetime], now: datetime, **options: object) -> bool:
    threshold = silence_threshold(arrivals, **options)  # type: ignore[arg-type]
    return threshold is not None and now - max(arrivals) > threshold
