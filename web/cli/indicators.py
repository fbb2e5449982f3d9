"""`telerad indicators`: the quality indicators of a period (CH-6.3), as a French table or as JSON (the same figures
as the dashboard /admin/indicators; definitions in docs/indicators.md)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import click

from engine.domain.urgency import LEVELS
from engine.services.bootstrap import build_context
from engine.services.indicators import MODALITIES, IndicatorError, IndicatorFilters, compute_indicators
from web.cli.common import load_settings, require_migrated
from web.shared.formatting import PARIS
from web.shared.indicator_labels import summary_rows

DEFAULT_DAYS = 28


def _day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"date attendue au format AAAA-MM-JJ, pas « {value} »", param_hint=name) from None


@click.command(help="Print the quality indicators of a period (Europe/Paris calendar days, both included): requests, "
                    "acceptance by tier, turnaround and its share within the due time by urgency, phone calls, "
                    "refusals, more-information loops, announcements, acknowledgement, teleexpertise, image "
                    "transfer, technical incidents, on-call coverage. The last 28 days by default.")
@click.option("--from", "start", metavar="DATE", help="First day (YYYY-MM-DD).")
@click.option("--to", "end", metavar="DATE", help="Last day (YYYY-MM-DD), today by default.")
@click.option("--site", "site_id", metavar="SITE", help="Only the cases of this site (its id).")
@click.option("--territory", "territory_id", metavar="TERRITORY", help="Only the cases of this territory's sites.")
@click.option("--radiologist", metavar="USERNAME", help="Only the cases this radiologist reported.")
@click.option("--urgency", type=click.Choice(LEVELS), help="Only the cases of this urgency level.")
@click.option("--modality", type=click.Choice(MODALITIES), help="Only the cases requesting this modality.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON (shape in docs/indicators.md).")
def indicators(start: str | None, end: str | None, site_id: str | None, territory_id: str | None,
               radiologist: str | None, urgency: str | None, modality: str | None, as_json: bool) -> None:
    settings = load_settings()
    require_migrated(settings)
    ctx = build_context(settings.database_url, keys=settings.key_ring())
    last = _day(end, "--to") or ctx.clock.now().astimezone(PARIS).date()
    try:
        first = _day(start, "--from") or last - timedelta(days=DEFAULT_DAYS - 1)
    except OverflowError:
        raise click.BadParameter("date hors des bornes", param_hint="--to") from None
    filters = IndicatorFilters(first, last, site_id=site_id, territory_id=territory_id, radiologist=radiologist,
                               urgency=urgency, modality=modality)
    try:
        figures = compute_indicators(ctx, filters)
    except IndicatorError as err:
        raise click.ClickException(str(err)) from None
    if as_json:
        click.echo(json.dumps(figures, ensure_ascii=False, indent=2))
        return
    click.echo(f"Indicateurs qualité du {first:%d/%m/%Y} au {last:%d/%m/%Y} (heure de Paris)")
    chosen = ", ".join(f"{key} = {value}" for key, value in figures["filters"].items())
    click.echo(f"Filtres : {chosen or 'aucun'}\n")
    rows = summary_rows(figures)
    width = max(len(label) for _, label, _ in rows)
    current = None
    for section, label, value in rows:
        if section != current:
            click.echo(f"{'' if current is None else chr(10)}{section}")
            current = section
        click.echo(f"  {label:<{width}}  {value:>12}")
    click.echo("\nSemaine      Demandes  Diffusés  Dans le délai  Délai moyen")
    for week in figures["weekly"]:
        within = "—" if week["within_share"] is None else f"{week['within_share'] * 100:.0f} %"
        mean = "—" if week["mean_turnaround_minutes"] is None else f"{week['mean_turnaround_minutes']:.0f} min"
        click.echo(f"{week['week_start']}  {week['requests']:>8}  {week['released']:>8}  {within:>13}  {mean:>11}")
