"""What the image integrations (DICOM reception, web upload) need of a case, and their events on its audit chain.

Images are used only after the case's identity check (CH-4.1.6): `case_identity` tells whether the identity
check is recorded (a charter fact, engine.runtime.charter_facts) and which traits it vouched for. Every attach
and hold of images is an event of the case's own audit chain (CH-5.3), written by `record_image_events` in the
caller's transaction (so the index and its trace are one write) or by `record_image_event` in its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from engine.domain import gates
from engine.services.context import EngineContext
from engine.services.persistence import append_case_events, load_workflow, lock_instance
from engine.store import audit

IMAGES_ACTOR = "dicom"
PATIENT_TRAITS = ("birth_name", "used_name", "first_names", "birth_date", "sex", "site_patient_id")


@dataclass(frozen=True)
class CaseIdentity:
    case_id: int
    site_id: str | None
    running: bool
    identity_checked: bool  # the case's identity check is recorded (and not withdrawn since)
    patient: dict[str, Any] = field(default_factory=dict)  # the traits images are compared with
    # A new exam whose protocol the radiologist has not chosen yet, after his justification (CH-4.1.2, CH-4.1.9):
    # images of it were made outside the procedure and wait for it.
    awaiting_protocol: bool = False


def case_identity(ctx: EngineContext, case_id: int) -> CaseIdentity:
    """The identity of a case as images are matched against it (no permission check: the caller is the
    DICOM reception or a person the web layer already allowed to see the case)."""
    with ctx.read() as session:
        instance = lock_instance(session, case_id)
        cached = load_workflow(ctx, session, instance)
        data = cached.live.latest_data()
        facts = cached.live.charter_facts()
        checked = gates.identity_checked(facts)
        protocolled = "protocol" not in cached.live.definition.charter_roles.values() \
            or gates.protocol_after_justification(facts)
    ctx.live_cache.put(case_id, cached)
    patient = data.get("patient")
    traits = {k: patient[k] for k in PATIENT_TRAITS if isinstance(patient, Mapping) and patient.get(k)}
    return CaseIdentity(case_id, instance.site_id, instance.status == "running", checked, traits, not protocolled)


def record_image_events(session: Session, case_id: int | None, events: Iterable[tuple[str, dict[str, Any]]],
                        at: Any, actor: str = IMAGES_ACTOR) -> None:
    """Events about images (dicom.study_attached, dicom.study_held, dicom.instance_held...) on the case's audit
    chain, or on the global chain when no case is known, in the caller's transaction."""
    entries = [audit.AuditEntry(actor, action, case_id, detail) for action, detail in events]
    if case_id is None:
        audit.append_global(session, entries, at)
    else:
        append_case_events(session, lock_instance(session, case_id), entries, at)


def record_image_event(ctx: EngineContext, case_id: int | None, action: str, detail: dict[str, Any],
                       actor: str = IMAGES_ACTOR) -> None:
    """One event about images, in a transaction of its own."""
    with ctx.write() as session:
        record_image_events(session, case_id, [(action, detail)], ctx.clock.now(), actor)
        session.commit()
