"""`telerad keys ...`: the key file kept outside the database (engine.services.keyring)."""

from __future__ import annotations

import base64
import json
from typing import get_args

import click
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from engine.services.keyring import KeyKind, KeyRing
from engine.services.secrets_at_rest import SecretsUnreadable, reencrypt_secrets
from web.cli.common import engine_context, load_settings, require_migrated


@click.group(help="Keys kept outside the database: audit MACs, secrets at rest, signed audit heads.")
def keys() -> None:
    pass


@keys.command("show", help="List the keys of the key file (ids and dates, never the keys) and the public "
                           "signing keys with which anyone can check the exported audit heads.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def keys_show(as_json: bool) -> None:
    settings = load_settings()
    ring = settings.key_ring()
    document = {"file": str(settings.keys_path), "development": ring.is_development,
                **{kind: [{"id": key.id, "created": key.created, "newest": index == 0}
                          for index, key in enumerate(getattr(ring, kind))] for kind in ("audit", "secrets")},
                "signing": [{"id": key.id, "created": key.created, "newest": index == 0,
                             "public_key": _public(ring, key.id)} for index, key in enumerate(ring.signing)]}
    if as_json:
        click.echo(json.dumps(document))
        return
    click.echo(f"key file: {document['file']}")
    for kind in ("audit", "secrets", "signing"):
        for entry in document[kind]:
            extra = f"  public key (Ed25519, base64): {entry['public_key']}" if kind == "signing" else ""
            click.echo(f"{kind:8} {entry['id']}  created {entry['created']}{'  (newest)' if entry['newest'] else ''}"
                       f"{extra}")


@keys.command("rotate", help="Add a new newest key of KIND (audit, secrets or signing); the older keys stay to "
                             "verify and decrypt what they produced. Restart every Telerad process afterwards.")
@click.argument("kind", type=click.Choice(get_args(KeyKind)))
def keys_rotate(kind: KeyKind) -> None:
    settings = load_settings()
    path = settings.keys_path
    ring = settings.key_ring().rotated(kind)
    ring.save(path)
    click.echo(f"new {kind} key {getattr(ring, kind)[0].id} written to {path}")
    click.echo("copy the file to every machine of this install and restart every Telerad process")
    if kind == "secrets":
        click.echo("then run `telerad keys reencrypt --drop-old` to move the stored secrets to the new key")


@keys.command("reencrypt", help="Encrypt every stored secret (TOTP seeds) with the newest secrets key, in one "
                                "transaction; with --drop-old, then remove the older secrets keys from the file.")
@click.option("--drop-old", is_flag=True, help="Remove the older secrets keys once every secret is re-encrypted.")
def keys_reencrypt(drop_old: bool) -> None:
    settings = load_settings()
    require_migrated(settings)
    with engine_context() as ctx:
        try:
            report = reencrypt_secrets(ctx)
        except SecretsUnreadable as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"{report.accounts} accounts: {report.reencrypted} secrets re-encrypted, "
               f"{report.sealed} found in clear and encrypted")
    if drop_old:
        ring = settings.key_ring()
        ring.without_old("secrets").save(settings.keys_path)
        click.echo(f"older secrets keys removed: {len(ring.secrets) - 1}")


def _public(ring: KeyRing, key_id: str) -> str:
    raw = ring.public_key(key_id).public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")
