"""`telerad charter ...`: the charter versions (rule packs, CH-9.1) each organisation follows, and the teleradiology
share of the radiologists (CH-3.5) with their declared activity."""

from __future__ import annotations

import json
from datetime import date

import click

from engine.domain.charter_packs import OVER_CAP_MODES, PACKS, SKIP, UnknownPack
from engine.services.charter_packs import PackError, assign_pack, list_assignments, organisations
from engine.services.teleradiology_share import ShareError, declare_activity, shares
from web.cli.common import CLI_ACTOR, engine_context, load_settings, require_migrated


def _date(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"date attendue au format AAAA-MM-JJ : « {value} »", param_hint=what) from None


@click.group("charter", help="Versions de la charte (2020, 2025) par organisation ; part de téléradiologie.")
def charter() -> None:
    require_migrated(load_settings())


@charter.command("list", help="Les versions de la charte, les organisations et la version choisie par chacune.")
@click.option("--json", "as_json", is_flag=True, help='Print {"packs": [...], "assignments": [...], '
                                                      '"organisations": [...]}.')
def list_command(as_json: bool) -> None:
    with engine_context() as ctx:
        assignments, places = list_assignments(ctx), organisations(ctx)
    if as_json:
        click.echo(json.dumps({
            "packs": [{"id": p.id, "version": p.version, "title": p.title, "parameters": dict(p.parameters)}
                      for p in PACKS.values()],
            "assignments": [{"organisation": a.organisation, "label": a.organisation_label, "pack": a.pack,
                             "from": a.effective_from.isoformat(), "share_cap_percent": a.share_cap_percent,
                             "over_cap_mode": a.over_cap_mode, "by": a.created_by} for a in assignments],
            "organisations": [{"key": o.key, "label": o.label} for o in places]}, ensure_ascii=False, indent=2))
        return
    for pack in PACKS.values():
        click.echo(f"Version {pack.id} ({pack.version}) : {pack.title}")
    click.echo("\nOrganisations : " + (", ".join(o.key for o in places) or "aucune"))
    if not assignments:
        click.echo("\nAucune organisation n'a choisi de version : la charte 2020 s'applique partout.")
    for a in assignments:
        cap = f", plafond {a.share_cap_percent} %" if a.share_cap_percent else ""
        click.echo(f"  {a.organisation_label} : charte {a.pack} à partir du {a.effective_from:%d/%m/%Y} "
                   f"({'écarter' if a.over_cap_mode == SKIP else 'avertir'} au-delà du plafond{cap}) — {a.created_by}")


@charter.command("assign", help="Appliquer une version de la charte aux nouveaux dossiers d'une organisation "
                                "(territory:<id> ou convention:<n°>) à partir d'une date.")
@click.argument("organisation")
@click.argument("pack", type=click.Choice(sorted(PACKS)))
@click.option("--from", "effective_from", required=True, help="Date d'application (AAAA-MM-JJ), aujourd'hui ou après.")
@click.option("--cap", "cap", type=int, default=None, help="Plafond de la part de téléradiologie, en % (défaut : "
                                                           "celui de la version).")
@click.option("--over-cap", type=click.Choice(OVER_CAP_MODES), default=SKIP,
              help="Au-delà du plafond : écarter le radiologue (skip) ou avertir seulement (warn).")
def assign_command(organisation: str, pack: str, effective_from: str, cap: int | None, over_cap: str) -> None:
    start = _date(effective_from, "--from")
    with engine_context() as ctx:
        try:
            assign_pack(ctx, CLI_ACTOR, organisation, pack, start, cap, over_cap)
        except (PackError, UnknownPack) as err:
            raise click.ClickException(str(err)) from err
    click.echo(f"{organisation} : charte {pack} pour les dossiers commencés à partir du {start:%d/%m/%Y}.")


@charter.command("declare", help="Déclarer l'activité totale (tous actes) d'un radiologue sur une période.")
@click.argument("username")
@click.option("--from", "period_start", required=True, help="Début de la période (AAAA-MM-JJ).")
@click.option("--to", "period_end", required=True, help="Fin de la période (AAAA-MM-JJ).")
@click.option("--acts", type=int, required=True, help="Nombre total d'actes sur la période.")
def declare_command(username: str, period_start: str, period_end: str, acts: int) -> None:
    start, end = _date(period_start, "--from"), _date(period_end, "--to")
    with engine_context() as ctx:
        try:
            declare_activity(ctx, CLI_ACTOR, username, start, end, acts)
        except ShareError as err:
            raise click.ClickException(str(err)) from err
    click.echo(f"Activité de « {username} » déclarée : {acts} actes du {start:%d/%m/%Y} au {end:%d/%m/%Y}.")


@charter.command("shares", help="La part de téléradiologie de chaque radiologue sur 12 mois glissants.")
@click.option("--json", "as_json", is_flag=True, help='Print {"shares": [{"username", "teleradiology_acts", '
                                                      '"declared_acts", "share", "exclusive", "over_cap"}]}.')
def shares_command(as_json: bool) -> None:
    with engine_context() as ctx:
        found = shares(ctx, CLI_ACTOR)
    if as_json:
        click.echo(json.dumps({"shares": [{"username": s.username, "teleradiology_acts": s.teleradiology_acts,
                                           "declared_acts": s.declared_acts, "share": s.share,
                                           "exclusive": s.exclusive, "over_cap": s.over_cap} for s in found]},
                              ensure_ascii=False, indent=2))
        return
    for s in found:
        share = "—" if s.share is None else f"{s.share * 100:.0f} %"
        flags = " ".join(f for f, on in (("exclusif", s.exclusive), ("au-delà de 20 %", s.over_cap)) if on)
        click.echo(f"  {s.name:<32} {s.teleradiology_acts:>6} actes de téléradiologie / "
                   f"{s.declared_acts if s.declared_acts is not None else '—':>6} déclarés  {share:>6}  {flags}")
