"""Every DICOMweb access on the audit chain of the case it shows (CH-5.3, CH-8.1), without one event per frame.

A viewer scrolling a CT asks for hundreds of frames a minute; an event per request would write as many audit
rows as images. So an access is recorded once per actor, case, study and kind (query, instances, metadata,
frames, rendered, wado-uri) per WINDOW: the first request of a window writes the event (in its own transaction,
before the answer is sent) and the following ones of the same window are covered by it. The window is kept in
the memory of the process: with several web processes, each records its own first access of a window (a few
events more, never fewer).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from engine.domain.actors import Actor
from engine.services.context import EngineContext
from engine.services.images import record_image_events

WINDOW = timedelta(minutes=5)
MAX_REMEMBERED = 20000
_recorded: dict[tuple[str, int, str, str], datetime] = {}
_lock = threading.Lock()


def record_access(ctx: EngineContext, actor: Actor, kind: str, studies: Iterable[tuple[int, str]],
                  detail: dict[str, Any] | None = None) -> int:
    """Record the actor's access of `kind` to these (case id, study UID), those not recorded within the window;
    one transaction for all. Returns the number of events written."""
    now = ctx.clock.now()
    due: list[tuple[int, str]] = []
    with _lock:
        if len(_recorded) > MAX_REMEMBERED:
            for key in [k for k, at in _recorded.items() if now - at >= WINDOW]:
                del _recorded[key]
            if len(_recorded) > MAX_REMEMBERED:
                _recorded.clear()
        for case_id, study_uid in dict.fromkeys(studies):
            key = (actor.user_id, case_id, study_uid, kind)
            last = _recorded.get(key)
            if last is None or now - last >= WINDOW or now < last:
                _recorded[key] = now
                due.append((case_id, study_uid))
    if not due:
        return 0
    try:
        with ctx.write() as session:
            for case_id, study_uid in due:
                record_image_events(session, case_id, [("dicomweb.accessed", {
                    "by": actor.user_id, "kind": kind, "study": study_uid, **(detail or {})})], now,
                    actor=actor.user_id)
            session.commit()
    except BaseException:
        with _lock:  # not recorded: the next request tries again
            for case_id, study_uid in due:
                _recorded.pop((actor.user_id, case_id, study_uid, kind), None)
        raise
    return len(due)


def forget() -> None:
    """Forget the windows (tests, and a process that must record the next access again)."""
    with _lock:
        _recorded.clear()
