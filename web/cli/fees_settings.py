"""`telerad fees settings list|set`: the settings of the remuneration document (CH-6.4), the on-call fee, the
teleexpertise fee and the monthly transmission costs, organisation-wide or for a site, by date of effect
(engine.services.fee_settings), changed as done by "cli" and audited."""

from __future__ import annotations

import json

import click

from engine.services.fee_settings import (
    DEFAULT_NOTE,
    LABELS,
    NAMES,
    FeeSettingError,
    SettingValue,
    check_name,
    parse_amount,
    parse_effective,
    set_setting,
    settings_overview,
)
from web.cli.common import CLI_ACTOR, engine_context, load_settings, require_migrated


@click.group("settings", help="Settings of the remuneration document (CH-6.4): " + ", ".join(NAMES) + ".")
def settings() -> None:
    pass


def _line(value: SettingValue) -> str:
    since = DEFAULT_NOTE if value.default or value.effective_from is None else \
        f"depuis le {value.effective_from.isoformat()}"
    return f"  {value.name:<20} {value.amount_eur:>9.2f} €  ({since})"


@settings.command("list", help="The values in force today (organisation, sites with their own) and the history.")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON.")
def list_settings(as_json: bool) -> None:
    require_migrated(load_settings())
    with engine_context() as ctx:
        overview = settings_overview(ctx, CLI_ACTOR)
    if as_json:
        click.echo(json.dumps(overview.as_dict(), ensure_ascii=False, indent=2))
        return
    click.echo(f"En vigueur le {overview.today.isoformat()} — organisation :")
    click.echo("\n".join(_line(v) for v in overview.organisation))
    for site in overview.sites:
        click.echo(f"Site {site.site_name} ({site.site_id}) :")
        click.echo("\n".join(_line(v) + ("" if v.site_id else " [organisation]") for v in site.values))
    click.echo("Historique :" if overview.history else "Historique : aucun paramètre fixé.")
    for v in overview.history:
        click.echo(f"  {v.effective_from}  {v.name:<20} {v.site_id or 'organisation':<14} {v.amount_eur:>9.2f} €  "
                   f"par {v.set_by} le {v.set_at.isoformat(timespec='minutes') if v.set_at else ''} : {v.reason}")


@settings.command("set", help="Set NAME (" + ", ".join(NAMES) + ") to AMOUNT euros from --effective, for "
                              "the organisation or one --site; audited. A date of effect in a month whose statement "
                              "is issued is refused.")
@click.argument("name")
@click.argument("amount")
@click.option("--effective", required=True, help="Date of effect, YYYY-MM-DD.")
@click.option("--site", "site_id", default=None, help="The site whose remuneration document fixes this value.")
@click.option("--reason", required=True, help="Why (the remuneration document's reference).")
def set_value(name: str, amount: str, effective: str, site_id: str | None, reason: str) -> None:
    require_migrated(load_settings())
    with engine_context() as ctx:
        try:
            value = parse_amount(check_name(name), amount)
            day = parse_effective(effective)
            setting_id = set_setting(ctx, CLI_ACTOR, name, amount, day, reason, site_id=site_id)
        except FeeSettingError as err:
            raise click.ClickException(f"{err} Rien n'a été enregistré.") from err
    click.echo(f"Paramètre n° {setting_id} enregistré : {LABELS[name]}, {value:.2f} € "
               f"{'pour le site ' + site_id if site_id else 'pour l’organisation'}, en vigueur à partir du "
               f"{day.isoformat()}.")
