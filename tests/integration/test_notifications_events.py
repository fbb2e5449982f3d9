"""The events after acceptance, each derived from what its save recorded and written in the same transaction: the
report overdue (radiologist, requester, site lead), the announcement plan waiting for the requester, the released
report, the images held for an identity check (the site's technologists)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.services.instances import start_instance
from engine.services.notification_contacts import (
    ANNOUNCEMENT_PLAN,
    IDENTITY_HOLD,
    REPORT_OVERDUE,
    REPORT_RELEASED,
)
from engine.services.tasks import complete_task, list_tasks
from engine.services.timers import fire_due_timers
from engine.store.models import Task
from integrations.notify.delivery import deliver_notifications, install
from tests.integration.notify_support import night_ctx, outbox, settings_for, smtp_server
from tests.signing import signed

__all__ = ["night_ctx"]
REQUESTER = Actor("dr.martin", frozenset({"requester"}), frozenset({"ch-brest"}))
TECHNOLOGIST = Actor("merm.leroy", frozenset({"technologist"}), frozenset({"ch-brest"}))
RADIOLOGIST = Actor("dr.legall", frozenset({"radiologist", "tele_expert"}), frozenset())
REPORT = {"outcome": "report", "technique": "Acquisition standard.", "findings": "Masse lobaire de 45 mm.",
          "conclusion": "Aspect de carcinome.", "certainty": "uncertain", "complementary_strategy": "Biopsie.",
          "urgent_finding": False, "poor_prognosis": True}
PLAN = {"plan_confirmed": True, "announcer": "Dr Martin", "planned_at": "2026-01-09T10:00"}


def complete(ctx, case_id, spec, actor, data):
    task = next(t for t in list_tasks(ctx, actor) if t.instance_id == case_id and t.spec_name == spec)
    complete_task(ctx, actor, task.id, data)


def events_of(ctx, case_id):
    return {(row.event, row.recipient) for row in outbox(ctx, case_id=case_id)}


@pytest.mark.charter("CH-4.1.12")
def test_overdue_report_announcement_plan_and_released_report(night_ctx, clock):
    controller, mailbox = smtp_server()
    try:
        settings = settings_for(controller.port)
        install(night_ctx, settings)
        with night_ctx.read() as session:  # the demo's wrist X-ray, waiting for its images
            case_id = session.execute(select(Task.instance_id).where(Task.spec_name == "acquire_images",
                                                                     Task.status == "open")).scalar_one()
        complete(night_ctx, case_id, "acquire_images", TECHNOLOGIST, {
            "images_sent": True, "protocol_followed": True, "technical_difficulty": False})
        clock.advance(days=3)
        fire_due_timers(night_ctx)
        assert {(REPORT_OVERDUE, "dr.legall"), (REPORT_OVERDUE, "dr.martin"), (REPORT_OVERDUE, "dr.guillou")} <= \
            events_of(night_ctx, case_id)
        # three days later dr.legall's on-call slot is over: he is reached as the case's radiologist, not as on call
        assert not [row for row in outbox(night_ctx, case_id=case_id) if row.event_key.endswith(":oncall")]
        complete(night_ctx, case_id, "interpret", RADIOLOGIST, signed(night_ctx, "dr.legall", REPORT))
        complete(night_ctx, case_id, "propose_announcement", RADIOLOGIST, {"announcement_proposal": "En consultation."})
        assert (ANNOUNCEMENT_PLAN, "dr.martin") in events_of(night_ctx, case_id)
        assert (REPORT_RELEASED, "dr.martin") not in events_of(night_ctx, case_id)
        complete(night_ctx, case_id, "confirm_announcement_plan", REQUESTER, PLAN)
        assert (REPORT_RELEASED, "dr.martin") in events_of(night_ctx, case_id)
        assert deliver_notifications(night_ctx, settings).sent >= 5
    finally:
        controller.stop()
    subjects = [message["Subject"] for message in mailbox.to("dr.martin@telerad.localhost")]
    assert any("Plan d'annonce à confirmer" in subject for subject in subjects)
    assert any("Compte-rendu disponible" in subject for subject in subjects)
    for message in mailbox.to("dr.martin@telerad.localhost"):
        assert "carcinome" not in message.get_content() and "Quéré" not in message.get_content()
        assert "de garde" not in message.get_content() and "Garde" not in message["Subject"]


@pytest.mark.charter("CH-4.1.6")
def test_images_held_for_an_identity_check_reach_the_site_technologists(night_ctx):
    install(night_ctx, settings_for(2525))
    dicom = Actor("dicom", frozenset({"technologist"}), frozenset({"ch-brest"}))
    identity_case = start_instance(night_ctx, dicom, "image_identity_check", {
        "case_id": 1, "study_uid": "1.2.3", "hold_reason": "patient_mismatch", "urgency": "vital",
        "summary": "Images à rapprocher du dossier n° 1"}, site_id="ch-brest")
    rows = outbox(night_ctx, case_id=identity_case)
    assert [(row.event, row.recipient, row.urgency) for row in rows] == [(IDENTITY_HOLD, "merm.leroy", "vital")]
