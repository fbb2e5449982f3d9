"""Demo data for a newcomer: territories, sites, one user per role, conventions and cases at various steps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from engine.domain.actors import Actor
from engine.domain.data_checks import paris_date
from engine.services.accounts import create_user
from engine.services.context import EngineContext
from engine.services.directory import create_site, create_territory, mark_totp_enrolled
from engine.services.instances import start_instance
from engine.services.notification_contacts import DEFAULT_PREFERENCES, update_contact
from engine.services.oncall import add_slot
from engine.services.tasks import complete_task, list_tasks
from web.cli.demo_conventions import create_demo_conventions

DEMO_PASSWORD = "telerad-demo-2026"  # noqa: S105 - printed to the newcomer; demo databases only
DEMO_PHONES = {"dr.martin": "+33298000001", "dr.legall": "+33298000002"}  # fictitious numbers of the demo
DEMO_MAIL_DOMAIN = "telerad.localhost"  # `make run` with a local SMTP sink shows the mails (docs/notifications.md)
SYSTEM = Actor.system()
VALID_UNTIL = {"authorization_expires": date(2030, 12, 31), "insurance_expires": date(2030, 12, 31)}


@dataclass(frozen=True)
class DemoUser:
    username: str
    name: str
    roles: tuple[str, ...]
    sites: tuple[str, ...] = ()
    radiologist: dict[str, Any] | None = None


USERS = (
    DemoUser("dr.martin", "Dr Claire Martin (urgentiste, demandeuse)", ("requester",), ("ch-brest",)),
    DemoUser("merm.leroy", "Paul Leroy (manipulateur)", ("technologist",), ("ch-brest",)),
    DemoUser("dr.legall", "Dr Yann Le Gall (radiologue)", ("radiologist", "tele_expert"), (),
             {"rpps": "10003456786", "territory_id": "brest", **VALID_UNTIL}),
    DemoUser("dr.morvan", "Dr Anne Morvan (radiologue)", ("radiologist",), (),
             {"rpps": "10101010105", "territory_id": "morlaix", **VALID_UNTIL}),
    DemoUser("dr.kerbrat", "Dr Loïc Kerbrat (radiologue de proximité)", ("local_radiologist",), ("ch-morlaix",)),
    DemoUser("dr.guillou", "Dr Marie Guillou (médecin responsable du site)", ("site_lead",), ("ch-brest",)),
    # CH-6.1: every site under an active convention has its medical lead (a convention cannot be activated without).
    DemoUser("dr.riou", "Dr Gwenaëlle Riou (médecin responsable du site)", ("site_lead",), ("ch-morlaix",)),
    DemoUser("dr.abgrall", "Dr Hervé Abgrall (médecin responsable de la clinique)", ("site_lead",),
             ("clinique-landerneau",)),
    DemoUser("designer", "Sophie Tanguy (conceptrice de processus)", ("process_designer",)),
    DemoUser("admin", "Administrateur Telerad", ("administrator",)),
    DemoUser("auditor", "Auditeur", ("auditor",)),
    DemoUser("c.leroux", "Dr Claire Le Roux (chercheuse)", ("researcher",)),  # research exports (CH-8.2)
)


def create_demo(ctx: EngineContext) -> list[dict[str, Any]]:
    """Create the demo directory, accounts and cases; return the accounts with their TOTP secrets."""
    create_territory(ctx, SYSTEM, "brest", "Pays de Brest", "29", "Bretagne")
    create_territory(ctx, SYSTEM, "morlaix", "Pays de Morlaix", "29", "Bretagne", neighbours=("brest",))
    create_site(ctx, SYSTEM, "ch-brest", "CH de Brest (urgences)", "brest")
    create_site(ctx, SYSTEM, "ch-morlaix", "CH de Morlaix", "morlaix")
    create_site(ctx, SYSTEM, "clinique-landerneau", "Clinique de Landerneau", "brest")
    accounts = []
    for user in USERS:
        create_user(ctx, SYSTEM, user.username, user.name, DEMO_PASSWORD, user.roles, user.sites,
                    **(user.radiologist or {}))
        secret = mark_totp_enrolled(ctx, SYSTEM, user.username)
        update_contact(ctx, SYSTEM, user.username, f"{user.username}@{DEMO_MAIL_DOMAIN}",
                       DEMO_PHONES.get(user.username, ""), DEFAULT_PREFERENCES)
        accounts.append({"username": user.username, "password": DEMO_PASSWORD, "totp_secret": secret,
                         "roles": list(user.roles), "sites": list(user.sites), "name": user.name})
    create_demo_conventions(ctx, SYSTEM, ("ch-brest", "ch-morlaix", "clinique-landerneau"))  # complete, active
    _demo_cases(ctx)
    from integrations.dicom.demo import configure_demo_dicom
    from integrations.hl7.demo import configure_demo_hl7

    configure_demo_hl7(ctx)
    configure_demo_dicom(ctx)
    return accounts


DEMO_ON_CALL = ("brest", "dr.legall")  # the demo's on-call radiologist of the Pays de Brest, every night
DEMO_ON_CALL_NIGHTS = 14
NIGHT_STARTS, NIGHT_ENDS = time(18, 30), time(8, 0)  # Paris time


def create_demo_on_call(ctx: EngineContext, now: datetime) -> int:
    """Night on-call slots for the demo (`telerad demo` only: the tests' clock makes its own): from the night
    before `now` for two weeks, so that an urgent request at night reaches the on-call radiologist first and the
    on-call page shows the day-time gaps. Returns how many slots were added."""
    paris = ZoneInfo("Europe/Paris")
    first = now.astimezone(paris).date() - timedelta(days=1)
    territory, username = DEMO_ON_CALL
    for night in range(DEMO_ON_CALL_NIGHTS):
        day = first + timedelta(days=night)
        starts = datetime.combine(day, NIGHT_STARTS, paris)
        ends = datetime.combine(day + timedelta(days=1), NIGHT_ENDS, paris)
        add_slot(ctx, Actor("cli", frozenset({"administrator"})), territory, username, starts, ends)
    return DEMO_ON_CALL_NIGHTS


def create_demo_ct_case(ctx: EngineContext) -> int:
    """A head CT waiting for its images (`telerad demo` only, with the generated CT and its prior of
    integrations.dicom.demo_images): accepted by dr.legall, consent, identity checked, protocol chosen."""
    today = paris_date(ctx.clock.now()).isoformat()
    case_id = int(start_instance(ctx, _actor("dr.martin"), "telediagnosis", {}, site_id="ch-brest",
                                 first_task=demo_request(
        clinical_exam_date=today,
        patient={"birth_name": "Le Roux", "first_names": "Marcel", "birth_date": "1952-04-11", "sex": "M",
                 "identity_status": "qualified", "site_patient_id": "IPP-DEMO-0004"},
        question="Saignement intracrânien ? Évolution depuis le scanner de l'an dernier ?", modality="CT",
        requested_exam="Scanner cérébral sans injection", urgency="urgent",
        clinical_context="Céphalées brutales, antécédent de méningiome suivi.")))
    _complete(ctx, case_id, "accept_case", "dr.legall", {"acceptance": "accept"})
    _complete(ctx, case_id, "inform_patient", "dr.martin", {"patient_informed": True, "consent": "given"})
    _complete(ctx, case_id, "check_identity", "merm.leroy", {
        "identity_checked": True, "identity_status": "qualified", "identity_document": "id_card"})
    _complete(ctx, case_id, "justify", "dr.legall", {"justification": "validate"})
    _complete(ctx, case_id, "choose_protocol", "dr.legall", {"protocol": "ct_head_plain"})
    return case_id


def _actor(username: str) -> Actor:
    user = next(u for u in USERS if u.username == username)
    return Actor(username, frozenset(user.roles), frozenset(user.sites))


# A clinical examination cannot be dated in the future (CH-4.1.1): the demo cases take the day they are created
# (create_demo), other callers this fixed past day (the test clock's).
DEMO_EXAM_DATE = "2026-01-05"


def demo_request(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "patient": {"birth_name": "Kermarrec", "first_names": "Yann", "birth_date": "1948-05-17", "sex": "M",
                    "identity_status": "validated"},
        "clinical_exam_done": True, "clinical_exam_date": DEMO_EXAM_DATE,
        "clinical_context": "Chute de sa hauteur sous anticoagulant, céphalées.",
        "question": "Hématome intracrânien ?", "modality": "CT", "requested_exam": "Scanner cérébral sans injection",
        "urgency": "vital", "pregnancy_status": "not_applicable", "local_radiologist_on_duty": False,
        "callback_phone": "+33 2 98 00 00 01",
    }
    data.update(overrides)
    return data


def _complete(ctx: EngineContext, case_id: int, spec: str, who: str, data: dict[str, Any]) -> None:
    actor = _actor(who)
    task = next(t for t in list_tasks(ctx, actor) if t.instance_id == case_id and t.spec_name == spec)
    complete_task(ctx, actor, task.id, data)


def _demo_cases(ctx: EngineContext) -> None:
    requester = _actor("dr.martin")
    today = paris_date(ctx.clock.now()).isoformat()
    start_instance(ctx, requester, "telediagnosis", {}, site_id="ch-brest",
                   first_task=demo_request(clinical_exam_date=today))
    second = start_instance(ctx, requester, "telediagnosis", {}, site_id="ch-brest", first_task=demo_request(
        clinical_exam_date=today,
        patient={"birth_name": "Le Bihan", "first_names": "Nolwenn", "birth_date": "1979-02-03", "sex": "F",
                 "identity_status": "qualified"},
        question="Embolie pulmonaire ?", requested_exam="Angioscanner thoracique", urgency="urgent",
        pregnancy_status="not_pregnant", clinical_context="Dyspnée brutale, tachycardie."))
    _complete(ctx, second, "accept_case", "dr.legall", {"acceptance": "accept"})
    third = start_instance(ctx, requester, "telediagnosis", {}, site_id="ch-brest", first_task=demo_request(
        clinical_exam_date=today,
        patient={"birth_name": "Quéré", "first_names": "Jean", "birth_date": "1960-09-21", "sex": "M",
                 "identity_status": "qualified"},
        question="Fracture du poignet ?", modality="XR", requested_exam="Radiographie du poignet droit",
        urgency="scheduled", clinical_context="Chute sur la main."))
    _complete(ctx, third, "accept_case", "dr.legall", {"acceptance": "accept"})
    _complete(ctx, third, "inform_patient", "dr.martin", {"patient_informed": True, "consent": "given"})
    _complete(ctx, third, "check_identity", "merm.leroy", {
        "identity_checked": True, "identity_status": "qualified", "identity_document": "id_card"})
    _complete(ctx, third, "justify", "dr.legall", {"justification": "validate"})
    _complete(ctx, third, "choose_protocol", "dr.legall", {"protocol": "xr_limb"})
