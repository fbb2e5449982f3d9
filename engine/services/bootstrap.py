"""The composition root of the engine: builds the EngineContext that every use case receives (database,
runtime with the service operations the diagrams call, form registry, directory, live escalation settings).

Kept apart from engine.services.context (the types) so that the use cases it wires together can import the
context without importing each other back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from engine.ports import Clock, Directory, SystemClock
from engine.runtime import OperationRegistry, Runtime
from engine.services.audit import bind_keys
from engine.services.charter_routing import install as install_charter_packs
from engine.services.context import EngineContext
from engine.services.escalation import LiveEscalation
from engine.services.keyring import KeyRing
from engine.services.operations import register_all
from engine.services.protocols import protocol_catalogue
from engine.store.db import make_engine, session_factories
from engine.store.form_store import sql_form_source
from engine.store.sql_directory import SqlDirectory
from forms import FormRegistry, default_registry


def build_context(database_url: str, *, clock: Clock | None = None, operations: OperationRegistry | None = None,
                  forms: FormRegistry | None = None, directory: Directory | None = None,
                  escalation: Mapping[str, str] | None = None, keys: KeyRing | None = None,
                  **engine_options: Any) -> EngineContext:
    engine = make_engine(database_url, **engine_options)
    writer, reader = session_factories(engine)
    clock = clock or SystemClock()
    directory = directory or SqlDirectory(reader, clock)  # the clock says when a convention has expired
    provided: dict[str, Mapping[str, str]] = {
        "escalation": MappingProxyType(dict(escalation)) if escalation is not None else _live_escalation(reader)}
    built: list[EngineContext] = []

    def catalogue() -> Any:
        return _sql_catalogue(built[0])

    ctx = EngineContext(
        engine=engine, writer=writer, reader=reader,
        runtime=Runtime(operations or default_operations(directory, clock, catalogue), provided),
        forms=(forms or default_registry()).with_source(sql_form_source(reader)), clock=clock, directory=directory,
        protocol_catalogue=catalogue, keys=keys or KeyRing.development(),
    )
    built.append(ctx)
    bind_keys(ctx)  # the audit events written through its sessions are MACed with ctx.keys
    install_charter_packs(ctx)  # the charter pack of each new case, the share screen on its timeline (CH-9.1)
    return ctx


def _sql_catalogue(ctx: EngineContext) -> Any:
    """The administrators' protocol catalogue (engine.services.protocols), cached there."""
    return protocol_catalogue(ctx)


def _live_escalation(reader: sessionmaker[Session]) -> Mapping[str, str]:
    return LiveEscalation(reader)


def default_operations(directory: Directory, clock: Clock,
                       catalogue: Callable[[], Any] | None = None) -> OperationRegistry:
    """The service operations the shipped diagrams call (see engine.services.operations); `catalogue` reads the
    protocol catalogue (the shipped default when not given)."""
    registry = OperationRegistry()
    if catalogue is None:
        register_all(registry, directory, clock)
    else:
        register_all(registry, directory, clock, catalogue)
    return registry
