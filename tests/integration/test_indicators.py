"""Quality indicators (CH-6.3, CH-4.1.12, CH-5.4) on scenario data with known answers: four telediagnoses walked
through the engine on a fake clock, a received study, HL7 errors and an on-call slot; each figure is computed by
hand in the comments and compared with engine.services.indicators.compute_indicators, on SQLite and PostgreSQL.

The scenario (week of Monday 12 January 2026, Paris time = UTC+1; every case at CH de Brest, requested by dr.martin;
minutes counted from the case's creation, which is also the moment its request is sent):

    A  vital CT      Mon 08:00 UTC  accepted +5 (dr.legall, first offer), images +20, report +50 (released +50),
                                   acknowledged +80
    B  urgent CT     Tue 08:00 UTC  tier 1 times out at +15 (timers fired at +16), accepted +20 by dr.morvan (tier 2),
                                   a question to the requester (+26) answered (+36), images +60, report +365 after
                                   its due time fired (PT4H from +60), urgent finding telephoned +365 (released),
                                   acknowledged +425
    C  scheduled XR  Wed 08:00 UTC  accepted +10, images +48, refused +168 (insufficient quality), fallback applied
    D  scheduled CT  Thu 08:00 UTC  accepted +15, images +60, report +660 with a poor prognosis, announcement
                                   proposed +670 and confirmed +730 (released +730), not acknowledged
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.domain.actors import Actor
from engine.services.indicators import IndicatorError, IndicatorFilters, as_datetime_range, compute_indicators
from engine.services.indicators_facts import refresh_recent_facts, stale_cases
from engine.services.instances import start_instance
from engine.services.oncall import add_slot
from engine.services.tasks import complete_task, list_tasks
from engine.services.timers import fire_due_timers
from integrations.dicom.models import DicomStudy
from integrations.hl7.models import Hl7Message
from tests import demo_app
from tests.signing import signature_code
from web.cli.demo_data import USERS, demo_request
from web.ops.scheduler import TimerScheduler

demo_ctx = demo_app.demo_ctx
PARIS = ZoneInfo("Europe/Paris")
MONDAY = datetime(2026, 1, 12, 8, 0, tzinfo=UTC)
WEEK = IndicatorFilters(date(2026, 1, 12), date(2026, 1, 18))
ACTORS = {u.username: Actor(u.username, frozenset(u.roles), frozenset(u.sites)) for u in USERS}


@dataclass
class Scenario:
    a: int
    b: int
    c: int
    d: int


def _do(ctx, clock, case_id, start, minute, spec, who, **data):
    clock.set(start + timedelta(minutes=minute))
    if "signature_code" in data:
        data["signature_code"] = signature_code(ctx, who)
    actor = ACTORS[who]
    task = next(t for t in list_tasks(ctx, actor) if t.instance_id == case_id and t.spec_name == spec)
    complete_task(ctx, actor, task.id, data)


def _start(ctx, clock, start, urgency, modality, exam, patient):
    clock.set(start)
    return int(start_instance(ctx, ACTORS["dr.martin"], "telediagnosis", {}, site_id="ch-brest",
                              first_task=demo_request(clinical_exam_date=start.date().isoformat(), urgency=urgency,
                                                      modality=modality, requested_exam=exam, patient=patient)))


def _front(ctx, clock, case_id, start, radiologist, accepted, protocol):
    _do(ctx, clock, case_id, start, accepted, "accept_case", radiologist, acceptance="accept")
    _do(ctx, clock, case_id, start, accepted + 2, "inform_patient", "dr.martin", patient_informed=True,
        consent="given")
    _do(ctx, clock, case_id, start, accepted + 4, "check_identity", "merm.leroy", identity_checked=True,
        identity_status="qualified", identity_document="id_card")


def _images(ctx, clock, case_id, start, minute, protocol, radiologist, justified):
    _do(ctx, clock, case_id, start, justified, "justify", radiologist, justification="validate")
    _do(ctx, clock, case_id, start, justified + 1, "choose_protocol", radiologist, protocol=protocol)
    _do(ctx, clock, case_id, start, minute, "acquire_images", "merm.leroy", images_sent=True, protocol_followed=True,
        technical_difficulty=False)


def _report(ctx, clock, case_id, start, minute, radiologist, urgent=False, poor=False):
    _do(ctx, clock, case_id, start, minute, "interpret", radiologist, outcome="report", technique="Standard.",
        findings="Voir conclusion.", conclusion="Conclusion.", certainty="certain", urgent_finding=urgent,
        poor_prognosis=poor, signature_code="")


MAN = {"birth_name": "Le Floch", "first_names": "Erwan", "birth_date": "1950-03-14", "sex": "M",
       "identity_status": "qualified"}


def build(ctx, clock) -> Scenario:
    a_start, b_start, c_start, d_start = (MONDAY + timedelta(days=n) for n in range(4))
    a = _start(ctx, clock, a_start, "vital", "CT", "Scanner cérébral sans injection", MAN)
    _front(ctx, clock, a, a_start, "dr.legall", 5, "ct_head_plain")
    _images(ctx, clock, a, a_start, 20, "ct_head_plain", "dr.legall", 11)
    _report(ctx, clock, a, a_start, 50, "dr.legall")
    _do(ctx, clock, a, a_start, 80, "acknowledge_report", "dr.martin", report_read=True, integrated_in_record=True)

    b = _start(ctx, clock, b_start, "urgent", "CT", "Angioscanner thoracique", MAN)
    clock.set(b_start + timedelta(minutes=16))
    fire_due_timers(ctx, clock.now())  # tier 1 (PT15M) timed out: offered to the neighbouring territory
    _front(ctx, clock, b, b_start, "dr.morvan", 20, "ct_head_plain")
    _do(ctx, clock, b, b_start, 26, "justify", "dr.morvan", justification="more_info",
        question_to_requester="Traitement anticoagulant ?")
    _do(ctx, clock, b, b_start, 36, "provide_information", "dr.martin", information="Aucun anticoagulant.")
    _images(ctx, clock, b, b_start, 60, "ct_head_plain", "dr.morvan", 38)
    clock.set(b_start + timedelta(minutes=365))
    fire_due_timers(ctx, clock.now())  # the report's due time (PT4H after the images, at +300) has passed
    _report(ctx, clock, b, b_start, 365, "dr.morvan", urgent=True)
    _do(ctx, clock, b, b_start, 365, "record_phone_call", "dr.morvan", caller="Dr Morvan", callee="Dr Martin",
        called_at=(b_start + timedelta(minutes=365)).astimezone(PARIS).strftime("%Y-%m-%dT%H:%M"),
        summary="Embolie pulmonaire annoncée au demandeur.")
    _do(ctx, clock, b, b_start, 425, "acknowledge_report", "dr.martin", report_read=True, integrated_in_record=True)

    c = _start(ctx, clock, c_start, "scheduled", "XR", "Radiographie du poignet", MAN)
    _front(ctx, clock, c, c_start, "dr.legall", 10, "xr_limb")
    _images(ctx, clock, c, c_start, 48, "xr_limb", "dr.legall", 16)
    _do(ctx, clock, c, c_start, 168, "interpret", "dr.legall", outcome="refuse", signature_code="")
    _do(ctx, clock, c, c_start, 173, "state_refusal", "dr.legall", refusal_reason="insufficient_quality",
        refusal_detail="Flou cinétique, examen ininterprétable.", refusal_follow_up="convention_fallback")
    _do(ctx, clock, c, c_start, 203, "apply_fallback", "dr.martin", fallback_applied="Patient adressé au CHU.")

    d = _start(ctx, clock, d_start, "scheduled", "CT", "Scanner thoraco-abdominal", MAN)
    _front(ctx, clock, d, d_start, "dr.legall", 15, "ct_head_plain")
    _images(ctx, clock, d, d_start, 60, "ct_head_plain", "dr.legall", 21)
    _report(ctx, clock, d, d_start, 660, "dr.legall", poor=True)
    _do(ctx, clock, d, d_start, 670, "propose_announcement", "dr.legall",
        announcement_proposal="Consultation d'annonce avec le médecin traitant.")
    _do(ctx, clock, d, d_start, 730, "confirm_announcement_plan", "dr.martin", plan_confirmed=True,
        announcer="Dr Martin", planned_at="2026-01-17T10:00")

    received = a_start + timedelta(minutes=15)
    with ctx.write() as session:
        # A's CT: first image at +15 min, last 40 s later, the case told of its images 10 s after that.
        session.add(DicomStudy(uid="1.2.826.0.1.3680043.10.1", case_id=a, site_id="ch-brest", status="attached",
                               first_received_at=received, last_received_at=received + timedelta(seconds=40),
                               notified_at=received + timedelta(seconds=50)))
        for site, status in (("ch-brest", "error"), ("ch-brest", "processed"), ("ch-morlaix", "rejected")):
            session.add(Hl7Message(direction="in", site_id=site, raw="MSH|", received_at=a_start, status=status))
        session.commit()
    add_slot(ctx, Actor("admin", frozenset({"administrator"})), "brest", "dr.legall",
             datetime(2026, 1, 12, 18, 30, tzinfo=PARIS), datetime(2026, 1, 13, 8, 0, tzinfo=PARIS))
    clock.set(datetime(2026, 1, 20, 9, 0, tzinfo=UTC))  # the week is over: on-call counted over all of it
    return Scenario(a, b, c, d)


@pytest.mark.charter("CH-6.3", "CH-4.1.12", "CH-5.4")
def test_CH6_3_each_indicator_matches_its_hand_computation(demo_ctx, clock):
    built = build(demo_ctx, clock)
    figures = compute_indicators(demo_ctx, WEEK)
    # Four cases created in the week (the demo's own three are from 5 January): A vital, B urgent, C and D scheduled.
    assert figures["requests"] == {"total": 4, "telediagnosis": 4, "teleexpertise": 0,
                                   "by_urgency": {"vital": 1, "urgent": 1, "scheduled": 2, "unknown": 0}}
    # Acceptance from the first offer: A 5, B 20, C 10, D 15 min -> mean 50 / 4 = 12.5. B reached tier 2 after
    # tier 1's timeout; the others were accepted at the first offer: (5 + 10 + 15) / 3 = 10.0.
    acceptance = figures["acceptance"]
    assert (acceptance["offered"], acceptance["accepted"], acceptance["mean_minutes"]) == (4, 4, 12.5)
    assert acceptance["by_tier"] == {"first_offer": {"cases": 3, "accepted": 3, "mean_minutes": 10.0},
                                     "tier_2": {"cases": 1, "accepted": 1, "mean_minutes": 20.0}}
    # Released: A at +50, B at +365, D at +730 (C refused) -> mean 1145 / 3 = 381.7, max 730. From the images to the
    # release: A 50-20 = 30, B 365-60 = 305, D 730-60 = 670 -> mean 1005 / 3 = 335.0.
    turnaround = figures["turnaround"]
    assert (turnaround["released"], turnaround["mean_minutes"], turnaround["max_minutes"],
            turnaround["mean_report_minutes"]) == (3, 381.7, 730.0, 335.0)
    # Within the report's due time (images -> release): A 30 <= 60 (vital), B 305 > 240 (urgent), D 670 <= 2880.
    by_urgency = turnaround["by_urgency"]
    assert [(by_urgency[level]["released"], by_urgency[level]["within_delay"], by_urgency[level]["within_share"])
            for level in ("vital", "urgent", "scheduled")] == [(1, 1, 1.0), (1, 0, 0.0), (1, 1, 1.0)]
    assert by_urgency["urgent"]["mean_minutes"] == 365.0 and by_urgency["scheduled"]["mean_minutes"] == 730.0
    # Classes < 30, 30-60, 60-120, 120-240, 240-480, 480-1440, ...: A 50 in the 2nd, B 365 in the 5th, D 730 in the 6th.
    assert turnaround["distribution"] == [0, 1, 0, 0, 1, 1, 0, 0, 0]
    assert turnaround["distribution_by_urgency"]["urgent"] == [0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert turnaround["overdue_alerts"] == 1  # B's report_due timer fired
    # One week (Monday 12 January): 4 requests, 3 released, 2 of them within their due time, mean 381.7.
    assert figures["weekly"] == [{"week_start": "2026-01-12", "requests": 4, "released": 3, "within_share": 0.6667,
                                  "mean_turnaround_minutes": 381.7}]
    assert figures["phone_calls"] == {"urgent_findings": 1, "calls_recorded": 1}  # B
    assert figures["refusals"] == {"cases": 1, "site_visits": 0, "fallback_procedures": 1,  # C
                                   "by_reason": {"insufficient_information": 0, "inappropriate_images": 0,
                                                 "insufficient_quality": 1}}
    assert figures["more_information"] == {"cases": 1, "loops": 1}  # B's question
    assert figures["announcements"] == {"cases": 1, "confirmed": 1}  # D
    # A acknowledged 30 min after its release, B 60 min after: mean 45.0; D still waits.
    assert figures["acknowledgement"] == {"acknowledged": 2, "pending": 1, "mean_minutes": 45.0}
    assert figures["teleexpertise"]["requests"] == 0 and figures["teleexpertise"]["answered"] == 0
    # A's study: 40 s from first to last image, 10 s of stability before the case was told.
    assert figures["image_transfer"] == {"studies": 1, "mean_transfer_seconds": 40.0, "max_transfer_seconds": 40.0,
                                         "notified": 1, "mean_stability_seconds": 10.0}
    # Two inbound HL7 messages in error or rejected during the week (one at each site); nothing else went wrong.
    assert figures["technical_incidents"] == {"failed_cases": 0, "technical_difficulties": 0, "images_held": 0,
                                              "priors_failed": 0, "hl7_errors": 2, "downtime_incidents": 0,
                                              "downtime_minutes": 0}
    # Out of hours in the week: 5 weekdays x (8 h + 5.5 h) + the weekend's 48 h = 115.5 h. Brest's one slot covers
    # Monday 18:30 -> Tuesday 08:00 (13.5 h): 102.0 h uncovered in 5 gaps (Monday morning, Tuesday to Thursday
    # nights, Friday 18:30 -> Monday 00:00 = 53.5 h), 13.5 / 115.5 = 0.1169 covered. Morlaix has no slot: 6 gaps.
    oncall = figures["oncall"]
    assert oncall["out_of_hours_hours"] == 115.5
    assert oncall["territories"] == [
        {"territory_id": "brest", "name": "Pays de Brest", "gaps": 5, "uncovered_hours": 102.0,
         "longest_gap_hours": 53.5, "covered_share": 0.1169},
        {"territory_id": "morlaix", "name": "Pays de Morlaix", "gaps": 6, "uncovered_hours": 115.5,
         "longest_gap_hours": 53.5, "covered_share": 0.0}]
    assert figures["due_minutes"] == {"vital": 60.0, "urgent": 240.0, "scheduled": 2880.0, "teleexpertise": 4320.0}
    # The figures follow the cases: D's report acknowledged now (the case saved again, its facts rebuilt), from its
    # release on Thursday 15 January 20:10 UTC to Tuesday 20 January 09:00 UTC = 4 x 1440 + 770 = 6530 min: the mean
    # of 30, 60 and 6530 is 2206.7.
    _do(demo_ctx, clock, built.d, datetime(2026, 1, 20, 9, 0, tzinfo=UTC), 0, "acknowledge_report", "dr.martin",
        report_read=True, integrated_in_record=True)
    again = compute_indicators(demo_ctx, WEEK)
    assert again["acknowledgement"] == {"acknowledged": 3, "pending": 0, "mean_minutes": 2206.7}
    assert again["requests"] == figures["requests"] and again["turnaround"] == figures["turnaround"]


@pytest.mark.charter("CH-6.3")
def test_CH6_3_the_filters_select_the_cases_by_site_territory_radiologist_urgency_and_modality(demo_ctx, clock):
    build(demo_ctx, clock)

    def total(**chosen):
        return compute_indicators(demo_ctx, IndicatorFilters(WEEK.start, WEEK.end, **chosen))["requests"]["total"]

    assert total(site_id="ch-brest") == 4 and total(site_id="ch-morlaix") == 0
    assert total(territory_id="brest") == 4 and total(territory_id="morlaix") == 0
    assert total(radiologist="dr.morvan") == 1 and total(radiologist="dr.legall") == 3  # B; A, C (refused), D
    assert total(urgency="scheduled") == 2 and total(modality="XR") == 1 and total(modality="CT") == 3
    assert total(urgency="vital", modality="XR") == 0
    # The HL7 errors follow the site filter (the message's site); on-call keeps the site's territory only.
    figures = compute_indicators(demo_ctx, IndicatorFilters(WEEK.start, WEEK.end, site_id="ch-brest"))
    assert figures["technical_incidents"]["hl7_errors"] == 1
    assert [t["territory_id"] for t in figures["oncall"]["territories"]] == ["brest"]
    # The demo's three cases of 5 January are in the week before, not in this one.
    assert compute_indicators(demo_ctx, IndicatorFilters(date(2026, 1, 5), date(2026, 1, 11)))["requests"][
        "total"] == 3


@pytest.mark.charter("CH-6.3", negative=True)
def test_CH6_3_impossible_filters_are_refused_in_french(demo_ctx):
    for filters, message in ((IndicatorFilters(date(2026, 1, 18), date(2026, 1, 12)), "précède"),
                             (IndicatorFilters(date(2020, 1, 1), date(2026, 1, 1)), "deux ans"),
                             (IndicatorFilters(date(1999, 12, 1), date(1999, 12, 2)), "entre 2000 et 2100"),
                             (IndicatorFilters(WEEK.start, WEEK.end, site_id="nowhere"), "Site inconnu"),
                             (IndicatorFilters(WEEK.start, WEEK.end, territory_id="nowhere"), "Territoire inconnu"),
                             (IndicatorFilters(WEEK.start, WEEK.end, radiologist="nobody"), "Radiologue inconnu"),
                             (IndicatorFilters(WEEK.start, WEEK.end, urgency="whenever"), "urgence"),
                             (IndicatorFilters(WEEK.start, WEEK.end, modality="PET"), "Modalité")):
        with pytest.raises(IndicatorError, match=message):
            compute_indicators(demo_ctx, filters)


@pytest.mark.charter("CH-6.3")
def test_CH6_3_the_worker_keeps_the_facts_current_so_a_dashboard_rebuilds_none(demo_ctx, clock):
    built = build(demo_ctx, clock)
    clock.set(datetime(2026, 1, 20, 9, 0, tzinfo=UTC))
    since, until = as_datetime_range(WEEK)
    assert sorted(stale_cases(demo_ctx, since, until)) == sorted([built.a, built.b, built.c, built.d])
    assert refresh_recent_facts(demo_ctx) >= 4  # the scheduler's job (web.ops.scheduler: refresh_indicator_facts)
    assert stale_cases(demo_ctx, since, until) == []
    # D's report acknowledged: only D is stale again, and the next run rebuilds only it.
    _do(demo_ctx, clock, built.d, datetime(2026, 1, 20, 9, 0, tzinfo=UTC), 0, "acknowledge_report", "dr.martin",
        report_read=True, integrated_in_record=True)
    assert stale_cases(demo_ctx, since, until) == [built.d]
    assert refresh_recent_facts(demo_ctx) == 1
    assert stale_cases(demo_ctx, since, until) == []


def test_the_scheduler_runs_the_facts_refresh(demo_ctx):
    scheduler = TimerScheduler(demo_ctx, 3600)
    job = scheduler._scheduler.get_job("refresh_indicator_facts")
    assert job is not None and job.func == scheduler.refresh_indicator_facts
    now = demo_ctx.clock.now()
    window = (now - timedelta(days=700), now + timedelta(days=1))
    assert stale_cases(demo_ctx, *window)  # the demo's cases, never read
    scheduler.refresh_indicator_facts()
    assert stale_cases(demo_ctx, *window) == []
