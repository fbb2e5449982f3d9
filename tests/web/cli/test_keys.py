"""TOTP secrets encrypted at rest with a key kept outside the database, and the `telerad keys` commands that
rotate it and move the stored secrets to the new key."""

from __future__ import annotations

import json

import pyotp
import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from engine.domain.actors import Actor
from engine.services.accounts import create_user, totp_provisioning
from engine.services.accounts_totp import matching_step
from engine.services.keyring import KeyRing, SecretUnreadable
from engine.store.directory_models import User
from web.cli.main import main

pytestmark = [pytest.mark.charter("CH-8.1")]
PASSWORD = "correct horse battery staple 42"


@pytest.fixture
def keys_file(tmp_path):
    path = tmp_path / "keys.json"
    KeyRing.development().save(path)  # the ring of the `ctx` fixture, so both sides read the same secrets
    return path


@pytest.fixture
def telerad(database_url, tmp_path, keys_file):
    env = {"TELERAD_DATABASE_URL": database_url, "TELERAD_INSTANCE_PATH": str(tmp_path / "instance"),
           "TELERAD_KEYS_FILE": str(keys_file)}

    def invoke(*arguments: str):
        return CliRunner().invoke(main, list(arguments), env=env)
    return invoke


def stored_secret(ctx, username="jdupont") -> str:
    with ctx.read() as session:
        return session.execute(select(User.totp_secret).where(User.username == username)).scalar_one()


@pytest.fixture
def user(ctx):
    create_user(ctx, Actor.system(), "jdupont", "Dr Jeanne Dupont", PASSWORD, ["radiologist"])
    return totp_provisioning(ctx, "jdupont")[0]


def test_the_stored_secret_is_encrypted_and_useless_without_the_key_file(ctx, clock, user):
    stored = stored_secret(ctx)
    assert user not in stored and stored.startswith("gAAAAA")
    code = pyotp.TOTP(user).at(clock.now())
    assert matching_step(ctx.keys, stored, code, clock.now()) is not None
    assert matching_step(KeyRing.generate(), stored, code, clock.now()) is None  # another install's key


def test_db_upgrade_encrypts_the_secrets_an_older_version_left_in_clear(ctx, user, telerad):
    with ctx.write() as session:
        session.execute(update(User).values(totp_secret=user))
        session.commit()
    result = telerad("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "1 TOTP secrets encrypted" in result.output
    assert ctx.keys.decrypt_secret(stored_secret(ctx)) == user
    assert "encrypted" not in telerad("db", "upgrade").output  # nothing left in clear the second time


def test_rotation_then_reencrypt_moves_every_secret_to_the_new_key_and_drops_the_old(ctx, user, telerad, keys_file):
    result = telerad("keys", "rotate", "secrets")
    assert result.exit_code == 0, result.output
    assert len(KeyRing.load(keys_file).secrets) == 2
    result = telerad("keys", "reencrypt", "--drop-old")
    assert result.exit_code == 0, result.output
    assert "1 secrets re-encrypted" in result.output
    ring = KeyRing.load(keys_file)
    assert len(ring.secrets) == 1 and ring.secrets[0].id != KeyRing.development().secrets[0].id
    assert ring.decrypt_secret(stored_secret(ctx)) == user
    with pytest.raises(SecretUnreadable):
        KeyRing.development().decrypt_secret(stored_secret(ctx))


@pytest.mark.charter("CH-8.1", negative=True)
def test_reencrypt_with_a_key_file_that_lacks_the_key_changes_nothing(ctx, user, telerad, keys_file):
    KeyRing.generate().save(keys_file)  # the secrets key that encrypted the seeds is gone
    before = stored_secret(ctx)
    result = telerad("keys", "reencrypt", "--drop-old")
    assert result.exit_code != 0
    assert "cannot be decrypted" in result.output and "jdupont" in result.output
    assert stored_secret(ctx) == before


def test_keys_show_lists_ids_and_public_keys_never_the_keys(telerad, keys_file):
    result = telerad("keys", "show", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    ring = KeyRing.load(keys_file)
    assert [entry["id"] for entry in shown["secrets"]] == [key.id for key in ring.secrets]
    assert shown["signing"][0]["public_key"] and shown["development"] is True
    material = json.loads(keys_file.read_text())
    for kind in ("audit", "secrets", "signing"):
        assert material[kind][0]["key"] not in result.output


def test_the_web_app_uses_the_install_key_file_made_on_first_start(tmp_path):
    from web.app import create_app
    from web.config import Settings

    instance = tmp_path / "instance"
    settings = Settings.from_env({"TELERAD_INSTANCE_PATH": str(instance),
                                  "TELERAD_DATABASE_URL": f"sqlite:///{tmp_path / 'telerad.db'}"})
    app = create_app(settings)
    ring = app.extensions["telerad"].ctx.keys
    assert not ring.is_development and ring == KeyRing.load(instance / "keys.json")
    assert (instance / "keys.json").stat().st_mode & 0o077 == 0
    app.extensions["telerad"].ctx.engine.dispose()
