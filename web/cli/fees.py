"""`telerad fees`: the CCAM table loaded by date of effect, and the monthly fee statements (CH-7) computed or issued
from the command line as from the pages (engine.services.fee_statements), recorded as done by "cli"."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import click

from engine.domain.fees import RADIOLOGIST as RADIOLOGIST_SCOPE
from engine.domain.fees import CcamTableError
from engine.errors import Conflict
from engine.services.ccam_tables import list_tables, load_table
from engine.services.fee_statements import (
    FeeStatementError,
    Scope,
    get_statement,
    issue_statement,
    month_radiologists,
    parse_month,
    preview_statement,
)
from web.cli.common import CLI_ACTOR, engine_context, load_settings, require_migrated


@click.group("fees", help="Acts and fees (CH-7): CCAM tables and monthly statements per radiologist and per site.")
def fees() -> None:
    pass


@fees.command("load-ccam", help="Load a CCAM table (CSV: code,label,modality,family,price_eur,technical_share_eur; "
                                "see engine/domain/data/README.md) in effect from --effective; a table with the same "
                                "date of effect is replaced. A bad file is refused whole.")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--effective", required=True, help="Date of effect, YYYY-MM-DD.")
def load_ccam(path: Path, effective: str) -> None:
    try:
        day = date.fromisoformat(effective.strip())
    except ValueError:
        raise click.ClickException(f"Date d'effet invalide : « {effective[:20]} » (exemple : 2026-01-01).") from None
    require_migrated(load_settings())
    with engine_context() as ctx:
        try:
            table_id = load_table(ctx, CLI_ACTOR, path, day)
        except CcamTableError as err:
            raise click.ClickException(f"{err} ; rien n'a été chargé.") from err
        table = next(t for t in list_tables(ctx) if t.id == table_id)
    click.echo(f"Table CCAM n° {table.id} chargée : {table.act_count} acte(s), en vigueur depuis le "
               f"{table.effective_from.isoformat()} ({table.source_name}).")


def _text(snapshot: dict[str, Any]) -> str:
    totals = snapshot["totals"]
    lines = [f"{snapshot['scope']['name']} — {snapshot['month']}"
             + (" (TABLE CCAM D'EXEMPLE : montants illustratifs)" if snapshot.get("sample_table") else "")]
    lines += [f"  dossier {x['case_id']:>6}  {x['code']}  {x['price_eur']:>9} €  radiologue "
              f"{x['radiologist_eur']:>9} €  site {x['site_eur']:>9} €" for x in snapshot["lines"]]
    lines += [f"  correction dossier {a['case_id']}  {a['amount_eur']} €  ({a['reason']})"
              for a in snapshot["adjustments"]]
    lines += [f"  {p['payer_name']} doit à {p['payee_name']} : {p['amount_eur']} €" for p in snapshot["payments"]]
    lines.append(f"  total : {totals['acts']} acte(s), dû aux radiologues {totals['due_to_radiologists_eur']} €"
                 + (f", frais de télétransmission du site {totals['transmission_costs_eur']} €, solde du site "
                    f"{totals['site_net_eur']} €" if snapshot["scope"]["kind"] == "site" else ""))
    return "\n".join(lines)


@fees.command(help="The month's statements: the site's (--site), one radiologist's (--radiologist), or one per "
                   "radiologist of the month. --issue freezes them (a month that is over).")
@click.option("--month", required=True, help="The month, YYYY-MM.")
@click.option("--site", "site_id", default=None, help="The site's id.")
@click.option("--radiologist", default=None, help="The radiologist's username.")
@click.option("--issue", "issue", is_flag=True, help="Issue the statement(s): frozen, then never changed.")
@click.option("--json", "as_json", is_flag=True, help="Print the statement(s) as JSON.")
def statement(month: str, site_id: str | None, radiologist: str | None, issue: bool, as_json: bool) -> None:
    if site_id is not None and radiologist is not None:
        raise click.UsageError("Indiquez soit --site, soit --radiologist.")
    try:
        period = parse_month(month)
        explicit = (Scope("site", site_id) if site_id is not None
                    else Scope(RADIOLOGIST_SCOPE, radiologist) if radiologist is not None else None)
    except FeeStatementError as err:
        raise click.ClickException(str(err)) from err
    require_migrated(load_settings())
    results = []
    with engine_context() as ctx:
        scopes = [explicit] if explicit else [Scope(RADIOLOGIST_SCOPE, r) for r in month_radiologists(ctx, period)]
        try:
            for scope in scopes:
                if issue:
                    issued = get_statement(ctx, CLI_ACTOR, issue_statement(ctx, CLI_ACTOR, scope, period))
                    results.append({"id": issued.id, "sha256": issued.sha256, **issued.snapshot})
                else:
                    results.append(preview_statement(ctx, CLI_ACTOR, scope, period))
        except (FeeStatementError, Conflict) as err:
            raise click.ClickException(str(err)) from err
    if as_json:
        click.echo(json.dumps(results if explicit is None else results[0], ensure_ascii=False, indent=2))
        return
    for result in results:
        click.echo(_text(result))
    if not results:
        click.echo(f"Aucun dossier compte rendu en {period.label}.")
