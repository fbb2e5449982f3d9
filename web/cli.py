"""The `telerad` command."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path

import click

from engine.domain.actors import Actor
from engine.errors import DefinitionRefused
from web.config import Settings, SettingsError
from web.heap import settle_startup_objects

log = logging.getLogger("telerad")


def _settings() -> Settings:
    try:
        settings = Settings.from_env()
    except SettingsError as err:
        raise click.ClickException(str(err)) from err
    settings.prepare()
    return settings


@click.group(help="Telerad: teleradiology workflows that follow the G4/CNOM charter.")
def main() -> None:
    pass


@main.command(help="Serve the web application, with the timer scheduler and the HL7 and DICOM listeners.")
@click.option("--host", default=None, help="Listen address (default TELERAD_HOST or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Listen port (default TELERAD_PORT or 5000).")
@click.option("--threads", default=8, show_default=True, help="Request threads (of each web process).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Web processes. Above 1: Granian with that many processes, and the timers and listeners in "
                   "one `telerad worker` process started beside them (unless --no-scheduler).")
@click.option("--no-scheduler", is_flag=True,
              help="Web only: no timers, no HL7/DICOM listeners in this process (run `telerad worker`).")
def run(host: str | None, port: int | None, threads: int, workers: int, no_scheduler: bool) -> None:
    settings = _settings()
    _require_migrated(settings)
    host, port = host or settings.host, port or settings.port
    if workers > 1:
        _serve_processes(settings, host, port, threads, workers, no_scheduler)
        return
    from waitress import serve

    from web.app import create_app
    from web.extensions import telerad
    from web.listeners import start_services, stop_services
    from web.scheduler import TimerScheduler

    app = create_app(settings)
    ext = telerad(app)
    services = []
    if not no_scheduler:
        ext.scheduler = TimerScheduler(ext.ctx, settings.scheduler_interval)
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

    from web.wsgi import GranianServer

    if settings.database_url.startswith("sqlite"):
        click.echo("warning: several web processes on SQLite share one file on this machine only; "
                   "use PostgreSQL (TELERAD_DATABASE_URL) to scale out", err=True)
    sibling = None
    if not no_scheduler:
        sibling = subprocess.Popen([sys.executable, "-m", "web.cli", "worker"])  # same environment and settings
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


@main.command(help="Run the timer scheduler and the HL7/DICOM listeners without the web server (scale-out).")
@click.option("--no-listeners", is_flag=True, help="Timers only (another worker runs the HL7/DICOM listeners).")
def worker(no_listeners: bool) -> None:
    from engine.services.bootstrap import build_context
    from web.listeners import install_hooks, start_services, stop_services
    from web.scheduler import TimerScheduler

    settings = _settings()
    _require_migrated(settings)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    ctx = build_context(settings.database_url)
    install_hooks(ctx)
    scheduler = TimerScheduler(ctx, settings.scheduler_interval)
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


@main.group(help="Database schema.")
def db() -> None:
    pass


@db.command("upgrade", help="Apply the Alembic migrations up to the latest revision.")
def db_upgrade() -> None:
    from engine.store.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    click.echo("database schema is up to date")


@db.command("current", help="Print the database schema revision.")
def db_current() -> None:
    from engine.store.migrate import current

    click.echo(current(_settings().database_url) or "(empty database)")


@main.command(help="Deploy the diagrams of a folder (default: workflows/bpmn/) whose content is new.")
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
def deploy(directory: Path | None) -> None:
    from engine.services.bootstrap import build_context
    from engine.services.definitions import deploy_library

    settings = _settings()
    _require_migrated(settings)
    ctx = build_context(settings.database_url)
    try:
        results = deploy_library(ctx, Actor("cli"), directory or settings.workflows_dir)
    except DefinitionRefused as err:
        for finding in err.findings:
            click.echo(f"{finding.file}:{finding.element_id}: [{finding.rule}] {finding.message}", err=True)
        raise click.ClickException("deployment refused") from err
    for item in results:
        state = "deployed" if item.created else "unchanged"
        click.echo(f"{item.process_id} v{item.version}: {state}")


@main.group(help="Audit trail.")
def audit() -> None:
    pass


@audit.command("verify", help="Recompute the audit hash chain; exit 1 if any event was altered or removed.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def audit_verify(as_json: bool) -> None:
    from engine.services.audit import verify_audit

    settings = _settings()
    _require_migrated(settings)
    from engine.services.bootstrap import build_context

    checked, problems = verify_audit(build_context(settings.database_url))
    if as_json:
        click.echo(json.dumps({"checked": checked, "ok": not problems,
                               "problems": [{"seq": p.seq, "message": p.message} for p in problems]}))
    else:
        for problem in problems:
            click.echo(f"event #{problem.seq}: {problem.message}", err=True)
        click.echo(f"{checked} audit events checked: {'chain intact' if not problems else 'CHAIN BROKEN'}")
    sys.exit(1 if problems else 0)


def _require_migrated(settings: Settings) -> None:
    from engine.store.migrate import current

    try:
        revision = current(settings.database_url)
    except Exception as err:
        raise click.ClickException(f"cannot reach the database: {err}") from err
    if revision is None:
        raise click.ClickException("the database has no schema yet: run `telerad db upgrade` first")


@main.command(help="Print the charter conformance matrix: for each rule, what enforces it in the product (diagram "
                   "elements of the deployed versions, forms their user tasks use, code reached from a route, a "
                   "command, a listener or an operation a diagram calls) and which tests prove it. Exit 1 when a "
                   "rule is only declared (marks that nothing in the product reaches).")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"rules": [{"id", "title", "scope", "status", "enforced_by": [{"where", "kind", '
                   '"reached_from"}], "tests", "negative_tests", ...}]}.')
@click.option("--repo", is_flag=True, help="Analyse the repository's diagrams (workflows/bpmn/) and form schemas "
                                           "instead of the deployed versions (no database needed).")
def conformance(as_json: bool, repo: bool) -> None:
    from engine.services.conformance import conformance_matrix, summary
    from web.config import PROJECT_ROOT

    if repo:
        rules = conformance_matrix(PROJECT_ROOT)
    else:
        from engine.services.conformance_sources import deployed_diagrams, registry_forms
        from engine.services.bootstrap import build_context

        settings = _settings()
        _require_migrated(settings)
        ctx = build_context(settings.database_url)
        rules = conformance_matrix(PROJECT_ROOT, deployed_diagrams(ctx), registry_forms(ctx))
    declared_only = [r.id for r in rules if r.status == "declared_only"]
    if as_json:
        click.echo(json.dumps({"rules": [r.as_dict() for r in rules]}, ensure_ascii=False, indent=2))
        sys.exit(1 if declared_only else 0)
    for rule in rules:
        click.echo(f"{rule.id:<10} {rule.status_label:<19} {len(rule.enforced_by):>3} application(s) atteinte(s) "
                   f"{len(rule.tests):>3} test(s) dont {len(rule.negative_tests)} négatif(s)  {rule.title[:60]}")
        for enforcement in rule.enforced_by:
            origins = list(enforcement.reached_from)
            more = f" … et {len(origins) - 3} autre(s)" if len(origins) > 3 else ""
            click.echo(f"{'':<12}application : {enforcement.where} — atteinte depuis : {' ; '.join(origins[:3])}{more}")
        for unreached in rule.unreached:
            click.echo(f"{'':<12}non atteinte : {unreached.where} ({unreached.reason})")
        for test in rule.tests:
            click.echo(f"{'':<12}{'test négatif' if test in rule.negative_tests else 'test'} : {test}")
        if rule.status in ("missing", "declared_only"):
            lacks = (["une application atteinte"] if not rule.enforced_by else []) + (
                ["un test négatif"] if rule.missing_negative_test else [])
            click.echo(f"{'':<12}manque : {' et '.join(lacks)}")
        if rule.scope == "outside":
            click.echo(f"{'':<12}motif : {rule.reason}")
    counts = summary(rules)
    plural = {"enforced": "appliquée(s)", "declared_only": "déclarée(s) seulement", "missing": "manquante(s)",
              "outside": "hors logiciel"}
    click.echo(f"\n{len(rules)} règles : " + ", ".join(f"{counts[s]} {plural[s]}" for s in counts)
               + (f"\ndéclarées seulement : {', '.join(declared_only)}" if declared_only else ""))
    sys.exit(1 if declared_only else 0)


@main.command(help="Create demo data (territories, sites, one user per role, cases) in an empty database.")
@click.option("--json", "as_json", is_flag=True, help='Print {"users": [{"username", "password", "totp_secret", '
                                                      '"roles"}]}.')
def demo(as_json: bool) -> None:
    from engine.services.bootstrap import build_context
    from engine.services.definitions import deploy_library
    from web.demo import create_demo, has_data

    settings = _settings()
    _require_migrated(settings)
    ctx = build_context(settings.database_url)
    if has_data(ctx):
        message = "the database already has users: demo data is only created in an empty database"
        if as_json:
            click.echo(json.dumps({"users": [], "skipped": message}))
        else:
            click.echo(message)
        return
    deploy_library(ctx, Actor("cli"), settings.workflows_dir)
    accounts = create_demo(ctx)
    if as_json:
        click.echo(json.dumps({"users": accounts}, ensure_ascii=False, indent=2))
        return
    click.echo(f"Demo data created. Log in at http://{settings.host}:{settings.port}/ with one of these accounts;")
    click.echo("the second factor is a TOTP code: add the secret to an authenticator app "
               "(or run: python -c \"import pyotp; print(pyotp.TOTP('SECRET').now())\").\n")
    for account in accounts:
        click.echo(f"  {account['username']:<12} password {account['password']}  TOTP secret "
                   f"{account['totp_secret']}  roles {', '.join(account['roles'])}")


def _attach_user_commands() -> None:
    from web.cli_hl7 import hl7
    from web.cli_users import users

    main.add_command(users)
    main.add_command(hl7)


_attach_user_commands()


@main.command(help="Validate diagram files (.bpmn, .dmn): each finding with its element id, rule and message. "
                   "Files in the same folders are read too, so call activities and decisions resolve.")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True,
              help='Print {"files": [{"file", "errors": [...], "warnings": [...]}]}.')
def validate(files: tuple[Path, ...], as_json: bool) -> None:
    from engine.ports import InMemoryDirectory, SystemClock
    from engine.runtime.validation import validate_library
    from engine.services.bootstrap import default_operations
    from forms import default_registry

    wanted = {path.resolve() for path in files}
    library: dict[str, str] = {}
    names: dict[Path, str] = {}
    for folder in sorted({path.parent for path in wanted}):
        for path in sorted([*folder.glob("*.bpmn"), *folder.glob("*.dmn")]):
            names[path.resolve()] = path.name
            library[path.name] = path.read_text(encoding="utf-8", errors="replace")
    registry = default_registry()
    reports = validate_library(library, default_operations(InMemoryDirectory(), SystemClock()), registry.exists,
                               registry.schema)
    shown = [r for r in reports if r.file in {names[p] for p in wanted if p in names}]
    if as_json:
        click.echo(json.dumps({"files": [r.as_dict() for r in shown]}, ensure_ascii=False, indent=2))
    else:
        for report in shown:
            for kind, findings in (("error", report.errors), ("warning", report.warnings)):
                for f in findings:
                    click.echo(f"{report.file}:{f.element_id or '-'}: {kind} [{f.rule}] {f.message}")
            click.echo(f"{report.file}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    sys.exit(1 if any(r.errors for r in shown) else 0)


if __name__ == "__main__":
    main()
