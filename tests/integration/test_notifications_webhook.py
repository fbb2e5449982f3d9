"""Notifications by the signed webhook (a real HTTP receiver on loopback) and the events after the first offer: the
offer moved to the next tier, no radiologist left (site lead, on-call, administrators, reminded until handled)."""

from __future__ import annotations

import time

import pytest

from engine.domain.actors import Actor
from engine.services.notification_contacts import (
    DEFAULT_PREFERENCES,
    NEXT_TIER,
    NO_RADIOLOGIST,
    URGENT_OFFER,
    WEBHOOK,
    update_contact,
)
from engine.services.tasks import complete_task, list_tasks
from engine.services.timers import fire_due_timers
from engine.store.directory_models import User
from integrations.notify.delivery import deliver_notifications, install
from tests.demo_app import open_task
from tests.integration.notify_support import (
    PUBLIC_URL,
    SECRET,
    http_receiver,
    night_ctx,
    outbox,
    settings_for,
    urgent_case,
    verify_signature,
)

__all__ = ["night_ctx"]
PHONES = {"dr.legall": "+33611111111", "dr.morvan": "+33622222222", "dr.guillou": "+33633333333",
          "admin": "+33644444444"}


def _phones(ctx):
    for user, phone in PHONES.items():
        update_contact(ctx, Actor(user), user, "", phone, DEFAULT_PREFERENCES)


def _until_no_radiologist(ctx, clock, case_id):
    for _ in range(8):
        if outbox(ctx, case_id=case_id, event=NO_RADIOLOGIST):
            return
        clock.advance(minutes=16)
        fire_due_timers(ctx)
    raise AssertionError("no 'no radiologist' alert")


@pytest.mark.charter("CH-5.5")
def test_the_webhook_is_signed_and_carries_no_patient_data(night_ctx):
    receiver = http_receiver()
    try:
        settings = settings_for(webhook=f"http://127.0.0.1:{receiver.server_port}/telerad")
        install(night_ctx, settings)
        _phones(night_ctx)
        case_id = urgent_case(night_ctx)
        assert deliver_notifications(night_ctx, settings).sent == 1
    finally:
        receiver.shutdown()
    (request,) = receiver.received
    payload = verify_signature(request, now=int(time.time()))
    assert payload["event"] == URGENT_OFFER and payload["case_id"] == case_id and payload["urgency"] == "vital"
    assert payload["recipient"] == {"username": "dr.legall", "phone": PHONES["dr.legall"]}
    assert payload["link"] == f"{PUBLIC_URL}/cases/{case_id}" and len(payload["text"]) <= 160
    assert "Kermarrec" not in request["body"].decode() and "Hématome" not in request["body"].decode()
    with pytest.raises(AssertionError):  # a body changed on the way, or another key: refused by the receiver
        verify_signature({**request, "body": request["body"].replace(b"vital", b"urgent")})
    with pytest.raises(AssertionError):
        verify_signature(request, secret=SECRET + "x")


def test_a_receiver_answering_an_error_is_retried(night_ctx):
    receiver = http_receiver(answer=503)
    try:
        settings = settings_for(webhook=f"http://127.0.0.1:{receiver.server_port}/telerad")
        install(night_ctx, settings)
        _phones(night_ctx)
        urgent_case(night_ctx)
        assert deliver_notifications(night_ctx, settings).retried == 1
    finally:
        receiver.shutdown()
    (row,) = outbox(night_ctx)
    assert row.status == "pending" and row.last_error == "Webhook : réponse HTTP 503."


@pytest.mark.charter("CH-3.3")
@pytest.mark.charter("CH-5.5")
def test_next_tier_then_no_radiologist_left_with_reminders_until_handled(night_ctx, clock):
    settings = settings_for(webhook="http://127.0.0.1:9/telerad")
    install(night_ctx, settings)
    _phones(night_ctx)
    case_id = urgent_case(night_ctx)
    clock.advance(minutes=16)
    fire_due_timers(night_ctx)
    moved = outbox(night_ctx, case_id=case_id, event=NEXT_TIER)
    assert moved and all(row.channel == WEBHOOK for row in moved)
    _until_no_radiologist(night_ctx, clock, case_id)
    alerted = outbox(night_ctx, case_id=case_id, event=NO_RADIOLOGIST)
    assert [row.recipient for row in alerted][0] == "dr.legall"  # the on-call radiologist first
    assert {row.recipient for row in alerted} == {"dr.legall", "dr.guillou", "admin"}
    # The diagram renews its alert when its timer fires; without it (timers not fired here), the worker reminds.
    def told():
        return len(outbox(night_ctx, case_id=case_id, event=NO_RADIOLOGIST))

    before = told()
    clock.advance(minutes=5)
    deliver_notifications(night_ctx, settings)
    assert told() == before  # not yet
    clock.advance(minutes=settings.reminder.total_seconds() / 60)
    deliver_notifications(night_ctx, settings)
    assert told() == before + 3
    reminders = outbox(night_ctx, case_id=case_id, event=NO_RADIOLOGIST)[-3:]
    assert reminders[0].recipient == "dr.legall" and ":reminder:" in reminders[0].event_key
    deliver_notifications(night_ctx, settings)
    assert told() == before + 3  # once per interval
    lead = Actor("dr.guillou", frozenset({"site_lead"}), frozenset({"ch-brest"}))
    complete_task(night_ctx, lead, open_task(night_ctx, case_id, "no_radiologist_alert"), {
        "alert_outcome": "handled_locally", "action_taken": "Transfert au CHU, radiologue de garde joint."})
    clock.advance(hours=1)
    deliver_notifications(night_ctx, settings)
    assert told() == before + 3  # handled: no more reminders


def test_a_decline_does_not_offer_the_case_again_to_those_already_told(night_ctx, clock):
    settings = settings_for(webhook="http://127.0.0.1:9/telerad")
    install(night_ctx, settings)
    _phones(night_ctx)
    clock.advance(hours=9, minutes=30)  # 09:00 in Paris: tier 1, the radiologists of the territory
    with night_ctx.write() as session:  # a second radiologist in the Brest territory
        session.get(User, "dr.morvan").territory_id = "brest"
        session.commit()
    case_id = urgent_case(night_ctx)
    offered = {row.recipient for row in outbox(night_ctx, case_id=case_id, event=URGENT_OFFER)}
    assert offered == {"dr.legall", "dr.morvan"}
    legall = Actor("dr.legall", frozenset({"radiologist", "tele_expert"}))
    task = next(t for t in list_tasks(night_ctx, legall) if t.instance_id == case_id)
    complete_task(night_ctx, legall, task.id, {"acceptance": "decline", "decline_reason": "Déjà en vacation."})
    morvan = Actor("dr.morvan", frozenset({"radiologist"}))
    reoffered = next(t for t in list_tasks(night_ctx, morvan) if t.instance_id == case_id)
    assert reoffered.spec_name == "accept_case" and reoffered.id != task.id  # offered again, to him only
    assert len(outbox(night_ctx, case_id=case_id)) == 2  # dr.morvan was told already
