"""The integration services a process runs besides the web server: HL7 (MLLP listener and report outbox)
and DICOM (storage SCP and image stability). `telerad run` and `telerad worker` start them."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import click

from engine.services.context import EngineContext

log = logging.getLogger(__name__)


class Service(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


def install_hooks(ctx: EngineContext) -> None:
    """Work queued atomically with case changes; needed by every process that saves cases."""
    from integrations.hl7.outbox import install
    from integrations.notify.delivery import install as install_notifications

    install(ctx)
    install_notifications(ctx)  # without TELERAD_SMTP_URL or TELERAD_WEBHOOK_URL it writes nothing


def dicom_service(ctx: EngineContext, instance_path: Path, env: Mapping[str, str] | None = None) -> Any:
    """The DICOM SCP from TELERAD_DICOM_AE_TITLE / _HOST / _PORT / _STABLE_SECONDS, with TLS when
    TELERAD_DICOM_TLS_CERT and _KEY are set (_CA and _CLIENT_CERT for client certificates)."""
    from integrations.dicom.service import DicomService
    from integrations.peers import tls_context_from_env

    env = os.environ if env is None else env
    ae_title = env.get("TELERAD_DICOM_AE_TITLE", "TELERAD").strip()
    if not ae_title or len(ae_title) > 16 or not ae_title.isascii():
        raise ValueError("TELERAD_DICOM_AE_TITLE must be 1 to 16 ASCII characters")
    try:
        port = int(env.get("TELERAD_DICOM_PORT", "11112"))
        stable = float(env.get("TELERAD_DICOM_STABLE_SECONDS", "30"))
    except ValueError:
        raise ValueError("TELERAD_DICOM_PORT must be an integer and TELERAD_DICOM_STABLE_SECONDS a number") from None
    if not 0 <= port <= 65535 or not 1 <= stable <= 3600:
        raise ValueError("TELERAD_DICOM_PORT must be 0-65535 and TELERAD_DICOM_STABLE_SECONDS 1-3600")
    tls = tls_context_from_env(env, "TELERAD_DICOM_TLS_")
    return DicomService(ctx, ae_title, env.get("TELERAD_DICOM_HOST", "127.0.0.1"), port, instance_path / "dicom",
                        stable_seconds=stable, tls=tls)


def start_services(ctx: EngineContext, instance_path: Path) -> list[Any]:
    """Start the listeners; a bad setting (TLS files missing or unreadable included) stops the program with a
    message naming it."""
    from integrations.hl7.service import Hl7Service

    services: list[Any] = []
    try:
        services.append(Hl7Service.from_env(ctx))
        services.append(dicom_service(ctx, instance_path))
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    for service in services:
        service.start()
    return services


def stop_services(services: list[Any]) -> None:
    for service in reversed(services):
        try:
            service.stop()
        except Exception:  # noqa: BLE001 - keep stopping the others
            log.exception("stopping %s failed", type(service).__name__)
