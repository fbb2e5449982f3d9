"""Give SpiffWorkflow's timers our clock.

SpiffWorkflow reads ``datetime.now(timezone.utc)`` inside its timer module and offers no hook. We
replace that module's ``datetime`` name once with a subclass whose ``now`` asks the clock bound to the
current context, so a use case running with a FakeClock moves timers with it, thread by thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime, tzinfo

from SpiffWorkflow.bpmn.specs.event_definitions import timer as _timer_module

from engine.ports import Clock, SystemClock

_SYSTEM_CLOCK = SystemClock()
_current: ContextVar[Clock | None] = ContextVar("telerad_clock", default=None)


class _ClockedDatetime(datetime):
    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
        moment = (_current.get() or _SYSTEM_CLOCK).now()
        return moment.astimezone(tz) if tz is not None else moment.replace(tzinfo=None)


_timer_module.datetime = _ClockedDatetime  # type: ignore[misc]


@contextlib.contextmanager
def using_clock(clock: Clock) -> Iterator[None]:
    token = _current.set(clock)
    try:
        yield
    finally:
        _current.reset(token)


def current_time() -> datetime:
    """Now, by the clock bound to the current use case (the system clock outside one)."""
    return (_current.get() or _SYSTEM_CLOCK).now()
