"""The in-process cache of live workflows: valid only for the version it was saved at; finished cases not kept."""

from __future__ import annotations

from types import SimpleNamespace

from engine.services.context import CachedWorkflow, LiveCache


def _entry(version: int, completed: bool = False) -> CachedWorkflow:
    return CachedWorkflow(version, SimpleNamespace(), SimpleNamespace(completed=completed))  # type: ignore[arg-type]


def test_an_entry_is_given_back_once_and_only_for_its_version():
    cache = LiveCache()
    cache.put(1, _entry(3))
    assert cache.take(1, 4) is None  # someone saved the case since: reload it
    cache.put(1, _entry(3))
    assert cache.take(1, 3) is not None
    assert cache.take(1, 3) is None  # taken out while a use case works on it


def test_a_finished_case_is_not_kept_and_its_older_entry_is_dropped():
    cache = LiveCache()
    cache.put(7, _entry(1))
    cache.put(7, _entry(2, completed=True))
    assert cache.take(7, 1) is None and cache.take(7, 2) is None


def test_the_cache_is_bounded():
    cache = LiveCache(size=2)
    for case in (1, 2, 3):
        cache.put(case, _entry(1))
    assert cache.take(1, 1) is None and cache.take(3, 1) is not None
