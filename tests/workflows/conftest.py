"""Fixtures for the charter diagrams: a small territory, a site, radiologists, and a case driver."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.domain.credentials import RadiologistCredentials
from engine.domain.routing import Convention, Radiologist, Site, Territory
from engine.ports import InMemoryDirectory
from engine.services.bootstrap import default_operations
from engine.services.definitions import deploy_library
from engine.services.instances import case_data, start_instance
from engine.services.tasks import complete_task, list_tasks
from engine.store.models import ProcessInstance, Task
from forms import default_registry
from web.config import PROJECT_ROOT

WORKFLOWS = PROJECT_ROOT / "workflows" / "bpmn"
VALID = RadiologistCredentials("10003456786", date(2030, 1, 1), date(2030, 1, 1))

TERRITORIES = [
    Territory("brest", "Brest", "29", "BRE", frozenset({"morlaix"})),
    Territory("morlaix", "Morlaix", "29", "BRE", frozenset({"brest"})),
    Territory("vannes", "Vannes", "56", "BRE"),
]
SITE = Site("ch-brest", "CH de Brest", "brest")
RADIOLOGISTS = [
    Radiologist("rad.local", "Dr Le Gall", "brest", VALID),
    Radiologist("rad.neighbour", "Dr Morvan", "morlaix", VALID),
    Radiologist("rad.region", "Dr Guillou", "vannes", VALID),
    Radiologist("rad.expired", "Dr Expiré", "brest",
                RadiologistCredentials("10003456786", date(2030, 1, 1), date(2025, 12, 31))),
    Radiologist("rad.abroad", "Dr Abroad", "brest",
                RadiologistCredentials(None, date(2030, 1, 1), date(2030, 1, 1), extraterritorial=True)),
    Radiologist("rad.abroad.ok", "Dr Abroad OK", "morlaix",
                RadiologistCredentials(None, date(2030, 1, 1), date(2030, 1, 1), extraterritorial=True,
                                       foreign_authorization_on_file=True, foreign_insurance_on_file=True)),
    Radiologist("rad.company", "Dr Société", None, VALID, external_company="TéléRadio SAS"),
]
CONVENTION = Convention("ch-brest", frozenset(r.user_id for r in RADIOLOGISTS), True, True, True,
                        external_allowed=True)

REQUESTER = Actor("dr.requester", frozenset({"requester"}), frozenset({"ch-brest"}))
TECHNOLOGIST = Actor("merm.tech", frozenset({"technologist"}), frozenset({"ch-brest"}))
LOCAL_RADIOLOGIST = Actor("dr.local", frozenset({"local_radiologist"}), frozenset({"ch-brest"}))
SITE_LEAD = Actor("dr.lead", frozenset({"site_lead"}), frozenset({"ch-brest"}))


def radiologist(user_id: str) -> Actor:
    return Actor(user_id, frozenset({"radiologist", "tele_expert"}), frozenset())


@pytest.fixture
def directory() -> InMemoryDirectory:
    return InMemoryDirectory([SITE], TERRITORIES, [CONVENTION], RADIOLOGISTS)


@pytest.fixture
def charter_ctx(make_ctx, directory, clock):
    ctx = make_ctx(operations=default_operations(directory, clock), forms=default_registry(), escalation=None,
                   directory=directory)
    deploy_library(ctx, Actor("designer"), WORKFLOWS)
    return ctx


@dataclass
class Case:
    ctx: Any
    id: int

    def open_tasks(self) -> list[str]:
        with self.ctx.read() as session:
            return sorted(session.execute(select(Task.spec_name).where(
                Task.instance_id == self.id, Task.status == "open")).scalars())

    def task_id(self, spec_name: str, actor: Actor) -> str:
        mine = [t for t in list_tasks(self.ctx, actor) if t.instance_id == self.id and t.spec_name == spec_name]
        assert mine, f"{actor.user_id} has no '{spec_name}' task; open tasks: {self.open_tasks()}"
        return mine[0].id

    def complete(self, spec_name: str, actor: Actor, **data: Any) -> None:
        complete_task(self.ctx, actor, self.task_id(spec_name, actor), data)

    @property
    def data(self) -> dict[str, Any]:
        return case_data(self.ctx, self.id)

    @property
    def status(self) -> str:
        with self.ctx.read() as session:
            return session.get(ProcessInstance, self.id).status


def request_form(**overrides: Any) -> dict[str, Any]:
    data = {
        "patient": {"birth_name": "KERMARREC", "first_names": "Yann", "birth_date": "1950-03-02", "sex": "M",
                    "identity_status": "qualified", "ins": "150032912345688"},
        "clinical_exam_done": True, "clinical_exam_date": "2026-01-05",
        "clinical_context": "Chute sous anticoagulants, céphalées", "question": "Hématome intracrânien ?",
        "modality": "CT", "requested_exam": "Scanner cérébral sans injection", "urgency": "scheduled",
        "pregnancy_status": "not_applicable", "local_radiologist_on_duty": False,
        "callback_phone": "02 98 00 00 01",
    }
    data.update(overrides)
    return data


@pytest.fixture
def new_case(charter_ctx):
    def start(process: str = "telediagnosis", **request: Any) -> Case:
        case = Case(charter_ctx, start_instance(charter_ctx, REQUESTER, process, {}, site_id="ch-brest"))
        if process == "telediagnosis":
            case.complete("request", REQUESTER, **request_form(**request))
        return case

    return start


def accept(case: Case, who: str = "rad.local") -> Actor:
    actor = radiologist(who)
    case.complete("accept_case", actor, acceptance="accept")
    return actor


def consent_and_identity(case: Case) -> None:
    case.complete("inform_patient", REQUESTER, patient_informed=True, consent="given")
    case.complete("check_identity", TECHNOLOGIST, identity_checked=True, identity_status="qualified",
                  identity_document="id_card", ins_checked=True)
