"""`telerad deploy` and `telerad validate`: diagrams from files to the engine."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from engine.domain.actors import Actor
from engine.errors import DefinitionRefused
from engine.services.bootstrap import build_context
from engine.services.definitions import deploy_library
from engine.services.diagram_check import validate_diagram_files
from web.cli.common import load_settings, require_migrated


@click.command(help="Deploy the diagrams of a folder (default: workflows/bpmn/) whose content is new.")
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
def deploy(directory: Path | None) -> None:
    settings = load_settings()
    require_migrated(settings)
    ctx = build_context(settings.database_url, keys=settings.key_ring())
    try:
        results = deploy_library(ctx, Actor("cli"), directory or settings.workflows_dir)
    except DefinitionRefused as err:
        for finding in err.findings:
            click.echo(f"{finding.file}:{finding.element_id}: [{finding.rule}] {finding.message}", err=True)
        raise click.ClickException("deployment refused") from err
    for item in results:
        state = "deployed" if item.created else "unchanged"
        click.echo(f"{item.process_id} v{item.version}: {state}")


@click.command(help="Validate diagram files (.bpmn, .dmn): each finding with its element id, rule and message. "
                   "Files in the same folders are read too, so call activities and decisions resolve.")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True,
              help='Print {"files": [{"file", "errors": [...], "warnings": [...]}]}.')
def validate(files: tuple[Path, ...], as_json: bool) -> None:
    shown = validate_diagram_files(files)
    if as_json:
        click.echo(json.dumps({"files": [r.as_dict() for r in shown]}, ensure_ascii=False, indent=2))
    else:
        for report in shown:
            for kind, findings in (("error", report.errors), ("warning", report.warnings)):
                for f in findings:
                    click.echo(f"{report.file}:{f.element_id or '-'}: {kind} [{f.rule}] {f.message}")
            click.echo(f"{report.file}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    sys.exit(1 if any(r.errors for r in shown) else 0)
