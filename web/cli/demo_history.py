"""`telerad demo`: finished telediagnoses of the past weeks at the demo site (CH de Brest), so that the quality
indicators (/admin/indicators) have something to show. Each case goes through the engine's use cases like a real
one (request, acceptance, consent, identity, justification, protocol, acquisition, signed report, release,
acknowledgement), on a clock set back to the moment of each step: the steps of all the cases run in the order of
their moments, with the due timers fired when an acceptance waits past its tier's delay. Urgency levels,
modalities and delays vary (a fixed seed: every demo has the same history); some cases take a detour: a request
completed after a question, a case offered to the next tier, a refusal, an urgent finding telephoned, an
announcement procedure.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyotp

from engine.domain.actors import Actor
from engine.ports import FakeClock
from engine.services.bootstrap import build_context
from engine.services.context import EngineContext
from engine.services.instances import start_instance
from engine.services.tasks import complete_task, list_tasks
from engine.services.timers import fire_due_timers
from web.cli.demo_data import USERS, demo_request

HISTORY_DAYS = 42
HISTORY_CASES = 24
SEED = 19
SITE = "ch-brest"
PARIS = ZoneInfo("Europe/Paris")
PATIENTS = (("Le Floch", "Annaïg", "1957-03-14", "F"), ("Cloarec", "Erwan", "1969-11-02", "M"),
            ("Salaün", "Maïwenn", "1988-06-25", "F"), ("Tanguy", "Hervé", "1944-01-30", "M"),
            ("Le Goff", "Soizic", "1975-08-09", "F"), ("Pichon", "Gaël", "1991-12-17", "M"))
EXAMS = {"CT": ("Scanner cérébral sans injection", "ct_head_plain"), "XR": ("Radiographie du poignet", "xr_limb")}
# Minutes each step takes after the previous one, by urgency: (acceptance, report) ranges.
PACE = {"vital": ((2, 12), (10, 70)), "urgent": ((4, 14), (30, 320)), "scheduled": ((5, 14), (240, 3600))}


@dataclass
class _Case:
    start: datetime
    urgency: str
    modality: str
    patient: tuple[str, str, str, str]
    steps: list[tuple[datetime, str, str, dict[str, Any]]] = field(default_factory=list)  # (when, task, who, data)
    case_id: int | None = None


def _actors() -> dict[str, Actor]:
    return {u.username: Actor(u.username, frozenset(u.roles), frozenset(u.sites)) for u in USERS}


def _plan(rng: random.Random, start: datetime) -> _Case:
    urgency = rng.choices(("vital", "urgent", "scheduled"), (3, 4, 3))[0]
    modality = "XR" if urgency == "scheduled" and rng.random() < 0.6 else "CT"
    case = _Case(start, urgency, modality, rng.choice(PATIENTS))
    at = start
    radiologist = "dr.legall"

    def step(minutes: float, spec: str, who: str, **data: Any) -> None:
        nonlocal at
        at += timedelta(minutes=minutes)
        case.steps.append((at, spec, who, data))

    accept, report = PACE[urgency]
    if rng.random() < 0.2:  # nobody at tier 1 within its delay: the case goes to the neighbouring territory
        step(16, "#timers", "system")
        radiologist = "dr.morvan"
    step(rng.uniform(*accept), "accept_case", radiologist, acceptance="accept")
    step(rng.uniform(2, 8), "inform_patient", "dr.martin", patient_informed=True, consent="given")
    step(rng.uniform(2, 8), "check_identity", "merm.leroy", identity_checked=True, identity_status="qualified",
         identity_document="id_card")
    if rng.random() < 0.15:  # a question to the requester before the justification
        step(rng.uniform(2, 10), "justify", radiologist, justification="more_info",
             question_to_requester="Créatininémie récente et traitement anticoagulant ?")
        step(rng.uniform(5, 40), "provide_information", "dr.martin",
             information="Créatinine normale la semaine dernière, pas d'anticoagulant.")
    step(rng.uniform(2, 10), "justify", radiologist, justification="validate")
    step(rng.uniform(1, 5), "choose_protocol", radiologist, protocol=EXAMS[modality][1])
    step(rng.uniform(10, 45), "acquire_images", "merm.leroy", images_sent=True, protocol_followed=True,
         technical_difficulty=False)
    if rng.random() < 0.08:  # images not good enough: motivated refusal, fallback procedure of the convention
        step(rng.uniform(*report), "interpret", radiologist, outcome="refuse", signature_code="")
        step(rng.uniform(2, 10), "state_refusal", radiologist, refusal_reason="insufficient_quality",
             refusal_detail="Artéfacts de mouvement rendant l'examen ininterprétable.",
             refusal_follow_up="convention_fallback")
        step(rng.uniform(10, 60), "apply_fallback", "dr.martin",
             fallback_applied="Patient adressé au CHU de Brest selon la convention.")
        return case
    urgent = urgency != "scheduled" and rng.random() < 0.25
    poor = not urgent and rng.random() < 0.1
    step(rng.uniform(*report) * (2.5 if rng.random() < 0.12 else 1), "interpret", radiologist, outcome="report",
         technique="Acquisition standard.", findings="Voir conclusion.",
         conclusion="Hématome sous-dural aigu." if urgent else "Pas d'anomalie significative.",
         certainty="certain", urgent_finding=urgent, poor_prognosis=poor, signature_code="")
    if urgent:
        step(rng.uniform(2, 8), "record_phone_call", radiologist, caller="Dr Le Gall", callee="Dr Martin",
             called_at="", summary="Hématome sous-dural aigu annoncé au demandeur, avis neurochirurgical.")
    if poor:
        step(rng.uniform(5, 30), "propose_announcement", radiologist,
             announcement_proposal="Consultation d'annonce avec le médecin traitant et le radiologue.")
        step(rng.uniform(20, 240), "confirm_announcement_plan", "dr.martin", plan_confirmed=True,
             announcer="Dr Martin", planned_at="")
    step(rng.uniform(10, 720), "acknowledge_report", "dr.martin", report_read=True, integrated_in_record=True)
    return case


def add_demo_history(ctx: EngineContext, accounts: list[dict[str, Any]], database_url: str,
                     cases: int = HISTORY_CASES) -> int:
    """Walk `cases` past telediagnoses of the demo site through the engine; returns how many were created."""
    now = ctx.clock.now()
    rng = random.Random(SEED)  # noqa: S311 - demo data, the same every time
    first = now - timedelta(days=HISTORY_DAYS)
    starts = sorted(first + timedelta(minutes=rng.uniform(0, (HISTORY_DAYS - 3) * 1440)) for _ in range(cases))
    plans = [_plan(rng, start) for start in starts]
    clock = FakeClock(first)
    history = build_context(database_url, clock=clock, keys=ctx.keys)
    secrets = {account["username"]: account["totp_secret"] for account in accounts}
    actors = _actors()
    moments = sorted([(plan.start, index, -1) for index, plan in enumerate(plans)]
                     + [(step[0], index, n) for index, plan in enumerate(plans) for n, step in enumerate(plan.steps)])
    last_signed: dict[str, datetime] = {}
    try:
        for when, index, n in moments:
            plan = plans[index]
            clock.set(max(when, clock.now()))
            if n < 0:
                exam = EXAMS[plan.modality][0]
                birth_name, first_names, birth_date, sex = plan.patient
                plan.case_id = int(start_instance(history, actors["dr.martin"], "telediagnosis", {}, site_id=SITE,
                                                  first_task=demo_request(
                    clinical_exam_date=clock.now().date().isoformat(), urgency=plan.urgency,
                    modality=plan.modality, requested_exam=exam,
                    pregnancy_status="not_pregnant" if sex == "F" else "not_applicable",
                    patient={"birth_name": birth_name, "first_names": first_names, "birth_date": birth_date,
                             "sex": sex, "identity_status": "qualified"})))
                continue
            _, spec, who, data = plan.steps[n]
            if spec in ("#timers", "interpret"):  # what the scheduler did meanwhile (a late report is flagged)
                fire_due_timers(history, clock.now())
            if spec == "#timers":
                continue
            data = dict(data)
            if "signature_code" in data:
                # One code per 30-second step and per account: a later step than the account's last one.
                if who in last_signed and clock.now() - last_signed[who] < timedelta(seconds=61):
                    clock.set(last_signed[who] + timedelta(seconds=61))
                last_signed[who] = clock.now()
                data["signature_code"] = pyotp.TOTP(secrets[who]).at(clock.now())
            if "called_at" in data:
                data["called_at"] = clock.now().astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")
            if "planned_at" in data:
                data["planned_at"] = (clock.now() + timedelta(days=2)).astimezone(PARIS).strftime("%Y-%m-%dT10:00")
            actor = actors[who]
            task = next((t for t in list_tasks(history, actor)
                         if t.instance_id == plan.case_id and t.spec_name == spec), None)
            if task is None:
                raise RuntimeError(f"demo history: no task {spec} for {who} on case {plan.case_id} at {when}")
            complete_task(history, actor, task.id, data)
    finally:
        history.engine.dispose()
    return len(plans)
