"""`telerad fees`: the CCAM table loaded by date of effect (the CNAM's CCAM workbook or Telerad's CSV), and the
monthly fee statements (CH-7) computed or issued from the command line as from the pages
(engine.services.fee_statements), recorded as done by "cli"."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import click

from engine.domain.fees import RADIOLOGIST as RADIOLOGIST_SCOPE
from engine.domain.fees import CcamTableError
from engine.errors import Conflict
from engine.services.ccam_ameli import CNAM_EXCEL
from engine.services.ccam_tables import LoadedTable, import_table, technical_fee
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


FAMILY_NAMES = {"scanner": "scanner", "irm": "IRM", "radiologie": "radiologie conventionnelle"}
SKIPPED_NAMES = {"no_code": "ligne(s) sans code CCAM (titres, chapitres, notes)",
                 "not_imaging": "acte(s) hors imagerie (ni scanographie, ni remnographie, ni mammographie, "
                                "ni radiographie)",
                 "other_activity_phase": "acte(s) d'imagerie d'une autre activité que 1 ou d'une autre phase que 0",
                 "no_tariff": "acte(s) d'imagerie sans tarif (non pris en charge)"}


def summary_lines(table: LoadedTable) -> list[str]:
    """What a load kept and skipped, in French (the command's output)."""
    source = "fichier CCAM de la CNAM" if table.source_format == CNAM_EXCEL else "CSV Telerad"
    lines = [f"Table CCAM n° {table.id} chargée ({source}) : {table.act_count} acte(s), en vigueur "
             f"depuis le {table.effective_from.isoformat()} ({table.source_name})."]
    lines += [f"  {FAMILY_NAMES.get(family, family)} : {count} acte(s)" for family, count in sorted(table.kept.items())]
    if table.ct_technical_fee_eur is not None:
        lines.append(f"  forfait technique de scanner ajouté au tarif CCAM : {table.ct_technical_fee_eur} €")
    if table.mri_technical_fee_eur is not None:
        lines.append(f"  forfait technique d'IRM ajouté au tarif CCAM : {table.mri_technical_fee_eur} €")
    lines += [f"  écartés : {count} {SKIPPED_NAMES.get(reason, reason)}" for reason, count in table.skipped.items()
              if count]
    return lines


@fees.command("load-ccam", help="Load a CCAM table in effect from --effective: the CNAM's CCAM workbook from ameli.fr "
                                "(.xls, .xlsx or .ods; its imaging acts kept; CT and MRI acts need --ct-technical-fee "
                                "and --mri-technical-fee, the technical fees of the remuneration document added to "
                                "their tariff) or Telerad's CSV (code,label,modality,family,price_eur,"
                                "technical_share_eur). See docs/fees.md. A table with the same date of effect is "
                                "replaced. A bad file is refused whole.")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--effective", required=True, help="Date of effect, YYYY-MM-DD.")
@click.option("--ct-technical-fee", "ct_fee", default=None, help="CT technical fee in euros (CNAM file), e.g. 60.00.")
@click.option("--mri-technical-fee", "mri_fee", default=None,
              help="MRI technical fee in euros (CNAM file), e.g. 150.00.")
def load_ccam(path: Path, effective: str, ct_fee: str | None, mri_fee: str | None) -> None:
    try:
        day = date.fromisoformat(effective.strip())
    except ValueError:
        raise click.ClickException(f"Date d'effet invalide : « {effective[:20]} » (exemple : 2026-01-01).") from None
    try:
        fees_given = (technical_fee(ct_fee, "Forfait technique de scanner"),
                      technical_fee(mri_fee, "Forfait technique d'IRM"))
    except CcamTableError as err:
        raise click.ClickException(str(err)) from err
    require_migrated(load_settings())
    with engine_context() as ctx:
        try:
            table = import_table(ctx, CLI_ACTOR, path, day, ct_technical_fee=fees_given[0],
                                 mri_technical_fee=fees_given[1])
        except CcamTableError as err:
            raise click.ClickException(f"{err} ; rien n'a été chargé.") from err
    click.echo("\n".join(summary_lines(table)))


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


from web.cli.fees_settings import settings  # noqa: E402  (telerad fees settings list|set, CH-6.4)

fees.add_command(settings)
