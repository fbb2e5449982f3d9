"""`telerad audit ...`: the audit trail: verify it, export its signed heads (and the ATNA syslog stream)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from engine.services.audit import chain_report
from engine.services.audit_heads import HeadsCheck, verify_heads
from integrations.audit_export.exporter import run_audit_export
from integrations.audit_export.settings import AuditExportSettings, AuditExportSettingsError
from web.cli.common import engine_context, load_settings, require_migrated

DEVELOPMENT_WARNING = ("the key file holds the public DEVELOPMENT keys: anyone can recompute this audit chain and "
                       "sign heads; create a key file (TELERAD_KEYS_FILE) before recording real data")


@click.group(help="Audit trail.")
def audit() -> None:
    pass


def _export_settings() -> AuditExportSettings:
    try:
        return AuditExportSettings.from_env(load_settings().instance_path)
    except AuditExportSettingsError as error:
        raise click.ClickException(str(error)) from error


@audit.command("verify", help="Recompute every audit chain with the audit keys of the key file, and check the "
                              "signed heads exported to the heads file; exit 1 if any event was altered, added "
                              "or removed.")
@click.option("--heads", "heads_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The exported heads to check against (default: TELERAD_AUDIT_HEADS_FILE, "
                   "<instance>/audit-heads.jsonl).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def audit_verify(heads_file: Path | None, as_json: bool) -> None:
    require_migrated(load_settings())
    sink = heads_file or _export_settings().heads_file
    warnings: list[str] = []
    with engine_context() as ctx:
        if ctx.keys.is_development:
            warnings.append(DEVELOPMENT_WARNING)
        report = chain_report(ctx)
        heads: HeadsCheck | None = None
        if sink.is_file():
            with sink.open("rb") as handle:
                heads = verify_heads(ctx, handle)
        elif heads_file is not None:
            raise click.ClickException(f"no such heads file: {sink}")
        else:
            warnings.append(f"no exported heads ({sink}): a rewrite made with the audit key cannot be detected; "
                            "run `telerad audit export-heads` (the worker does it periodically)")
    if report.legacy:
        warnings.append(f"unkeyed legacy events: {report.legacy} (written before keyed MACs, plain SHA-256)")
    problems: list[dict[str, Any]] = [{"chain": p.chain, "seq": p.seq, "message": p.message}
                                      for p in report.problems]
    if heads is not None:
        problems += [{"chain": p.chain, "seq": p.seq, "line": p.line, "message": f"exported heads: {p.message}"}
                     for p in heads.problems]
    _print(as_json, report.checked, report.by_key, report.legacy, sink, heads, problems, warnings)
    sys.exit(1 if problems else 0)


def _print(as_json: bool, checked: int, by_key: dict[str, int], legacy: int, sink: Path, heads: HeadsCheck | None,
           problems: list[dict[str, Any]], warnings: list[str]) -> None:
    if as_json:
        click.echo(json.dumps({
            "checked": checked, "ok": not problems, "problems": problems, "keys": by_key, "legacy_events": legacy,
            "heads": {"file": str(sink), "lines": heads.lines if heads else 0,
                      "heads_checked": heads.heads if heads else 0}, "warnings": warnings}))
        return
    for warning in warnings:
        click.echo(f"WARNING: {warning}", err=True)
    for problem in problems:
        where = f"chain {problem['chain']} event #{problem['seq']}" if problem["chain"] is not None else \
            f"heads line {problem.get('line')}"
        click.echo(f"{where}: {problem['message']}", err=True)
    click.echo(f"{checked} audit events checked ({legacy} unkeyed legacy), "
               f"{heads.heads if heads else 0} exported heads checked: "
               f"{'chain intact' if not problems else 'CHAIN BROKEN'}")


@audit.command("export-heads", help="Sign the current audit chain heads and append them to the heads file "
                                    "(and, with TELERAD_AUDIT_SYSLOG, send them and the pending audit events as "
                                    "ATNA messages to the syslog server); the worker does it periodically.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def audit_export_heads(as_json: bool) -> None:
    require_migrated(load_settings())
    settings = _export_settings()
    with engine_context() as ctx:
        if ctx.keys.is_development:
            click.echo(f"WARNING: {DEVELOPMENT_WARNING}", err=True)
        report = run_audit_export(ctx, settings, force_heads=True)
    heads = sum(len(json.loads(line)["heads"]) for line in report.heads_lines)
    if as_json:
        click.echo(json.dumps({"file": str(settings.heads_file), "heads": heads, "events_sent": report.events_sent,
                               "heads_sent": report.heads_sent, "errors": report.errors}))
    else:
        click.echo(f"{heads} chain heads signed and appended to {settings.heads_file}")
        if settings.syslog is not None:
            click.echo(f"syslog: {report.events_sent} audit events, {report.heads_sent} heads lines sent")
        for error in report.errors:
            click.echo(f"ERROR: {error}", err=True)
    sys.exit(1 if report.errors else 0)
