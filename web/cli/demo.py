"""`telerad demo`: demo data in an empty database (see web.cli.demo_data)."""

from __future__ import annotations

import json

import click

from engine.domain.actors import Actor
from engine.services.bootstrap import build_context
from engine.services.database import has_accounts
from engine.services.definitions import deploy_library
from integrations.dicom.demo_images import add_demo_images
from web.cli.common import load_settings, require_migrated
from web.cli.demo_data import create_demo, create_demo_ct_case, create_demo_on_call
from web.cli.demo_fees import add_demo_fees
from web.cli.demo_history import add_demo_history
from web.cli.demo_packs import create_demo_packs
from web.cli.demo_site_quality import create_demo_site_quality


@click.command(help="Create demo data (territories, sites, one user per role, cases) in an empty database.")
@click.option("--json", "as_json", is_flag=True, help='Print {"users": [{"username", "password", "totp_secret", '
                                                      '"roles"}]}.')
def demo(as_json: bool) -> None:
    settings = load_settings()
    require_migrated(settings)
    ctx = build_context(settings.database_url, keys=settings.key_ring())
    if has_accounts(ctx):
        message = "the database already has users: demo data is only created in an empty database"
        if as_json:
            click.echo(json.dumps({"users": [], "skipped": message}))
        else:
            click.echo(message)
        return
    deploy_library(ctx, Actor("cli"), settings.workflows_dir)
    accounts = create_demo(ctx)
    create_demo_on_call(ctx, ctx.clock.now())
    create_demo_site_quality(ctx)  # site visits (one overdue), devices (one validated), a reading workstation
    add_demo_history(ctx, accounts, settings.database_url)  # finished cases of the past weeks (indicators)
    add_demo_fees(ctx)  # the CCAM acts of those cases (SAMPLE table): the finance view's statements (/fees)
    create_demo_packs(ctx)  # the Pays de Brest on the 2020 charter; dr.legall over the 2025 cap once switched
    ct_case = create_demo_ct_case(ctx)  # a head CT: its images and a prior, where the SCP and the upload store them
    images = add_demo_images(ctx, settings.instance_path / "dicom", case_id=ct_case)
    if as_json:
        click.echo(json.dumps({"users": accounts}, ensure_ascii=False, indent=2))
        return
    click.echo(f"Demo data created. Log in at http://{settings.host}:{settings.port}/ with one of these accounts;")
    click.echo("the second factor is a TOTP code: add the secret to an authenticator app "
               "(or run: python -c \"import pyotp; print(pyotp.TOTP('SECRET').now())\").\n")
    click.echo("dr.legall is on call for the Pays de Brest every night (18:30-08:00, Paris time) for two weeks: "
               "an urgent request at night reaches him first (Administration -> Gardes).\n")
    if images is not None:
        click.echo(f"Case {images.case_id} has a head CT ({images.instances} images) and a prior CT of the patient "
                   f"one year older: dr.legall opens them in the case's viewer (/cases/{images.case_id}/viewer).\n")
    for account in accounts:
        click.echo(f"  {account['username']:<12} password {account['password']}  TOTP secret "
                   f"{account['totp_secret']}  roles {', '.join(account['roles'])}")
