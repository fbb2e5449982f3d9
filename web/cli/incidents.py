"""`telerad incident declare|close|list`: downtime incidents (CH-5.5) from the command line, for scripts and cron,
as from the page (engine.services.incidents), recorded as done by "cli"."""

from __future__ import annotations

import json
from datetime import datetime

import click

from engine.errors import NotFound
from engine.services.incidents import IncidentError, close_incident, declare_incident, list_incidents
from web.cli.common import CLI_ACTOR, engine_context, load_settings, require_migrated
from web.shared.formatting import PARIS


def _moment(value: str | None, option: str) -> datetime | None:
    """An ISO date and time; without an offset, Paris time."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter("date et heure ISO attendues, par exemple 2026-12-08T02:30",
                                 param_hint=option) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=PARIS)


@click.group("incident", help="Downtime incidents: IT or network failures at a site or on Telerad's side (CH-5.5).")
def incident() -> None:
    pass


@incident.command(help="Declare an incident at a site (its banner shows on the site's users' pages).")
@click.option("--site", "site_id", required=True, help="The site's id.")
@click.option("--kind", type=click.Choice(["it", "network"]), required=True, help="IT or network failure.")
@click.option("--side", type=click.Choice(["site", "telerad"]), required=True,
              help="Which side failed: the requesting site or the radiologists (Telerad).")
@click.option("--start", default=None, help="Start, ISO date and time (Paris time without offset); default now.")
@click.option("--description", default="", help="What failed.")
def declare(site_id: str, kind: str, side: str, start: str | None, description: str) -> None:
    require_migrated(load_settings())
    with engine_context() as ctx:
        try:
            number = declare_incident(ctx, CLI_ACTOR, site_id, kind, side,
                                      _moment(start, "--start") or ctx.clock.now(), description)
        except IncidentError as err:
            raise click.ClickException(str(err)) from err
    click.echo(f"Incident n° {number} déclaré.")


@incident.command(help="Close an open incident; prints its duration.")
@click.argument("incident_id", type=int)
@click.option("--end", default=None, help="End, ISO date and time (Paris time without offset); default now.")
@click.option("--note", default="", help="Closing note.")
def close(incident_id: int, end: str | None, note: str) -> None:
    require_migrated(load_settings())
    with engine_context() as ctx:
        try:
            minutes = close_incident(ctx, CLI_ACTOR, incident_id, _moment(end, "--end"), note)
        except NotFound as err:
            raise click.ClickException(f"Incident n° {incident_id} inconnu.") from err
        except IncidentError as err:
            raise click.ClickException(str(err)) from err
    click.echo(f"Incident n° {incident_id} clos après {minutes // 60} h {minutes % 60:02d} min.")


@incident.command("list", help="List the incidents, newest first.")
@click.option("--open", "open_only", is_flag=True, help="Only the incidents in progress.")
@click.option("--site", "site_id", default=None, help="Only this site's.")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def list_command(open_only: bool, site_id: str | None, as_json: bool) -> None:
    require_migrated(load_settings())
    with engine_context() as ctx:
        now = ctx.clock.now()
        found = list_incidents(ctx, CLI_ACTOR, open_only=open_only, site_id=site_id)
    rows = [{"id": i.id, "site": i.site_id, "kind": i.kind, "side": i.side, "started_at": i.started_at.isoformat(),
             "ended_at": i.ended_at.isoformat() if i.ended_at else None, "minutes": i.duration_minutes(now),
             "declared_by": i.declared_by, "description": i.description} for i in found]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("Aucun incident.")
    for i in found:
        state = f"clos le {i.ended_at.astimezone(PARIS):%d/%m/%Y %H:%M}" if i.ended_at else "en cours"
        click.echo(f"{i.id}\t{i.site_id}\t{i.label}\tdepuis le {i.started_at.astimezone(PARIS):%d/%m/%Y %H:%M}\t"
                   f"{state}\t{i.duration_minutes(now)} min")
