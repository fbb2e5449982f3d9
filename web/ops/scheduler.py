"""The in-process scheduler: fires due timers every few seconds (APScheduler)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from engine.services.context import EngineContext
from engine.services.timers import fire_due_timers

log = logging.getLogger(__name__)


@dataclass
class SchedulerState:
    running: bool = False
    last_tick: datetime | None = None
    last_error: str | None = None
    fired_total: int = 0


class TimerScheduler:
    def __init__(self, ctx: EngineContext, interval: float):
        self.ctx = ctx
        self.interval = interval
        self.state = SchedulerState()
        self._lock = threading.Lock()
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._scheduler.add_job(self.tick, "interval", seconds=interval, id="fire_due_timers",
                                max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))

    def tick(self) -> None:
        try:
            report = fire_due_timers(self.ctx)
        except Exception as err:  # keep the scheduler alive; the error is shown on /healthz
            log.exception("timer tick failed")
            with self._lock:
                self.state.last_error = f"{err.__class__.__name__}: {err}"
            return
        with self._lock:
            self.state.last_tick = datetime.now(UTC)
            self.state.last_error = None
            self.state.fired_total += report.fired

    def start(self) -> None:
        self._scheduler.start()
        self.state.running = True
        log.info("scheduler started: due timers checked every %s s", self.interval)

    def shutdown(self) -> None:
        if self.state.running:
            self._scheduler.shutdown(wait=True)
            self.state.running = False
