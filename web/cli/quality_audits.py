"""`telerad audit-report`: the quarterly quality audit reports (CH-6.3), issued from the command line as from the
page (engine.services.quality_audits), recorded as issued by "cli"."""

from __future__ import annotations

import json

import click

from engine.domain.quality_audit import SITE, TERRITORY, AuditScope, QualityAuditError, parse_quarter
from engine.services.quality_audits import get_report, issue_report, list_reports
from web.cli.common import CLI_ACTOR, engine_context, load_settings, require_migrated


@click.group("audit-report", help="Quarterly quality audit reports of a site or an organisation (CH-6.3).")
def audit_report() -> None:
    pass


@audit_report.command(help="Issue the quarter's report of a site (--site) or an organisation (--territory): its "
                           "indicators and notable cases are frozen as a new version, audited.")
@click.option("--quarter", required=True, help="The quarter, e.g. 2026-Q4.")
@click.option("--site", "site_id", default=None, help="The site's id.")
@click.option("--territory", "territory_id", default=None, help="The organisation's (territory's) id.")
@click.option("--json", "as_json", is_flag=True, help="Print the issued report's snapshot as JSON.")
def issue(quarter: str, site_id: str | None, territory_id: str | None, as_json: bool) -> None:
    if (site_id is None) == (territory_id is None):
        raise click.UsageError("Indiquez soit --site, soit --territory.")
    try:
        scope = AuditScope(SITE, site_id) if site_id is not None else AuditScope(TERRITORY, territory_id or "")
        period = parse_quarter(quarter)
    except QualityAuditError as err:
        raise click.ClickException(str(err)) from err
    require_migrated(load_settings())
    with engine_context() as ctx:
        try:
            report_id = issue_report(ctx, CLI_ACTOR, scope, period)
        except QualityAuditError as err:
            raise click.ClickException(str(err)) from err
        report = get_report(ctx, CLI_ACTOR, report_id)
    if as_json:
        click.echo(json.dumps({"id": report.id, "sha256": report.sha256, **report.snapshot}, ensure_ascii=False,
                              indent=2))
        return
    counts = report.snapshot.get("notable_counts", {})
    click.echo(f"Rapport n° {report.id} émis : {report.snapshot['scope']['name']}, {report.quarter}, version "
               f"{report.version} ({sum(counts.values())} dossier(s) marquant(s)), SHA-256 {report.sha256}")


@audit_report.command("list", help="List the issued reports, newest quarter first.")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def list_command(as_json: bool) -> None:
    require_migrated(load_settings())
    with engine_context() as ctx:
        reports = list_reports(ctx, CLI_ACTOR)
    rows = [{"id": r.id, "scope": r.scope.kind, "scope_id": r.scope.id, "name": r.scope_name, "quarter": r.quarter,
             "version": r.version, "issued_by": r.issued_by, "issued_at": r.issued_at.isoformat(),
             "open_actions": r.open_actions} for r in reports]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        click.echo(f"{row['id']:>5}  {row['quarter']}  v{row['version']:<3} {row['name']}  émis par {row['issued_by']} "
                   f"le {row['issued_at']}  ({row['open_actions']} action(s) ouverte(s))")
    if not rows:
        click.echo("Aucun rapport émis.")
