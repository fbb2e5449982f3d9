"""`telerad dicom pacs ...`: the PACS of each site, queried for the prior exams (integrations.dicom.priors)."""

from __future__ import annotations

import click

from integrations.dicom.pacs import list_pacs, remove_pacs, set_pacs
from web.cli.common import CLI_ACTOR, engine_context, load_settings, require_migrated


@click.group("pacs", help="PACS des sites, interrogés pour les examens antérieurs des patients.")
def pacs() -> None:
    pass


@pacs.command("set", help="Déclarer (ou remplacer) le PACS d'un site : titre AE, hôte et port DICOM. Son titre AE "
                          "devient une modalité autorisée du site (il envoie les examens par C-MOVE).")
@click.argument("site")
@click.argument("ae_title")
@click.argument("host")
@click.argument("port")
@click.option("--dicomweb-url", default=None, help="Adresse DICOMweb du PACS (conservée pour information).")
def set_command(site: str, ae_title: str, host: str, port: str, dicomweb_url: str | None) -> None:
    require_migrated(load_settings())
    with engine_context() as ctx:
        set_pacs(ctx, CLI_ACTOR, site, ae_title, host, port, dicomweb_url)
    click.echo(f"PACS du site {site} : {ae_title.strip()} sur {host.strip()}:{port.strip()}")


@pacs.command("remove", help="Retirer le PACS d'un site (ses examens antérieurs ne sont plus demandés).")
@click.argument("site")
def remove_command(site: str) -> None:
    require_migrated(load_settings())
    with engine_context() as ctx:
        remove_pacs(ctx, CLI_ACTOR, site)
    click.echo(f"PACS du site {site} retiré")


@pacs.command("list", help="Lister les PACS déclarés.")
def list_command() -> None:
    require_migrated(load_settings())
    with engine_context() as ctx:
        found = list_pacs(ctx)
    for line in found:
        click.echo(f"{line.site_id}\t{line.ae_title}\t{line.host}:{line.port}\t{line.dicomweb_url or '-'}")
    if not found:
        click.echo("aucun PACS déclaré")
