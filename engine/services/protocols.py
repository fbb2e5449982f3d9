"""The protocol catalogue in the database (CH-4.1.9, CH-4.1.10): read by the radiologist's protocol form, its
server-side check and the charter gates; edited by administrators, each change one audited transaction.

A protocol is never deleted (cases keep its id): it is deactivated. Its modality and contrast agent class never
change either, since they decide which gates a case passes: the administrator creates a new protocol instead.

`protocol_catalogue(ctx)` is cached per process and per database for `CACHE_TTL` seconds, dropped at once in the
process that changes the catalogue; another process (a worker) sees a change within `CACHE_TTL` seconds.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.data_checks import paris_date
from engine.domain.protocols import (
    AGENT_CLASSES,
    InvalidProtocol,
    Protocol,
    ProtocolCatalogue,
    check_protocol,
    final_modality,
    modality_label,
)
from engine.domain.radioprotection import AGE_OF_MAJORITY, age_on
from engine.errors import Forbidden, NotFound
from engine.services.context import EngineContext
from engine.store import audit
from engine.store.protocol_models import ProtocolRow, protocol_of, row_values

CACHE_TTL = 2.0  # seconds
PROTOCOL_FORM = "td_protocol.schema.json"

_cache: weakref.WeakKeyDictionary[Engine, tuple[float, ProtocolCatalogue]] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()

__all__ = ["InvalidProtocol", "PROTOCOL_FORM", "check_protocol_choice", "list_protocols", "protocol_catalogue",
           "protocol_choices", "save_protocol", "set_active"]


def protocol_catalogue(ctx: EngineContext) -> ProtocolCatalogue:
    """The catalogue, inactive protocols included (ProtocolCatalogue.for_modality hides them)."""
    with _cache_lock:
        cached = _cache.get(ctx.engine)
    if cached is not None and time.monotonic() - cached[0] <= CACHE_TTL:
        return cached[1]
    with ctx.read() as session:
        catalogue = ProtocolCatalogue.of(protocol_of(row) for row in session.execute(select(ProtocolRow)).scalars())
    with _cache_lock:
        _cache[ctx.engine] = (time.monotonic(), catalogue)
    return catalogue


def invalidate(ctx: EngineContext) -> None:
    with _cache_lock:
        _cache.pop(ctx.engine, None)


def list_protocols(ctx: EngineContext, modality: str | None = None, *, include_inactive: bool = True
                   ) -> list[Protocol]:
    """Protocols by modality then label; with `modality`, only that modality's active ones."""
    catalogue = protocol_catalogue(ctx)
    if modality is not None:
        return catalogue.for_modality(modality)
    return sorted((p for p in catalogue.protocols.values() if include_inactive or p.active),
                  key=lambda p: (p.modality, p.label.casefold()))


def get_protocol(ctx: EngineContext, protocol_id: str) -> Protocol:
    protocol = protocol_catalogue(ctx).get(protocol_id)
    if protocol is None:
        raise NotFound("protocole introuvable")
    return protocol


def _require_admin(actor: Actor) -> None:
    if not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur peut modifier le catalogue des protocoles.")


def save_protocol(ctx: EngineContext, actor: Actor, protocol: Protocol, *, create: bool | None = None) -> Protocol:
    """Create or update a protocol (`create`: True only creates, False only updates, None either); returns it as
    stored. Raises Forbidden, InvalidProtocol or, for an update of an unknown id, NotFound."""
    _require_admin(actor)
    protocol = check_protocol(protocol)
    now = ctx.clock.now()
    with ctx.write() as session:
        row = session.get(ProtocolRow, protocol.id, with_for_update=True)
        if create or (create is None and row is None):
            if row is not None:
                raise InvalidProtocol(f"Un protocole d'identifiant « {protocol.id} » existe déjà.")
            session.add(ProtocolRow(**row_values(protocol), updated_at=now, updated_by=actor.user_id))
            action, before = "protocol.created", None
        else:
            if row is None:
                raise NotFound("protocole introuvable")
            before = protocol_of(row)
            if (before.modality, before.agent_class) != (protocol.modality, protocol.agent_class):
                raise InvalidProtocol("La modalité et le produit de contraste d'un protocole existant ne changent "
                                      "pas : créez un nouveau protocole et désactivez celui-ci.")
            for name, value in row_values(protocol).items():
                setattr(row, name, value)
            row.updated_at, row.updated_by = now, actor.user_id
            action = "protocol.updated"
        detail: dict[str, Any] = {"protocol": protocol.id, "values": _audited(protocol)}
        if before is not None:
            detail["before"] = _audited(before)
        try:
            session.flush()
        except IntegrityError as err:  # created meanwhile by another administrator
            raise InvalidProtocol(f"Un protocole d'identifiant « {protocol.id} » existe déjà.") from err
        audit.append_global(session, [audit.AuditEntry(actor.user_id, action, None, detail)], now)
        session.commit()
    invalidate(ctx)
    return protocol


