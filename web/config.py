"""Settings from TELERAD_* environment variables, read once and checked at start-up."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from engine.services.keyring import KeyFileError, KeyRing

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    database_url: str
    instance_path: Path
    host: str
    port: int
    secret_key: str
    scheduler_interval: float
    workflows_dir: Path
    log_level: str
    idle_minutes: int = 30
    sql_stats: bool = False  # count SQL per endpoint and serve /debug/sql-stats (benchmarks; web/ops/sql_stats.py)
    # The address people type (behind a TLS reverse proxy: https://...): https turns on Secure cookies and HSTS.
    public_url: str = ""
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto/-Host headers are believed (0: none).
    trusted_proxies: int = 0
    # Absolute lifetime of a session, whatever its activity (the idle timeout ends it sooner).
    session_max_hours: int = 12
    # The keys kept outside the database (engine.services.keyring); None: <instance>/keys.json, made on first use.
    keys_file: Path | None = None

    @property
    def https(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def keys_path(self) -> Path:
        return self.keys_file or self.instance_path / "keys.json"

    def key_ring(self) -> KeyRing:
        """The audit, secrets and signing keys of this install, generated on first use when the file is absent."""
        try:
            return KeyRing.load_or_create(self.keys_path)
        except KeyFileError as error:
            raise SettingsError(f"TELERAD_KEYS_FILE: {error}") from None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        instance_path = Path(env.get("TELERAD_INSTANCE_PATH", "instance")).resolve()
        database_url = env.get("TELERAD_DATABASE_URL") or f"sqlite:///{instance_path / 'telerad.db'}"
        port = _integer(env, "TELERAD_PORT", 5000, 1, 65535)
        interval = _number(env, "TELERAD_SCHEDULER_INTERVAL", 5.0, 0.2, 3600)
        return cls(
            database_url=database_url,
            instance_path=instance_path,
            host=env.get("TELERAD_HOST", "127.0.0.1"),
            port=port,
            secret_key=env.get("TELERAD_SECRET_KEY") or _instance_secret(instance_path),
            scheduler_interval=interval,
            workflows_dir=Path(env.get("TELERAD_WORKFLOWS_DIR", str(PROJECT_ROOT / "workflows" / "bpmn"))),
            log_level=env.get("TELERAD_LOG_LEVEL", "INFO").upper(),
            idle_minutes=_integer(env, "TELERAD_IDLE_MINUTES", 30, 1, 24 * 60),
            sql_stats=_flag(env, "TELERAD_SQL_STATS"),
            public_url=_public_url(env.get("TELERAD_PUBLIC_URL", "")),
            trusted_proxies=_integer(env, "TELERAD_TRUSTED_PROXIES", 0, 0, 5),
            session_max_hours=_integer(env, "TELERAD_SESSION_MAX_HOURS", 12, 1, 168),
            keys_file=Path(env["TELERAD_KEYS_FILE"]).resolve() if env.get("TELERAD_KEYS_FILE") else None,
        )

    def prepare(self) -> None:
        """Create the instance folder (SQLite database, secret key, stored files), readable by this account only.

        The process's umask becomes 077 first: the SQLite database and its WAL, attachments, DICOM files and
        previews hold patient data, and every file the process creates from then on is 0600 (folders 0700),
        wherever it is (a database outside the instance folder included)."""
        os.umask(0o077)
        self.instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.instance_path.chmod(0o700)


def _integer(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name} must be 1 or 0, got {raw!r}")


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high} seconds, got {value}")
    return value


def _public_url(raw: str) -> str:
    raw = raw.strip().rstrip("/")
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise SettingsError(f"TELERAD_PUBLIC_URL must be like https://telerad.example.org, got {raw!r}")
    return raw


def _instance_secret(instance_path: Path) -> str:
    """A random key kept in the instance folder, so a development install needs no set-up."""
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
