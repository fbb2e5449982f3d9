"""`telerad conformance`: the charter conformance matrix."""

from __future__ import annotations

import json
import sys

import click

from engine.domain.charter_packs import PACKS
from engine.services.bootstrap import build_context
from engine.services.conformance import conformance_matrix, for_pack, summary
from engine.services.conformance_sources import deployed_diagrams, registry_forms
from web import config
from web.cli.common import load_settings, require_migrated


@click.command(help="Print the charter conformance matrix: for each rule, what enforces it in the product (diagram "
                   "elements of the deployed versions, forms their user tasks use, code reached from a route, a "
                   "command, a listener or an operation a diagram calls) and which tests prove it. Exit 1 when a "
                   "rule is only declared (marks that nothing in the product reaches).")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"rules": [{"id", "title", "scope", "status", "enforced_by": [{"where", "kind", '
                   '"reached_from"}], "tests", "negative_tests", ...}]}.')
@click.option("--repo", is_flag=True, help="Analyse the repository's diagrams (workflows/bpmn/) and form schemas "
                                           "instead of the deployed versions (no database needed).")
@click.option("--charter", "pack", type=click.Choice(sorted(PACKS)), default=None,
              help="The matrix of one version of the charter (rule pack: 2020, or 2025 with its update's rules); "
                   "every rule of the catalogue by default.")
def conformance(as_json: bool, repo: bool, pack: str | None) -> None:
    if repo:
        rules = conformance_matrix(config.PROJECT_ROOT)
    else:
        settings = load_settings()
        require_migrated(settings)
        ctx = build_context(settings.database_url, keys=settings.key_ring())
        rules = conformance_matrix(config.PROJECT_ROOT, deployed_diagrams(ctx), registry_forms(ctx))
    if pack is not None:
        rules = for_pack(rules, pack)
    declared_only = [r.id for r in rules if r.status == "declared_only"]
    if as_json:
        click.echo(json.dumps({"rules": [r.as_dict() for r in rules], **({"charter": pack} if pack else {})},
                              ensure_ascii=False, indent=2))
        sys.exit(1 if declared_only else 0)
    for rule in rules:
        click.echo(f"{rule.id:<10} {rule.status_label:<19} {len(rule.enforced_by):>3} application(s) atteinte(s) "
                   f"{len(rule.tests):>3} test(s) dont {len(rule.negative_tests)} négatif(s)  {rule.title[:60]}")
        for enforcement in rule.enforced_by:
            origins = list(enforcement.reached_from)
            more = f" … et {len(origins) - 3} autre(s)" if len(origins) > 3 else ""
            click.echo(f"{'':<12}application : {enforcement.where} — atteinte depuis : {' ; '.join(origins[:3])}{more}")
        for unreached in rule.unreached:
            click.echo(f"{'':<12}non atteinte : {unreached.where} ({unreached.reason})")
        for test in rule.tests:
            click.echo(f"{'':<12}{'test négatif' if test in rule.negative_tests else 'test'} : {test}")
        if rule.status in ("missing", "declared_only"):
            lacks = (["une application atteinte"] if not rule.enforced_by else []) + (
                ["un test négatif"] if rule.missing_negative_test else [])
            click.echo(f"{'':<12}manque : {' et '.join(lacks)}")
        if rule.scope == "outside":
            click.echo(f"{'':<12}motif : {rule.reason}")
    counts = summary(rules)
    plural = {"enforced": "appliquée(s)", "declared_only": "déclarée(s) seulement", "missing": "manquante(s)",
              "outside": "hors logiciel"}
    heading = f"\nCharte {pack} : " if pack else "\n"
    click.echo(heading + f"{len(rules)} règles : " + ", ".join(f"{counts[s]} {plural[s]}" for s in counts)
               + (f"\ndéclarées seulement : {', '.join(declared_only)}" if declared_only else ""))
    sys.exit(1 if declared_only else 0)
