"""`telerad run` and `telerad worker`: the web server, the timer scheduler and the HL7/DICOM listeners."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

import click

from web.cli.common import load_settings, require_migrated
from web.config import Settings
from web.ops.heap import settle_startup_objects

if TYPE_CHECKING:
    from integrations.audit_export.settings import AuditExportSettings
    from integrations.notify.settings import NotifySettings


@click.command(help="Serve the web application, with the timer scheduler and the HL7 and DICOM listeners.")
@click.option("--host", default=None, help="Listen address (default TELERAD_HOST or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Listen port (default TELERAD_PORT or 5000).")
@click.option("--threads", default=16, show_default=True, type=click.IntRange(2, 512),
              help="Request threads of each web process; half of them at most hold live-inbox streams "
                   "(TELERAD_LIVE_MAX_STREAMS, when not set).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Web processes. Above 1: Granian with that many processes, and the timers and listeners in "
                   "one `telerad worker` process started beside them (unless --no-scheduler).")
@click.option("--no-scheduler", is_flag=True,
              help="Web only: no timers, no HL7/DICOM listeners in this process (run `telerad worker`).")
def run(host: str | None, port: int | None, threads: int, workers: int, no_scheduler: bool) -> None:
    settings = load_settings()
    require_migrated(settings)
    host, port = host or settings.host, port or settings.port
    # Each open live inbox holds one request thread: half of them at most, so pages always have threads.
    os.environ.setdefault("TELERAD_LIVE_MAX_STREAMS", str(threads // 2))
    if workers > 1:
        _serve_processes(settings, host, port, threads, workers, no_scheduler)
        return
    from waitress import serve

    from web.app import create_app
    from web.extensions import telerad
    from web.ops.listeners import start_services, stop_services
    from web.ops.scheduler import TimerScheduler

    app = create_app(settings)
    ext = telerad(app)
    services = []
    if not no_scheduler:
        ext.scheduler = TimerScheduler(ext.ctx, settings.scheduler_interval,
                                       dicom_storage=settings.instance_path / "dicom",
                                       audit_export=_audit_export(settings), notify=_notify(settings))
        ext.scheduler.start()
        services = start_services(ext.ctx, settings.instance_path)
        ext.hl7 = services[0]
    click.echo(f"Telerad on http://{host}:{port}/ (database: {ext.ctx.engine.url.render_as_string()})")
    settle_startup_objects()
    try:
        serve(app, host=host, port=port, threads=threads, ident="telerad")
    finally:
        stop_services(services)
        if ext.scheduler is not None:
            ext.scheduler.shutdown()


def _serve_processes(settings: Settings, host: str, port: int, threads: int, workers: int,
                     no_scheduler: bool) -> None:
    """Granian (N worker processes, one app per process) and, unless told not to, one sibling
    `telerad worker` for the timers and listeners, stopped with the web processes."""
    import subprocess

    from web.ops.servers import GranianServer

    if settings.database_url.startswith("sqlite"):
        click.echo("warning: several web processes on SQLite share one file on this machine only; "
                   "use PostgreSQL (TELERAD_DATABASE_URL) to scale out", err=True)
    sibling = None
    if not no_scheduler:
        sibling = subprocess.Popen([sys.executable, "-m", "web.cli.main", "worker"])  # same environment and settings
    click.echo(f"Telerad on http://{host}:{port}/ with {workers} web processes x {threads} threads"
               f"{'' if sibling is None else f', timers and listeners in process {sibling.pid}'}")
    try:
        GranianServer(settings, host, port, workers, threads).run()
    finally:
        if sibling is not None:
            sibling.terminate()
            try:
                sibling.wait(timeout=30)
            except subprocess.TimeoutExpired:
                sibling.kill()


@click.command(help="Run the timer scheduler, the DICOM previews and the HL7/DICOM listeners without the web "
                    "server (scale-out).")
@click.option("--no-listeners", is_flag=True,
              help="Timers and previews only (another worker runs the HL7/DICOM listeners).")
def worker(no_listeners: bool) -> None:
    from engine.services.bootstrap import build_context
    from web.ops.listeners import install_hooks, start_services, stop_services
    from web.ops.scheduler import TimerScheduler

    settings = load_settings()
    require_migrated(settings)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    ctx = build_context(settings.database_url, keys=settings.key_ring())
    install_hooks(ctx)
    scheduler = TimerScheduler(ctx, settings.scheduler_interval, dicom_storage=settings.instance_path / "dicom",
                               audit_export=_audit_export(settings), notify=_notify(settings))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    scheduler.start()
    services = [] if no_listeners else start_services(ctx, settings.instance_path)
    settle_startup_objects()
    click.echo(f"Telerad worker: firing due timers every {settings.scheduler_interval} s"
               f"{'' if no_listeners else ', HL7 and DICOM listeners on'} (Ctrl-C to stop)")
    stop.wait()
    stop_services(services)
    scheduler.shutdown()


def _audit_export(settings: Settings) -> AuditExportSettings:
    """Where the scheduler exports the audit trail (signed heads file, ATNA syslog): TELERAD_AUDIT_*."""
    from integrations.audit_export.settings import AuditExportSettings, AuditExportSettingsError

    try:
        return AuditExportSettings.from_env(settings.instance_path)
    except AuditExportSettingsError as error:
        raise click.ClickException(str(error)) from None


def _notify(settings: Settings) -> NotifySettings:
    """How the scheduler reaches people outside the browser (email, webhook): TELERAD_SMTP_*, TELERAD_WEBHOOK_*."""
    from integrations.notify.settings import NotifySettings, NotifySettingsError

    try:
        return NotifySettings.from_env(public_url=settings.public_url)
    except NotifySettingsError as error:
        raise click.ClickException(str(error)) from None
