"""The DICOM listener as a process component: the SCP plus a periodic stability tick.

    service = DicomService.from_env(ctx)   # TELERAD_DICOM_AE_TITLE, _HOST, _PORT, _STABLE_SECONDS,
    service.start()                        # TELERAD_DICOM_TLS_CERT / _KEY / _CA / _CLIENT_CERT (integrations.peers),
                                           # and <TELERAD_INSTANCE_PATH>/dicom for the files
    ...
    service.stop()

or explicitly: DicomService(ctx, "TELERAD", "127.0.0.1", 11112, instance_path / "dicom", stable_seconds=30).
A bad setting raises ValueError naming the variable.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engine.services.context import EngineContext
from integrations.dicom.callers import AE_TITLE
from integrations.dicom.priors import PriorsTicker
from integrations.dicom.scp import StorageSCP
from integrations.dicom.stability import notify_stable_studies
from integrations.peers import tls_context_from_env

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DicomSettings:
    ae_title: str = "TELERAD"
    host: str = "127.0.0.1"
    port: int = 11112
    stable_seconds: float = 30.0
    storage_dir: Path = Path("instance") / "dicom"
    tls: ssl.SSLContext | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DicomSettings:
        env = os.environ if env is None else env
        title = (env.get("TELERAD_DICOM_AE_TITLE") or "TELERAD").strip()
        if not AE_TITLE.match(title):
            raise ValueError(f"TELERAD_DICOM_AE_TITLE must be 1 to 16 printable ASCII characters without "
                             f"backslash, got {title!r}")
        instance_path = Path(env.get("TELERAD_INSTANCE_PATH") or "instance").resolve()
        return cls(ae_title=title, host=env.get("TELERAD_DICOM_HOST") or "127.0.0.1",
                   port=int(_number(env, "TELERAD_DICOM_PORT", 11112, 0, 65535, integer=True)),
                   stable_seconds=_number(env, "TELERAD_DICOM_STABLE_SECONDS", 30.0, 0, 86400),
                   storage_dir=instance_path / "dicom", tls=tls_context_from_env(env, "TELERAD_DICOM_TLS_"))


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float,
            integer: bool = False) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise ValueError(f"{name} must be {'an integer' if integer else 'a number'}, got {raw!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {raw}")
    return value


class DicomService:
    def __init__(self, ctx: EngineContext, ae_title: str, host: str, port: int, storage_dir: Path,
                 stable_seconds: float = 30.0, *, tick_seconds: float | None = None, fsync: bool = True,
                 tls: ssl.SSLContext | None = None):
        self.ctx = ctx
        self.stable_seconds = stable_seconds
        # A study is reported at most one tick after it became stable.
        self.tick_seconds = tick_seconds if tick_seconds is not None else max(0.5, min(5.0, stable_seconds / 4))
        storage_dir.mkdir(parents=True, exist_ok=True)
        self.scp = StorageSCP(ctx, ae_title, host, port, storage_dir, fsync=fsync, tls=tls)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.priors = PriorsTicker(ctx, ae_title)  # prior exams from the sites' PACS, moved to this SCP

    @classmethod
    def from_env(cls, ctx: EngineContext, env: Mapping[str, str] | None = None) -> DicomService:
        settings = DicomSettings.from_env(env)
        return cls(ctx, settings.ae_title, settings.host, settings.port, settings.storage_dir,
                   settings.stable_seconds, tls=settings.tls)

    @property
    def port(self) -> int:
        return self.scp.port

    def start(self) -> None:
        self.scp.start()
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick_forever, name="dicom-stability", daemon=True)
        self._ticker.start()
        self.priors.start()

    def stop(self) -> None:
        self.priors.stop()
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=30)
            self._ticker = None
        self.scp.stop()

    def tick(self) -> None:
        report = notify_stable_studies(self.ctx, self.ctx.clock.now(), self.stable_seconds)
        if report.notified or report.matched or report.released or report.rejected:
            log.info("DICOM studies: %d matched, %d released, %d rejected, %d notified", len(report.matched),
                     len(report.released), len(report.rejected), len(report.notified))

    def _tick_forever(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            try:
                self.tick()
            except Exception:
                log.exception("DICOM stability tick failed; next one in %s s", self.tick_seconds)
