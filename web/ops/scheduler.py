"""The in-process scheduler: fires due timers every few seconds and, given the DICOM folder, renders the
previews waiting for the worker, purges the research exports not downloaded in time and restarts the interrupted
ones; given the audit export settings, exports the signed audit heads and the ATNA
syslog stream; given the notification settings, sends the notification outbox (APScheduler; each job in its own
thread, one run of it at a time)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from engine.services.context import EngineContext
from engine.services.convention_reminders import send_convention_reminders
from engine.services.indicators_facts import refresh_recent_facts
from engine.services.link_health import notify_silent_sites
from engine.services.site_visits import notify_overdue_visits
from engine.services.timers import fire_due_timers
from integrations.audit_export.exporter import run_audit_export
from integrations.audit_export.settings import AuditExportSettings
from integrations.dicom.preview_queue import render_pending_previews
from integrations.dicom.research_export import purge_exports, research_dir, restart_stale_productions
from integrations.notify.delivery import deliver_notifications
from integrations.notify.settings import NotifySettings

FACTS_SECONDS = 300.0  # how often the quality indicators' facts are brought up to date (indicators_facts)
PREVIEW_SECONDS = 2.0  # the preview queue is looked at this often (a directory listing when it is empty)
RESEARCH_RESTART_SECONDS = 300.0  # interrupted research exports looked for this often (STALE_PRODUCTION: 10 min)

log = logging.getLogger(__name__)


@dataclass
class SchedulerState:
    running: bool = False
    last_tick: datetime | None = None
    last_error: str | None = None
    fired_total: int = 0


class TimerScheduler:
    def __init__(self, ctx: EngineContext, interval: float, *, dicom_storage: Path | None = None,
                 audit_export: AuditExportSettings | None = None, notify: NotifySettings | None = None):
        self.ctx = ctx
        self.audit_export = audit_export
        self.notify = notify if notify is not None and notify.enabled else None
        self.interval = interval
        self.dicom_storage = dicom_storage
        self.state = SchedulerState()
        self._lock = threading.Lock()
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._scheduler.add_job(self.tick, "interval", seconds=interval, id="fire_due_timers",
                                max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))
        self._scheduler.add_job(self.refresh_indicator_facts, "interval", seconds=FACTS_SECONDS,
                                id="refresh_indicator_facts", max_instances=1, coalesce=True,
                                next_run_time=datetime.now(UTC) + timedelta(seconds=60))
        if dicom_storage is not None:
            self._scheduler.add_job(self.render_previews, "interval", seconds=PREVIEW_SECONDS, id="render_previews",
                                    max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))
            self._scheduler.add_job(self.purge_research_exports, "interval", hours=1, id="purge_research_exports",
                                    max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))
            self._scheduler.add_job(self.restart_research_exports, "interval", seconds=RESEARCH_RESTART_SECONDS,
                                    id="restart_research_exports", max_instances=1, coalesce=True,
                                    next_run_time=datetime.now(UTC) + timedelta(seconds=60))
        if audit_export is not None:
            self._scheduler.add_job(self.export_audit, "interval", seconds=audit_export.interval, id="export_audit",
                                    max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))
        if self.notify is not None:
            self._scheduler.add_job(self.send_notifications, "interval", seconds=self.notify.interval,
                                    id="deliver_notifications", max_instances=1, coalesce=True,
                                    next_run_time=datetime.now(UTC))
            self._scheduler.add_job(self.notify_site_visits, "interval", hours=24, id="notify_overdue_visits",
                                    max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))
            self._scheduler.add_job(self.remind_conventions, "interval", hours=24, id="convention_reminders",
                                    max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))
            self._scheduler.add_job(self.watch_silent_sites, "interval", minutes=15, id="silent_sites",
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

    def refresh_indicator_facts(self) -> None:
        """The facts the quality indicators read, rebuilt for the cases changed since the last run, so that a
        dashboard (CH-6.3) finds them current instead of rebuilding thousands in a page request."""
        try:
            refresh_recent_facts(self.ctx)
        except Exception:  # keep the scheduler alive; a dashboard rebuilds what is still stale
            log.exception("indicator facts refresh failed")

    def render_previews(self) -> None:
        """Previews of the received series, in limited child processes (integrations.dicom.preview_queue)."""
        if self.dicom_storage is None:
            return
        try:
            render_pending_previews(self.ctx, self.dicom_storage)
        except Exception:  # keep the scheduler alive; the series stay queued for the next run
            log.exception("preview rendering failed")

    def purge_research_exports(self) -> None:
        """Hourly: the research exports not downloaded within their time limit deleted (CH-8.2). The research
        folder is the instance's, beside its DICOM folder (integrations.dicom.research_export.research_dir)."""
        if self.dicom_storage is None:
            return
        try:
            purge_exports(self.ctx, research_dir(self.dicom_storage.parent))
        except Exception:  # keep the scheduler alive; the next run deletes them
            log.exception("research export purge failed")

    def restart_research_exports(self) -> None:
        """Every 5 minutes: a research export whose production was interrupted (process stopped, heartbeat older
        than engine.domain.research.STALE_PRODUCTION) claimed by this worker alone and produced again."""
        if self.dicom_storage is None:
            return
        try:
            restart_stale_productions(self.ctx, self.dicom_storage, research_dir(self.dicom_storage.parent))
        except Exception:  # keep the scheduler alive; the next run tries again
            log.exception("research export restart failed")

    def export_audit(self) -> None:
        """Signed chain heads to the sink, ATNA messages and heads to the syslog server (integrations.audit_export);
        what could not be sent stays queued in the database for the next run."""
        if self.audit_export is None:
            return
        try:
            run_audit_export(self.ctx, self.audit_export)
        except Exception:  # keep the scheduler alive; nothing is lost, the next run starts where this one stopped
            log.exception("audit export failed")

    def send_notifications(self) -> None:
        """The notification outbox: reminders due, then the rows due, by email and webhook (integrations.notify);
        what could not be sent stays in the outbox with its next attempt."""
        if self.notify is None:
            return
        try:
            deliver_notifications(self.ctx, self.notify)
        except Exception:  # keep the scheduler alive; nothing is lost, the rows stay due
            log.exception("notification delivery failed")

    def notify_site_visits(self) -> None:
        """Daily: the overdue site visits told to the radiologist and the site's medical lead, once a week at most
        each (engine.services.site_visits, CH-5.6)."""
        if self.notify is None:
            return
        try:
            notify_overdue_visits(self.ctx, self.notify.channels)
        except Exception:  # keep the scheduler alive; the next day's run tells them
            log.exception("overdue site visit notification failed")

    def remind_conventions(self) -> None:
        """Daily: conventions reaching their renewal date, their expiry in 30 days, or expired, told to the
        administrators and the site's medical leads (engine.services.convention_reminders)."""
        if self.notify is None:
            return
        try:
            send_convention_reminders(self.ctx, self.notify.channels)
        except Exception:  # keep the scheduler alive; the next day's run tells them
            log.exception("convention reminders failed")

    def watch_silent_sites(self) -> None:
        """Every 15 minutes: a site silent longer than its usual pattern told to its medical leads and the
        administrators, once per silence (engine.services.link_health, CH-5.5)."""
        if self.notify is None:
            return
        try:
            notify_silent_sites(self.ctx, self.notify.channels)
        except Exception:  # keep the scheduler alive; the next run tells them
            log.exception("silent site notification failed")

    def start(self) -> None:
        self._scheduler.start()
        self.state.running = True
        log.info("scheduler started: due timers checked every %s s", self.interval)

    def shutdown(self) -> None:
        if self.state.running:
            self._scheduler.shutdown(wait=True)
            self.state.running = False
