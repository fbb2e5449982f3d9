"""`telerad dicom ...`: the stored DICOM files."""

from __future__ import annotations

import json
from datetime import timedelta

import click

from integrations.dicom.orphans import find_orphans, remove_orphans
from web.cli.common import engine_context, load_settings, require_migrated
from web.cli.dicom_pacs import pacs


@click.group("dicom", help="Fichiers DICOM reçus.")
def dicom() -> None:
    pass


dicom.add_command(pacs)


@dicom.command("orphans", help="Lister les fichiers DICOM qu'aucune instance indexée ou retenue ne désigne "
                               "(et les écritures interrompues), plus anciens que --older-than minutes ; "
                               "--remove les supprime.")
@click.option("--older-than", "minutes", default=60, show_default=True, type=click.IntRange(1, 60 * 24 * 365),
              help="Âge minimal en minutes (un fichier en cours d'indexation est plus récent).")
@click.option("--remove", is_flag=True, help="Supprimer les fichiers trouvés.")
@click.option("--json", "as_json", is_flag=True, help='Afficher {"orphans": [{"path", "size"}], "removed": N}.')
def orphans(minutes: int, remove: bool, as_json: bool) -> None:
    settings = load_settings()
    require_migrated(settings)
    with engine_context() as ctx:
        found = find_orphans(ctx, settings.instance_path / "dicom", now=ctx.clock.now(),
                             grace=timedelta(minutes=minutes))
    removed = remove_orphans(found) if remove else 0
    if as_json:
        click.echo(json.dumps({"orphans": [{"path": str(o.path), "size": o.size} for o in found],
                               "removed": removed}))
        return
    for orphan in found:
        click.echo(f"{orphan.path}  {orphan.size} octets")
    total = sum(o.size for o in found)
    click.echo(f"{len(found)} fichier(s) orphelin(s), {total} octets"
               + (f" ; {removed} supprimé(s)" if remove else " (--remove pour les supprimer)"))
