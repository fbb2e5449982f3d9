"""A quarter's notable cases built on the demo data (web.cli.demo_data, clock on 2026-01-05), for the quality audit
tests (CH-6.3): each fact is written where the product records it.

- a motivated refusal: the demo's Le Bihan case (ch-brest) walked by its real tasks to ``state_refusal``;
- a report past its due time: the ``report_overdue`` case notice, as engine.services.notices writes it;
- an escalation beyond tier 3: the ``timer.fired`` event of the ``accept_tier3`` delay, as engine.services.timers
  writes it (and one of ``accept_tier2``, which is not notable);
- identity holds: ``dicom.study_held`` for a discordance and ``dicom.instance_held``, written by
  engine.services.images.record_image_events as the DICOM adapter does (and a routine wait for the identity check,
  which is not notable);
- a case of ch-morlaix (another site and territory) with its own overdue notice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import insert, select

from engine.domain.actors import Actor
from engine.services.images import record_image_events
from engine.services.instances import start_instance
from engine.services.persistence import append_case_events, lock_instance
from engine.services.tasks import complete_task, list_tasks
from engine.store import audit
from engine.store.models import CaseNotice, ProcessInstance, table_of
from web.cli.demo_data import _actor, demo_request

AWAITING_CHECK = ("identité du patient pas encore vérifiée dans le dossier : images retenues jusqu'à la "
                  "vérification")


@dataclass(frozen=True)
class Scenario:
    vital: int  # Kermarrec: overdue report
    refused: int  # Le Bihan: motivated refusal
    wrist: int  # Quéré: tier 4, identity holds
    morlaix: int  # the other site's case, overdue


def _complete(ctx, case_id: int, spec: str, who: str, data: dict) -> None:
    actor = _actor(who)
    task = next(t for t in list_tasks(ctx, actor) if t.instance_id == case_id and t.spec_name == spec)
    complete_task(ctx, actor, task.id, data)


def case_ids(ctx) -> list[int]:
    with ctx.read() as session:
        return list(session.execute(select(ProcessInstance.id).where(
            ProcessInstance.process_id == "telediagnosis").order_by(ProcessInstance.id)).scalars())


def overdue_notice(ctx, case_id: int, site_id: str) -> None:
    with ctx.write() as session:
        session.execute(insert(table_of(CaseNotice)).values(
            instance_id=case_id, site_id=site_id, kind="report_overdue",
            audience=json.dumps({"users": [], "roles": ["site_lead"]}), created_at=ctx.clock.now()))
        session.commit()


def timer_fired(ctx, case_id: int, setting: str) -> None:
    with ctx.write() as session:
        append_case_events(session, lock_instance(session, case_id), [audit.AuditEntry(
            "system", "timer.fired", case_id, {"timer": "accept_timeout", "task_id": "t", "due_at": "x",
                                               "expression": 'escalation[offer["setting"]]', "setting": setting})],
            ctx.clock.now())
        session.commit()


def image_events(ctx, case_id: int, events: list[tuple[str, dict]]) -> None:
    with ctx.write() as session:
        record_image_events(session, case_id, events, ctx.clock.now())
        session.commit()


def build(ctx, clock) -> Scenario:
    vital, refused, wrist = case_ids(ctx)[:3]
    clock.advance(hours=1)
    _complete(ctx, refused, "inform_patient", "dr.martin", {"patient_informed": True, "consent": "given"})
    _complete(ctx, refused, "check_identity", "merm.leroy", {
        "identity_checked": True, "identity_status": "qualified", "identity_document": "id_card"})
    _complete(ctx, refused, "justify", "dr.legall", {"justification": "refuse"})
    _complete(ctx, refused, "state_refusal", "dr.legall", {
        "refusal_reason": "insufficient_information", "refusal_detail": "Pas de contexte clinique exploitable.",
        "refusal_follow_up": "convention_fallback"})
    clock.advance(hours=1)
    overdue_notice(ctx, vital, "ch-brest")
    timer_fired(ctx, wrist, "accept_tier2")  # tier 2 to 3: not notable
    clock.advance(minutes=30)
    timer_fired(ctx, wrist, "accept_tier3")
    image_events(ctx, vital, [("dicom.study_held", {"study_uid": "1.2.3", "reason": AWAITING_CHECK})])
    image_events(ctx, wrist, [("dicom.study_held", {"study_uid": "1.2.4", "reason": "identité différente : nom"})])
    clock.advance(minutes=5)
    image_events(ctx, wrist, [("dicom.instance_held", {"study_uid": "1.2.4", "sop_instance_uid": "1.2.4.1",
                                                       "reason": "autre patient"})])
    morlaix_requester = Actor("dr.morlaix", frozenset({"requester"}), frozenset({"ch-morlaix"}))
    morlaix = int(start_instance(ctx, morlaix_requester, "telediagnosis", {}, site_id="ch-morlaix",
                                 first_task=demo_request(urgency="urgent")))
    overdue_notice(ctx, morlaix, "ch-morlaix")
    return Scenario(vital, refused, wrist, morlaix)
