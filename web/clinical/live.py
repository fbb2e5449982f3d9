"""The live inbox: a server-sent events stream per open inbox page that says "your list changed" (never what
changed: the page then fetches its own list, with the same permission checks as a reload).

One loop per web process (`LiveHub`) polls the audit log through `engine.services.inbox_version.ChangeFeed`
(one indexed statement per poll whatever the number of streams) and wakes the streams of the people a changed
case concerns. Each stream holds one request thread of the server: at most `TELERAD_LIVE_MAX_STREAMS` per
process (extra ones are told "busy" and to retry in 30 s), two per person (a third ends the oldest, e.g. a tab
left behind), and none lives longer than `STREAM_LIFETIME_S` (the browser reconnects, which checks the session
again).
Deployment behind a reverse proxy: docs/deployment.md, "Live inbox".
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app
from flask_babel import gettext as _
from flask_login import current_user

from engine.domain.actors import Actor
from engine.services.context import EngineContext
from engine.services.inbox_version import CaseChange, ChangeFeed
from web.auth.access import current_actor
from web.extensions import telerad

bp = Blueprint("live", __name__)
log = logging.getLogger(__name__)

MAX_STREAMS_SETTING, DEFAULT_MAX_STREAMS = "TELERAD_LIVE_MAX_STREAMS", 4
POLL_SETTING, DEFAULT_POLL_S = "TELERAD_LIVE_POLL_SECONDS", 0.5
HEARTBEAT_SETTING, DEFAULT_HEARTBEAT_S = "TELERAD_LIVE_HEARTBEAT_SECONDS", 15.0
STREAMS_PER_USER = 2
STREAM_LIFETIME_S = 300.0
RECONNECT_MS = 3000
BUSY_RETRY_S = 30
ERROR_BACKOFF_S = 5.0


@dataclass(eq=False)
class Subscriber:
    actor: Actor
    serial: int
    version: int = 0
    closed: bool = False


class LiveHub:
    """The streams of one process and the loop that wakes them."""

    def __init__(self, ctx: EngineContext, max_streams: int, poll_s: float):
        self.ctx, self.max_streams, self.poll_s = ctx, max_streams, poll_s
        self._subscribers: list[Subscriber] = []
        self._changed = threading.Condition()
        self._serials = itertools.count(1)
        self._loop: threading.Thread | None = None
        self.feed: ChangeFeed | None = None
        self.polls = 0

    def subscribe(self, actor: Actor) -> Subscriber | None:
        """A new stream, or None when the process already serves as many as it may."""
        with self._changed:
            mine = [s for s in self._subscribers if s.actor.user_id == actor.user_id]
            for old in mine[:max(0, len(mine) - STREAMS_PER_USER + 1)]:
                self._drop(old)
            if len(self._subscribers) >= self.max_streams:
                return None
            subscriber = Subscriber(actor, next(self._serials))
            self._subscribers.append(subscriber)
            if self._loop is None or not self._loop.is_alive():
                self.feed = ChangeFeed(self.ctx)
                self._loop = threading.Thread(target=self._run, name="telerad-live", daemon=True)
                self._loop.start()
            self._changed.notify_all()
            return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._changed:
            self._drop(subscriber)

    def _drop(self, subscriber: Subscriber) -> None:
        subscriber.closed = True
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)
        self._changed.notify_all()

    @property
    def streams(self) -> int:
        return len(self._subscribers)

    def wait(self, subscriber: Subscriber, seen: int, timeout: float) -> int:
        """The subscriber's version once it moves past `seen`, or `seen` after `timeout` (or when closed)."""
        with self._changed:
            self._changed.wait_for(lambda: subscriber.version != seen or subscriber.closed, timeout)
            return subscriber.version

    def publish(self, changes: list[CaseChange]) -> None:
        if not changes:
            return
        with self._changed:
            for subscriber in self._subscribers:
                if any(change.concerns(subscriber.actor) for change in changes):
                    subscriber.version += 1
            self._changed.notify_all()

    def _run(self) -> None:
        """Polls while someone listens; the next stream starts a new loop (and a new starting point)."""
        feed = self.feed
        assert feed is not None
        while True:
            with self._changed:
                if not self._subscribers:
                    self._loop = None
                    return
            try:
                self.publish(feed.poll())
                self.polls += 1
                pause = self.poll_s
            except Exception:  # noqa: BLE001 - a database outage must not end the loop; the streams stay open
                log.exception("live inbox: reading the changes failed; next attempt in %s s", ERROR_BACKOFF_S)
                pause = ERROR_BACKOFF_S
            time.sleep(pause)


_HUBS_LOCK = threading.Lock()


def hub_of(app: Flask) -> LiveHub:
    with _HUBS_LOCK:
        hub = app.extensions.get("telerad_live")
        if hub is None:
            hub = app.extensions["telerad_live"] = LiveHub(
                telerad(app).ctx, int(_setting(app, MAX_STREAMS_SETTING, DEFAULT_MAX_STREAMS)),
                _setting(app, POLL_SETTING, DEFAULT_POLL_S))
        return hub  # type: ignore[no-any-return]


def _setting(app: Flask, name: str, default: float) -> float:
    """From the app's config (tests), else the environment; a bad value keeps the default."""
    raw = app.config.get(name, os.environ.get(name))
    try:
        value = float(raw) if raw not in (None, "") else default
    except (TypeError, ValueError):
        log.warning("%s=%r is not a number: %s kept", name, raw, default)
        return default
    return value if value > 0 else default


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def _stream(hub: LiveHub, subscriber: Subscriber, heartbeat_s: float) -> Iterator[str]:
    try:
        yield f"retry: {RECONNECT_MS}\n" + _event("ready", {"version": subscriber.version})
        seen, ends = subscriber.version, time.monotonic() + STREAM_LIFETIME_S
        while True:
            left = ends - time.monotonic()
            if left <= 0:
                yield _event("bye", {"reason": "lifetime"})
                return
            version = hub.wait(subscriber, seen, min(heartbeat_s, left))
            if subscriber.closed:
                yield _event("bye", {"reason": "superseded"})
                return
            if version != seen:
                seen = version
                yield _event("inbox", {"version": version})
            else:
                yield ": heartbeat\n\n"
    finally:
        hub.unsubscribe(subscriber)


@bp.get("/inbox/events")
def events() -> Any:
    """The stream of the signed-in person (401 otherwise: an EventSource cannot follow a login page)."""
    if not current_user.is_authenticated:
        return Response(_("Session expirée : rechargez la page pour vous identifier."), status=401,
                        mimetype="text/plain")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    hub = hub_of(app)
    subscriber = hub.subscribe(current_actor())
    if subscriber is None:
        # A stream that says so and ends, rather than an error status: EventSource gives up for good on any
        # status but 200, and reconnects after `retry` ms when a stream ends.
        refusal = (f"retry: {BUSY_RETRY_S * 1000}\n: "
                   + _("Trop de connexions en direct sur ce serveur : nouvel essai automatique dans %(seconds)d s.",
                       seconds=BUSY_RETRY_S) + "\n" + _event("busy", {"retry_after": BUSY_RETRY_S}))
        return Response(refusal, mimetype="text/event-stream",
                        headers={"Retry-After": str(BUSY_RETRY_S), "Cache-Control": "no-store"})
    heartbeat_s = _setting(app, HEARTBEAT_SETTING, DEFAULT_HEARTBEAT_S)
    return Response(_stream(hub, subscriber, heartbeat_s), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
