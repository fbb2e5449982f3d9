"""What `telerad run` and `telerad worker` start: the MLLP listener and the outbox delivery thread.

    service = Hl7Service.from_env(ctx)   # TELERAD_MLLP_HOST, TELERAD_MLLP_PORT, TELERAD_HL7_DELIVERY_INTERVAL,
                                         # TELERAD_MLLP_TLS_CERT / _KEY / _CA / _CLIENT_CERT (integrations.peers)
    service.start()
    ...
    service.stop()

`start()` also registers the report save hook on the context; processes that save cases without running the
service (web processes started with --no-scheduler) call `integrations.hl7.outbox.install(ctx)` themselves.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from engine.services.context import EngineContext
from integrations.hl7.inbound import InboundHandler
from integrations.hl7.mllp import MllpListener
from integrations.hl7.outbox import deliver_pending, install
from integrations.peers import tls_context_from_env

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hl7Settings:
    host: str = "127.0.0.1"
    port: int = 2575
    delivery_interval: float = 10.0
    tls: ssl.SSLContext | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Hl7Settings:
        env = os.environ if env is None else env
        return cls(host=env.get("TELERAD_MLLP_HOST") or "127.0.0.1",
                   port=int(_number(env, "TELERAD_MLLP_PORT", 2575, 0, 65535, integer=True)),
                   delivery_interval=_number(env, "TELERAD_HL7_DELIVERY_INTERVAL", 10.0, 0.2, 3600),
                   tls=tls_context_from_env(env, "TELERAD_MLLP_TLS_"))


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


@dataclass
class DeliveryState:
    last_run: datetime | None = None
    last_error: str | None = None
    sent_total: int = 0
    failed_total: int = 0


class Hl7Service:
    def __init__(self, ctx: EngineContext, host: str = "127.0.0.1", port: int = 2575, *,
                 delivery_interval: float = 10.0, listen: bool = True, tls: ssl.SSLContext | None = None):
        self.ctx = ctx
        self.listener = MllpListener(host, port, InboundHandler(ctx), tls=tls) if listen else None
        self.delivery_interval = delivery_interval
        self.state = DeliveryState()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_env(cls, ctx: EngineContext, env: Mapping[str, str] | None = None) -> Hl7Service:
        settings = Hl7Settings.from_env(env)
        return cls(ctx, settings.host, settings.port, delivery_interval=settings.delivery_interval,
                   tls=settings.tls)

    @property
    def port(self) -> int | None:
        return self.listener.port if self.listener is not None else None

    def start(self) -> None:
        install(self.ctx)
        if self.listener is not None:
            self.listener.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._deliver_loop, name="hl7-outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self.listener is not None:
            self.listener.stop(timeout)

    def deliver_now(self) -> None:
        """Wake the delivery thread (e.g. after an administrator's "retry now")."""
        self._wake.set()

    def _deliver_loop(self) -> None:
        while not self._stop.is_set():
            try:
                report = deliver_pending(self.ctx)
                self.state.last_error = None
                self.state.sent_total += report.sent
                self.state.failed_total += report.failed
            except Exception as err:  # keep delivering; the error is shown to administrators
                log.exception("HL7 outbox delivery failed")
                self.state.last_error = f"{type(err).__name__}: {err}"
            self.state.last_run = datetime.now(UTC)
            self._wake.wait(self.delivery_interval)
            self._wake.clear()
