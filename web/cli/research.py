"""`telerad research export REQUEST_ID --out DIR`: produce the de-identified export of an APPROVED research
request (CH-8.2) and write it into DIR, for scripts run by an administrator on the server. The export is recorded
as the page records it (which cases, protocol, approval) and delivered once, as downloaded by "cli": a request not
approved, or whose export was already delivered, is refused. `telerad research purge` (for cron) deletes the exports
not downloaded in time (the worker also does it hourly)."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from engine.errors import Conflict, NotFound
from engine.services.research import get_request, take_download
from integrations.dicom.research_export import produce_export, purge_exports, research_dir
from web.cli.common import CLI_ACTOR, engine_context, load_settings, require_migrated


@click.group(help="De-identified research exports (CH-8.2).")
def research() -> None:
    pass


@research.command("export", help="Produce the export of an approved request and write it (a zip) into --out.")
@click.argument("request_id", type=int)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder the zip is written into (created if needed).")
def export(request_id: int, out_dir: Path) -> None:
    settings = load_settings()
    require_migrated(settings)
    folder = research_dir(settings.instance_path)
    with engine_context() as ctx:
        try:
            status = get_request(ctx, CLI_ACTOR, request_id).status
            if status in ("pending", "refused", "approved", "failed"):  # refused unless approved (Conflict)
                produce_export(ctx, request_id, settings.instance_path / "dicom", folder)
            name = take_download(ctx, CLI_ACTOR, request_id)
        except (Conflict, NotFound) as err:
            raise click.ClickException(str(err)) from err
        view = get_request(ctx, CLI_ACTOR, request_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"export-recherche-{request_id}.zip"
    shutil.move(str(folder / name), target)
    manifest = view.manifest or {}
    click.echo(f"Export n° {request_id} écrit dans {target} : {len(manifest.get('case_ids', []))} dossier(s), "
               f"{manifest.get('image_count', 0)} image(s), {len(manifest.get('left_out', []))} image(s) exclue(s), "
               f"SHA-256 {view.sha256}")


@research.command(help="Delete the exports not downloaded within their time limit (for cron; the pages also do it).")
def purge() -> None:
    settings = load_settings()
    require_migrated(settings)
    with engine_context() as ctx:
        expired, removed = purge_exports(ctx, research_dir(settings.instance_path))
    click.echo(f"{expired} export(s) expiré(s), {removed} fichier(s) supprimé(s).")