def set_active(ctx: EngineContext, actor: Actor, protocol_id: str, active: bool) -> Protocol:
    """(De)activate a protocol: a deactivated one is no longer offered nor accepted for a new choice."""
    _require_admin(actor)
    now = ctx.clock.now()
    with ctx.write() as session:
        row = session.get(ProtocolRow, protocol_id, with_for_update=True) if isinstance(protocol_id, str) else None
        if row is None:
            raise NotFound("protocole introuvable")
        changed = bool(row.active) != active
        row.active = active
        if changed:
            row.updated_at, row.updated_by = now, actor.user_id
            audit.append_global(session, [audit.AuditEntry(
                actor.user_id, "protocol.activated" if active else "protocol.deactivated", None,
                {"protocol": protocol_id})], now)
        result = replace(protocol_of(row), active=active)
        session.commit()
    invalidate(ctx)
    return result


def _audited(protocol: Protocol) -> dict[str, Any]:
    values = protocol.as_dict()
    values.pop("ionizing", None)
    values.pop("contrast", None)
    return values


def protocol_choices(ctx: EngineContext, case: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(id, French label) of the active protocols of the case's final modality that suit the patient (a child is
    offered the protocols made for children), for the radiologist's form."""
    child = is_minor(case, paris_date(ctx.clock.now()))
    return [(p.id, choice_label(p)) for p in protocol_catalogue(ctx).for_modality(final_modality(case))
            if not child or "child" in p.patient_groups]


def choice_label(protocol: Protocol) -> str:
    agent = AGENT_CLASSES.get(protocol.agent_class or "")
    return f"{protocol.label} — injection : {agent}" if agent else protocol.label


@enforces("CH-4.1.9")
def check_protocol_choice(ctx: EngineContext, site_id: str | None, data: Mapping[str, Any],
                          case: Mapping[str, Any]) -> dict[str, str]:
    """A TaskCheck (engine.services.task_checks) of the protocol form: the chosen protocol must be in the
    catalogue, active, and of the case's final modality."""
    chosen = data.get("protocol")
    if chosen is None:
        return {}
    protocol = protocol_catalogue(ctx).get(chosen)
    if protocol is None:
        return {"protocol": "Protocole inconnu du catalogue : choisissez un protocole de la liste proposée."}
    if not protocol.active:
        return {"protocol": f"Le protocole « {protocol.label} » n'est plus proposé (désactivé par un "
                            "administrateur) : choisissez-en un autre."}
    modality = final_modality(case)
    if modality is not None and protocol.modality != modality:
        return {"protocol": f"Le protocole « {protocol.label} » relève de la modalité « "
                            f"{modality_label(protocol.modality)} » alors que l'examen retenu relève de la modalité "
                            f"« {modality_label(modality)} » : choisissez un protocole de cette modalité."}
    return _patient_group_problems(protocol, data, case, paris_date(ctx.clock.now()))


@enforces("CH-4.1.3")
def _patient_group_problems(protocol: Protocol, data: Mapping[str, Any], case: Mapping[str, Any],
                            today: date) -> dict[str, str]:
    """Special attention to children and pregnant women (CH-4.1.3): a child gets a protocol made for children; a
    pregnant woman an ionizing protocol not made for pregnancy only with the radiologist's written reason."""
    if is_minor(case, today) and "child" not in protocol.patient_groups:
        return {"protocol": f"Le protocole « {protocol.label} » n'est pas prévu pour un enfant : choisissez un "
                            "protocole pédiatrique."}
    reason = data.get("exposure_justification")
    if case.get("pregnancy_status") == "pregnant" and protocol.ionizing and "pregnant" not in protocol.patient_groups \
            and not (isinstance(reason, str) and any(c.isalnum() for c in reason)):
        return {"exposure_justification": "La patiente est enceinte et ce protocole irradiant n'est pas prévu pour la "
                                          "grossesse : justifiez l'exposition (aucune technique non irradiante ne "
                                          "convient, précautions prises) ou choisissez un autre protocole."}
    return {}


def is_minor(case: Mapping[str, Any], today: date) -> bool:
    patient = case.get("patient") if isinstance(case.get("patient"), Mapping) else {}
    try:
        born = date.fromisoformat(str(patient.get("birth_date"))[:10])  # type: ignore[union-attr]
        return age_on(born, today) < AGE_OF_MAJORITY
    except (TypeError, ValueError):
        return False
