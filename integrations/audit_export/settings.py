"""Settings of the audit export, read from the environment (TELERAD_AUDIT_*), checked when read."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


class AuditExportSettingsError(ValueError):
    pass


@dataclass(frozen=True)
class SyslogTarget:
    host: str
    port: int
    tls: bool
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True)
class AuditExportSettings:
    heads_file: Path  # TELERAD_AUDIT_HEADS_FILE, default <instance>/audit-heads.jsonl
    syslog: SyslogTarget | None  # TELERAD_AUDIT_SYSLOG: tls://host:6514 (or tcp://host:port for tests); None: off
    source_id: str  # TELERAD_AUDIT_SOURCE_ID, default telerad@<hostname>: AuditSourceID and syslog HOSTNAME
    enterprise_site: str | None  # TELERAD_AUDIT_ENTERPRISE_SITE: AuditEnterpriseSiteID (e.g. the FINESS)
    interval: float  # TELERAD_AUDIT_EXPORT_SECONDS, default 30: how often the worker exports
    batch: int  # TELERAD_AUDIT_SYSLOG_BATCH, default 500: events sent per run at most

    @classmethod
    def from_env(cls, instance_path: Path, env: Mapping[str, str] | None = None) -> AuditExportSettings:
        env = os.environ if env is None else env
        heads = env.get("TELERAD_AUDIT_HEADS_FILE")
        try:
            interval = float(env.get("TELERAD_AUDIT_EXPORT_SECONDS", "30"))
            batch = int(env.get("TELERAD_AUDIT_SYSLOG_BATCH", "500"))
        except ValueError:
            raise AuditExportSettingsError("TELERAD_AUDIT_EXPORT_SECONDS and TELERAD_AUDIT_SYSLOG_BATCH are "
                                           "numbers") from None
        if interval <= 0 or batch <= 0:
            raise AuditExportSettingsError("TELERAD_AUDIT_EXPORT_SECONDS and TELERAD_AUDIT_SYSLOG_BATCH are "
                                           "positive")
        return cls(
            heads_file=Path(heads).resolve() if heads else instance_path / "audit-heads.jsonl",
            syslog=_target(env), source_id=env.get("TELERAD_AUDIT_SOURCE_ID") or f"telerad@{socket.gethostname()}",
            enterprise_site=env.get("TELERAD_AUDIT_ENTERPRISE_SITE") or None, interval=interval, batch=batch)


def _target(env: Mapping[str, str]) -> SyslogTarget | None:
    url = env.get("TELERAD_AUDIT_SYSLOG", "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("tls", "tcp") or not parts.hostname:
        raise AuditExportSettingsError("TELERAD_AUDIT_SYSLOG: tls://host:port (or tcp://host:port)")
    try:
        port = parts.port or (6514 if parts.scheme == "tls" else 514)
    except ValueError:
        raise AuditExportSettingsError("TELERAD_AUDIT_SYSLOG: bad port") from None

    def path(name: str) -> Path | None:
        value = env.get(name)
        if not value:
            return None
        if not Path(value).is_file():
            raise AuditExportSettingsError(f"{name}: no such file {value}")
        return Path(value)

    cert, key = path("TELERAD_AUDIT_SYSLOG_CERT"), path("TELERAD_AUDIT_SYSLOG_KEY")
    if key is not None and cert is None:
        raise AuditExportSettingsError("TELERAD_AUDIT_SYSLOG_KEY needs TELERAD_AUDIT_SYSLOG_CERT")
    return SyslogTarget(parts.hostname, port, parts.scheme == "tls", path("TELERAD_AUDIT_SYSLOG_CA"), cert, key)
