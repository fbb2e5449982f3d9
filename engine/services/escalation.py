"""Escalation settings: the named delays diagrams read (``escalation["accept_tier1"]``), changed by
administrators without editing diagrams, applied to future timers or re-armed on waiting ones."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.domain.actors import Actor
from engine.domain.escalation import DEFAULT_ESCALATION, InvalidDuration, parse_duration
from engine.errors import Forbidden
from engine.runtime import using_clock
from engine.services.context import CachedWorkflow, EngineContext
from engine.services.persistence import load_workflow, lock_instance, save_workflow
from engine.store import audit
from engine.store.models import EscalationSetting, Timer

MIN_DURATION = timedelta(minutes=1)


class LiveEscalation(Mapping[str, str]):
    """Defaults overlaid with the administrators' values, re-read from the database at most every
    `ttl` seconds, so that every process (web and workers) sees a change within seconds."""

    def __init__(self, reader: sessionmaker[Session], defaults: Mapping[str, str] = DEFAULT_ESCALATION,
                 ttl: float = 2.0):
        self._reader, self._defaults, self._ttl = reader, dict(defaults), ttl
        self._values: dict[str, str] = dict(defaults)
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    def _current(self) -> dict[str, str]:
        if time.monotonic() - self._loaded_at > self._ttl:
            with self._lock, self._reader() as session:
                overrides = {row.name: row.duration for row in session.execute(
                    select(EscalationSetting.name, EscalationSetting.duration))}
                self._values = {**self._defaults, **overrides}
                self._loaded_at = time.monotonic()
        return self._values

    def __getitem__(self, key: str) -> str:
        return self._current()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


@dataclass(frozen=True)
class SettingView:
    name: str
    duration: str
    default: str
    updated_at: datetime | None
    updated_by: str | None
    waiting_timers: int


@dataclass
class ChangePreview:
    name: str
    old: str
    new: str
    rearm: bool
    timers: int = 0
    cases: list[int] = field(default_factory=list)
    overdue: list[dict[str, Any]] = field(default_factory=list)  # case, timer, new due: would fire at once


def list_settings(ctx: EngineContext) -> list[SettingView]:
    with ctx.read() as session:
        rows = {r.name: r for r in session.execute(select(EscalationSetting)).scalars()}
        counts: dict[str, int] = {}
        for setting in session.execute(select(Timer.setting).where(Timer.setting.is_not(None))).scalars():
            if setting is not None:
                counts[setting] = counts.get(setting, 0) + 1
    return [SettingView(name, rows[name].duration if name in rows else default, default,
                        rows[name].updated_at if name in rows else None,
                        rows[name].updated_by if name in rows else None, counts.get(name, 0))
            for name, default in sorted(DEFAULT_ESCALATION.items())]


def validate_setting(name: str, duration: str) -> str:
    """The normalised duration, or InvalidDuration with a French message."""
    if name not in DEFAULT_ESCALATION:
        raise InvalidDuration(f"« {name} » n'est pas un délai connu.")
    value = duration.strip().upper()
    if parse_duration(value) < MIN_DURATION:
        raise InvalidDuration("un délai d'escalade d'au moins une minute est attendu")
    return value


def preview_change(ctx: EngineContext, name: str, duration: str, rearm: bool) -> ChangePreview:
    """What a change would do, before it is made: timers and cases moved, and which would fall due at once."""
    new = validate_setting(name, duration)
    old = _current_value(ctx, name)
    preview = ChangePreview(name, old, new, rearm)
    if not rearm:
        return preview
    now, delta = ctx.clock.now(), parse_duration(new)
    with ctx.read() as session:
        rows = session.execute(select(Timer).where(Timer.setting == name).order_by(Timer.due_at)).scalars().all()
    preview.timers = len(rows)
    preview.cases = sorted({r.instance_id for r in rows})
    preview.overdue = [{"case_id": r.instance_id, "timer": r.spec_name, "due_at": r.armed_at + delta}
                       for r in rows if r.armed_at + delta <= now]
    return preview


def change_setting(ctx: EngineContext, actor: Actor, name: str, duration: str, rearm: bool = False) -> ChangePreview:
    """Store the new delay (audited: who, when, old, new); with `rearm`, move the timers already waiting,
    their due time recomputed from when they were armed. One transaction."""
    if not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur peut modifier les délais.")
    preview = preview_change(ctx, name, duration, rearm)
    now, delta = ctx.clock.now(), parse_duration(preview.new)
    entries: dict[int, CachedWorkflow] = {}
    with ctx.write() as session:
        row = session.get(EscalationSetting, name)
        if row is None:
            session.add(EscalationSetting(name=name, duration=preview.new, updated_at=now, updated_by=actor.user_id))
        else:
            row.duration, row.updated_at, row.updated_by = preview.new, now, actor.user_id
        session.flush()
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "setting.changed", None, {
            "setting": name, "old": preview.old, "new": preview.new, "mode": "rearm" if rearm else "future",
            "timers_moved": preview.timers if rearm else 0})], now)
        if rearm:
            entries = _rearm(ctx, session, actor, name, delta)
        session.commit()
    for instance_id, entry in entries.items():
        ctx.live_cache.put(instance_id, entry)
    _invalidate(ctx)
    return preview


def _rearm(ctx: EngineContext, session: Session, actor: Actor, name: str,
           delta: timedelta) -> dict[int, CachedWorkflow]:
    timers = session.execute(select(Timer).where(Timer.setting == name).order_by(Timer.instance_id)).scalars().all()
    by_case: dict[int, list[Timer]] = {}
    for timer in timers:
        by_case.setdefault(timer.instance_id, []).append(timer)
    entries = {}
    for instance_id, case_timers in by_case.items():
        instance = lock_instance(session, instance_id)
        cached = load_workflow(ctx, session, instance)
        moved = []
        for timer in case_timers:
            if cached.live.rearm_timer(timer.id, timer.armed_at + delta):
                moved.append({"timer": timer.spec_name, "old_due": timer.due_at.isoformat(),
                              "new_due": (timer.armed_at + delta).isoformat()})
        with using_clock(ctx.clock):
            entries[instance_id] = save_workflow(ctx, session, instance, cached.live, cached.snapshot, actor, [
                audit.AuditEntry(actor.user_id, "timer.rearmed", instance_id, {"setting": name, "timers": moved})])
    return entries


def _current_value(ctx: EngineContext, name: str) -> str:
    with ctx.read() as session:
        row = session.get(EscalationSetting, name)
    return row.duration if row is not None else DEFAULT_ESCALATION[name]


def _invalidate(ctx: EngineContext) -> None:
    provided = ctx.runtime.evaluator.provided.get("escalation")
    if isinstance(provided, LiveEscalation):
        provided.invalidate()
