"""The key file kept outside the database (engine.services.keyring)."""

from __future__ import annotations

import os
import stat

import pytest

from engine.services.keyring import KeyFileError, KeyRing, SecretUnreadable


def test_a_generated_ring_round_trips_through_its_file_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "keys" / "keys.json"
    ring = KeyRing.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KeyRing.load(path) == ring and not ring.is_development
    assert KeyRing.load_or_create(path) == ring  # never regenerated once it exists


def test_a_key_file_readable_by_others_or_malformed_is_refused(tmp_path):
    path = tmp_path / "keys.json"
    KeyRing.generate().save(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="readable by others"):
        KeyRing.load(path)
    path.write_text('{"audit": []}')
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError):
        KeyRing.load(path)


def test_secrets_survive_a_rotation_and_are_reencrypted_with_the_newest_key():
    ring = KeyRing.generate()
    token = ring.encrypt_secret("JBSWY3DPEHPK3PXP")
    rotated = ring.rotated("secrets")
    assert rotated.decrypt_secret(token) == "JBSWY3DPEHPK3PXP"
    fresh = rotated.reencrypt_secret(token)
    assert rotated.without_old("secrets").decrypt_secret(fresh) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(SecretUnreadable):
        rotated.without_old("secrets").decrypt_secret(token)
    with pytest.raises(SecretUnreadable):
        KeyRing.generate().decrypt_secret(token)


def test_macs_and_signatures_depend_on_the_key():
    ring, other = KeyRing.generate(), KeyRing.generate()
    assert ring.mac(ring.audit_key_id, b"x") != other.mac(other.audit_key_id, b"x")
    assert ring.mac("no-such-key", b"x") is None
    key_id, signature = ring.sign(b"head 42")
    assert ring.verify_signature(key_id, b"head 42", signature)
    assert not ring.verify_signature(key_id, b"head 43", signature)
    assert not other.verify_signature(key_id, b"head 42", signature)
    rotated = ring.rotated("signing")
    assert rotated.verify_signature(key_id, b"head 42", signature) and rotated.signing_key_id != key_id


def test_the_development_ring_is_fixed_and_says_so():
    assert KeyRing.development() == KeyRing.development() and KeyRing.development().is_development
