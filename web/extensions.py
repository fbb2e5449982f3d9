"""What every area of the web application shares: the Flask extensions (CSRF, translations) and what the app
keeps for its views (the engine context and, in the process that runs it, the timer scheduler)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from flask import Flask
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect

from engine.services.context import EngineContext
from web.config import Settings

csrf = CSRFProtect()
babel = Babel()


class RunningScheduler(Protocol):
    """What the views read of the timer scheduler (web.ops.scheduler.TimerScheduler): the health page."""

    interval: float
    state: Any

    def shutdown(self) -> None: ...


@dataclass
class TeleradExtension:
    settings: Settings
    ctx: EngineContext
    scheduler: RunningScheduler | None = None
    hl7: Any = None  # the HL7 service when this process runs it ("retry now" wakes its delivery)


def telerad(app: Flask) -> TeleradExtension:
    return app.extensions["telerad"]
