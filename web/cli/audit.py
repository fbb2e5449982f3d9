"""`telerad audit ...`: the audit trail."""

from __future__ import annotations

import json
import sys

import click

from engine.services.audit import verify_audit
from engine.services.bootstrap import build_context
from web.cli.common import load_settings, require_migrated


@click.group(help="Audit trail.")
def audit() -> None:
    pass


@audit.command("verify", help="Recompute the audit hash chain; exit 1 if any event was altered or removed.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def audit_verify(as_json: bool) -> None:
    settings = load_settings()
    require_migrated(settings)
    checked, problems = verify_audit(build_context(settings.database_url, keys=settings.key_ring()))
    if as_json:
        click.echo(json.dumps({"checked": checked, "ok": not problems,
                               "problems": [{"seq": p.seq, "message": p.message} for p in problems]}))
    else:
        for problem in problems:
            click.echo(f"event #{problem.seq}: {problem.message}", err=True)
        click.echo(f"{checked} audit events checked: {'chain intact' if not problems else 'CHAIN BROKEN'}")
    sys.exit(1 if problems else 0)
