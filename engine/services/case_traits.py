"""What the worklist and the duplicate check need from a case that the case row has no column for: the requested
modality, the patient's sex and INS. They are read from the case's saved workflow state (the data its tasks
gathered), at most once per case version and process: a state is 10-30 kB of JSON (about 0.2 ms to read), and
a version changes only when the case is saved.

(Two columns on ``process_instance``, filled with the case summary on every save, would make this a plain read;
they need a migration.)
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from engine.services.context import EngineContext
from engine.store.models import ProcessInstance, table_of

_INSTANCE = table_of(ProcessInstance)
CACHE_SIZE = 4096
# SpiffWorkflow TaskState values of tasks that ran or are running: WAITING, READY, STARTED, COMPLETED.
_REACHED_STATES = frozenset({8, 16, 32, 64})


@dataclass(frozen=True)
class CaseTraits:
    modality: str | None = None
    sex: str | None = None
    ins: str | None = None


NO_TRAITS = CaseTraits()


def traits_from_state(state: str) -> CaseTraits:
    """The latest values among the data of the tasks run or running (the task changed last wins). SpiffWorkflow
    keeps a task's full data on some tasks and only what the task changed (``delta.updates``) on others: both
    are read; the data of future tasks (and their deletions) are not."""
    try:
        decoded = json.loads(state)
    except (TypeError, ValueError):
        return NO_TRAITS
    if not isinstance(decoded, dict):
        return NO_TRAITS
    datas: list[tuple[float, Mapping[str, Any]]] = []
    if isinstance(decoded.get("data"), dict):
        datas.append((float("-inf"), decoded["data"]))
    tasks = decoded.get("tasks")
    for task in tasks.values() if isinstance(tasks, dict) else ():
        if not isinstance(task, dict) or task.get("state") not in _REACHED_STATES:
            continue
        changed = task.get("last_state_change")
        at = float(changed) if isinstance(changed, int | float) else 0.0
        delta = task.get("delta")
        for data in (task.get("data"), delta.get("updates") if isinstance(delta, dict) else None):
            if isinstance(data, dict) and data:
                datas.append((at, data))
    datas.sort(key=lambda item: item[0], reverse=True)
    modality = _first(data.get("modality") for _, data in datas)
    patients = [data["patient"] for _, data in datas if isinstance(data.get("patient"), dict)]
    return CaseTraits(modality=modality, sex=_first(p.get("sex") for p in patients),
                      ins=_first(p.get("ins") for p in patients))


def _first(values: Iterable[Any]) -> str | None:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()[:64]
    return None


class _TraitsCache:
    def __init__(self, size: int = CACHE_SIZE):
        self._items: dict[tuple[int, int], CaseTraits] = {}
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple[int, int]) -> CaseTraits | None:
        with self._lock:
            return self._items.get(key)

    def put(self, key: tuple[int, int], traits: CaseTraits) -> None:
        with self._lock:
            if len(self._items) >= self._size:
                self._items.pop(next(iter(self._items)))
            self._items[key] = traits


_CACHES: weakref.WeakKeyDictionary[Engine, _TraitsCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def _cache(ctx: EngineContext) -> _TraitsCache:
    with _CACHES_LOCK:
        found = _CACHES.get(ctx.engine)
        if found is None:
            found = _CACHES[ctx.engine] = _TraitsCache()
        return found


def case_traits(ctx: EngineContext, versions: Mapping[int, int]) -> dict[int, CaseTraits]:
    """Traits of the cases `{case id: version}`; one statement for those not read at that version yet."""
    cache = _cache(ctx)
    found: dict[int, CaseTraits] = {}
    missing: list[int] = []
    for case_id, version in versions.items():
        cached = cache.get((case_id, version))
        if cached is None:
            missing.append(case_id)
        else:
            found[case_id] = cached
    if missing:
        with ctx.read() as session:
            rows = session.execute(select(_INSTANCE.c.id, _INSTANCE.c.version, _INSTANCE.c.state)
                                   .where(_INSTANCE.c.id.in_(missing))).all()
        for row in rows:
            traits = traits_from_state(row.state)
            cache.put((row.id, row.version), traits)
            found[row.id] = traits
    return found
