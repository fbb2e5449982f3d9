"""The keys that must live outside the database: the audit chain's MAC keys, the keys that encrypt secrets at rest
(TOTP seeds) and the keys that sign the exported audit chain heads.

They are kept in one JSON file (TELERAD_KEYS_FILE, by default `<instance>/keys.json`, mode 0600), so that a copy
of the database (a backup, a dump, a stolen disk of the database server) holds neither the means to decrypt the
secrets nor the means to recompute the audit chain after rewriting it. Each kind holds a list, newest first: the
newest encrypts, MACs and signs; the older ones are kept to read and verify what they produced (rotation:
`telerad keys rotate`, then `telerad keys reencrypt` for the secrets).

A context built without a key file (unit and integration tests, benchmarks) gets the public development ring
(`KeyRing.development()`), whose key ids start with "dev-": `telerad audit verify` and the start-up checks refuse
it where real data lives.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KeyKind = Literal["audit", "secrets", "signing"]
KINDS: tuple[KeyKind, ...] = ("audit", "secrets", "signing")
DEVELOPMENT_PREFIX = "dev-"
FORMAT = 1


class KeyFileError(ValueError):
    """The key file is missing, unreadable, malformed, or readable by others."""


class SecretUnreadable(ValueError):
    """A stored secret was encrypted with a key that is no longer in the ring (or was altered)."""


@dataclass(frozen=True)
class NamedKey:
    id: str
    material: bytes  # audit: 32 random bytes; secrets: a Fernet key; signing: Ed25519 private bytes (32)
    created: str


@dataclass(frozen=True)
class KeyRing:
    audit: tuple[NamedKey, ...]
    secrets: tuple[NamedKey, ...]
    signing: tuple[NamedKey, ...]

    # -- the audit chain ------------------------------------------------------------------------------------------
    @property
    def audit_key_id(self) -> str:
        return self.audit[0].id

    def mac(self, key_id: str, data: bytes) -> str | None:
        """HMAC-SHA256 of `data` (hex) with the audit key `key_id`, or None when the ring does not hold it."""
        key = _find(self.audit, key_id)
        return None if key is None else hmac.new(key.material, data, hashlib.sha256).hexdigest()

    # -- secrets at rest --------------------------------------------------------------------------------------
    def encrypt_secret(self, plain: str) -> str:
        return self._fernet().encrypt(plain.encode()).decode("ascii")

    def decrypt_secret(self, token: str) -> str:
        try:
            return self._fernet().decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as error:
            raise SecretUnreadable("secret encrypted with a key that is not in the key file, or altered") from error

    def reencrypt_secret(self, token: str) -> str:
        """The same secret encrypted with the newest key (MultiFernet.rotate)."""
        try:
            return self._fernet().rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError) as error:
            raise SecretUnreadable("secret encrypted with a key that is not in the key file, or altered") from error

    def _fernet(self) -> MultiFernet:
        return MultiFernet([Fernet(key.material) for key in self.secrets])

    # -- signed heads -----------------------------------------------------------------------------------------
    @property
    def signing_key_id(self) -> str:
        return self.signing[0].id

    def sign(self, data: bytes) -> tuple[str, str]:
        """(key id, base64 Ed25519 signature) of `data` with the newest signing key."""
        key = Ed25519PrivateKey.from_private_bytes(self.signing[0].material)
        return self.signing[0].id, base64.b64encode(key.sign(data)).decode("ascii")

    def verify_signature(self, key_id: str, data: bytes, signature: str) -> bool:
        key = _find(self.signing, key_id)
        if key is None:
            return False
        try:
            self.public_key(key_id).verify(base64.b64decode(signature, validate=True), data)
        except (InvalidSignature, ValueError):
            return False
        return True

    def public_key(self, key_id: str) -> Ed25519PublicKey:
        key = _find(self.signing, key_id)
        if key is None:
            raise KeyError(key_id)
        return Ed25519PrivateKey.from_private_bytes(key.material).public_key()

    # -- the ring as a whole ----------------------------------------------------------------------------------
    @property
    def is_development(self) -> bool:
        return any(key.id.startswith(DEVELOPMENT_PREFIX) for kind in KINDS for key in getattr(self, kind))

    def rotated(self, kind: KeyKind, now: datetime | None = None) -> KeyRing:
        """This ring with a new newest key of `kind`; the older keys stay to read and verify."""
        current: tuple[NamedKey, ...] = getattr(self, kind)
        return replace(self, **{kind: (_new_key(kind, now), *current)})

    def without_old(self, kind: KeyKind) -> KeyRing:
        """This ring keeping only the newest key of `kind` (after every secret was re-encrypted)."""
        current: tuple[NamedKey, ...] = getattr(self, kind)
        return replace(self, **{kind: current[:1]})

    @classmethod
    def generate(cls, now: datetime | None = None) -> KeyRing:
        return cls(audit=(_new_key("audit", now),), secrets=(_new_key("secrets", now),),
                   signing=(_new_key("signing", now),))

    @classmethod
    def development(cls) -> KeyRing:
        """A fixed, public ring for tests and throwaway databases: it protects nothing."""
        def fixed(kind: str, material: bytes) -> tuple[NamedKey, ...]:
            return (NamedKey(f"{DEVELOPMENT_PREFIX}{kind}", material, "2026-01-01T00:00:00+00:00"),)

        seed = hashlib.sha256(b"telerad development keys").digest()
        return cls(audit=fixed("audit", seed), secrets=fixed("secrets", base64.urlsafe_b64encode(seed)),
                   signing=fixed("signing", hashlib.sha256(seed).digest()))

    # -- the file ---------------------------------------------------------------------------------------------
    def to_json(self) -> str:
        document: dict[str, Any] = {"format": FORMAT}
        for kind in KINDS:
            document[kind] = [{"id": key.id, "created": key.created, "key": base64.b64encode(key.material).decode()}
                              for key in getattr(self, kind)]
        return json.dumps(document, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> KeyRing:
        try:
            document = json.loads(text)
            rings = {kind: tuple(NamedKey(str(entry["id"]), base64.b64decode(entry["key"], validate=True),
                                          str(entry.get("created", ""))) for entry in document[kind])
                     for kind in KINDS}
        except (ValueError, KeyError, TypeError) as error:
            raise KeyFileError(f"malformed key file: {error}") from None
        for kind, keys in rings.items():
            if not keys:
                raise KeyFileError(f"the key file holds no {kind} key")
            if len({key.id for key in keys}) != len(keys):
                raise KeyFileError(f"two {kind} keys share an id")
        ring = cls(**rings)
        try:
            ring._fernet()
            for key in ring.signing:
                Ed25519PrivateKey.from_private_bytes(key.material)
        except ValueError as error:
            raise KeyFileError(f"malformed key in the key file: {error}") from None
        return ring

    def save(self, path: Path, *, replace_existing: bool = True) -> None:
        """Write the file atomically, readable by this account only; with replace_existing=False, raise
        FileExistsError rather than replace a file another process wrote first."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(self.to_json())
                handle.flush()
                os.fsync(handle.fileno())
            if replace_existing:
                os.replace(temporary, path)
            else:
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        try:
            mode = path.stat().st_mode
            text = path.read_text()
        except OSError as error:
            raise KeyFileError(f"cannot read the key file {path}: {error.strerror}") from None
        if mode & 0o077:
            raise KeyFileError(f"the key file {path} is readable by others (mode {oct(mode & 0o777)}): chmod 600 it")
        return cls.from_json(text)

    @classmethod
    def load_or_create(cls, path: Path) -> KeyRing:
        """The ring of `path`, generated on first use (a development install needs no set-up)."""
        if not path.exists():
            with contextlib.suppress(FileExistsError):  # another process of this install made it first: use theirs
                cls.generate().save(path, replace_existing=False)
        return cls.load(path)


def _find(keys: Sequence[NamedKey], key_id: str) -> NamedKey | None:
    return next((key for key in keys if key.id == key_id), None)


def _new_key(kind: KeyKind, now: datetime | None) -> NamedKey:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    if kind == "audit":
        material = secrets.token_bytes(32)
    elif kind == "secrets":
        material = Fernet.generate_key()
    else:
        material = Ed25519PrivateKey.generate().private_bytes_raw()
    return NamedKey(f"{kind}-{moment:%Y%m%d%H%M%S}-{secrets.token_hex(3)}", material, moment.isoformat())
