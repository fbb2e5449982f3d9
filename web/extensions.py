"""What the app keeps for its views: the engine context and, when running, the scheduler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask

from engine.services.context import EngineContext
from web.config import Settings
from web.scheduler import TimerScheduler


@dataclass
class TeleradExtension:
    settings: Settings
    ctx: EngineContext
    scheduler: TimerScheduler | None = None
    hl7: Any = None  # the HL7 service when this process runs it ("retry now" wakes its delivery)


def telerad(app: Flask) -> TeleradExtension:
    return app.extensions["telerad"]
