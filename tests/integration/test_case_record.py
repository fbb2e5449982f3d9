"""What each step recorded, through the services (issue 17, item 1): the case record gives every completed step its
own values (a step done twice keeps both answers), the task context only reaches those who may open the task, and a
poor-prognosis report awaiting its announcement stays out of both for everyone but its readers (CH-4.1.13)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.errors import Conflict, NotFound
from engine.services.cases import case_record
from engine.services.task_context import task_context
from engine.store.models import Task
from tests import demo_app
from tests.demo_app import open_task
from tests.integration.dicom_support import DEMO_ACTORS, complete_step
from tests.integration.test_bad_news_visibility import CONCLUSION, FINDINGS, REPORT

try:  # the report's signature (issue 17, item 5)
    from tests.signing import signed
except ImportError:  # pragma: no cover - before the signature exists
    def signed(ctx, username, data):  # type: ignore[no-redef]
        return data

demo_ctx = demo_app.demo_ctx  # the demo directory, accounts and cases (fixture)
QUESTION = "Quelle est la créatinine du jour ?"


def open_case(ctx, spec: str) -> int:
    with ctx.read() as session:
        return session.execute(select(Task.instance_id).where(Task.spec_name == spec, Task.status == "open")
                               .order_by(Task.instance_id)).scalars().first()


def shown(steps, spec: str) -> list[dict[str, object]]:
    return [{f.label: f.value for f in step.fields} for step in steps if step.completion.spec_name == spec]


def test_a_step_done_twice_keeps_each_answer_with_who_and_when(demo_ctx):
    case_id = open_case(demo_ctx, "accept_case")
    complete_step(demo_ctx, case_id, "accept_case", "dr.legall", {"acceptance": "accept"})
    complete_step(demo_ctx, case_id, "inform_patient", "dr.martin", {"patient_informed": True, "consent": "given"})
    complete_step(demo_ctx, case_id, "check_identity", "merm.leroy", {
        "identity_checked": True, "identity_status": "qualified", "identity_document": "id_card"})
    complete_step(demo_ctx, case_id, "justify", "dr.legall", {"justification": "more_info",
                                                              "question_to_requester": QUESTION})
    context = task_context(demo_ctx, DEMO_ACTORS["dr.martin"], open_task(demo_ctx, case_id, "provide_information"))
    assert [(g.title, g.by_name) for g in context] == [
        ("Justifier l'examen (valider l'indication)", "Dr Yann Le Gall (radiologue)")]
    assert {f.label: f.value for f in context[0].fields} == {"Informations demandées": QUESTION}
    complete_step(demo_ctx, case_id, "provide_information", "dr.martin", {"information": "Créatinine 80 µmol/L."})
    complete_step(demo_ctx, case_id, "justify", "dr.legall", {"justification": "validate"})
    steps = case_record(demo_ctx, DEMO_ACTORS["dr.martin"], case_id).steps
    assert shown(steps, "justify") == [
        {"Décision": "Demander des informations au demandeur", "Informations demandées": QUESTION},
        {"Décision": "Valider l'indication"}]
    assert shown(steps, "provide_information") == [{"Réponse au radiologue": "Créatinine 80 µmol/L."}]
    request = shown(steps, "request")[0]
    assert request["Patient — Sexe"] == "Masculin" and request["Urgence"] == "Urgence vitale"
    assert request["Un radiologue du site est de garde"] is False
    assert all(step.completion.by_name and step.completion.at for step in steps)


@pytest.mark.charter("CH-5.3", negative=True)
def test_the_context_of_a_task_reaches_only_who_may_open_it(demo_ctx):
    case_id = open_case(demo_ctx, "acquire_images")
    task_id = open_task(demo_ctx, case_id, "acquire_images")
    assert task_context(demo_ctx, DEMO_ACTORS["merm.leroy"], task_id)  # the protocol chosen, by dr.legall
    with pytest.raises(NotFound):
        task_context(demo_ctx, DEMO_ACTORS["dr.kerbrat"], task_id)  # another site's radiologist
    with pytest.raises((NotFound, Conflict)):
        task_context(demo_ctx, DEMO_ACTORS["dr.morvan"], task_id)


@pytest.mark.charter("CH-4.1.13", negative=True)
def test_the_recorded_steps_withhold_a_poor_prognosis_report_until_the_announcement(demo_ctx):
    case_id = open_case(demo_ctx, "acquire_images")
    complete_step(demo_ctx, case_id, "acquire_images", "merm.leroy", {
        "images_sent": True, "protocol_followed": True, "technical_difficulty": False})
    complete_step(demo_ctx, case_id, "interpret", "dr.legall", signed(demo_ctx, "dr.legall", REPORT))
    for who in ("merm.leroy", "dr.guillou"):
        record = case_record(demo_ctx, DEMO_ACTORS[who], case_id)
        assert CONCLUSION not in repr(record.steps) and FINDINGS not in repr(record.steps)
        assert CONCLUSION not in repr(record.timeline)
    record = case_record(demo_ctx, DEMO_ACTORS["dr.martin"], case_id)
    assert CONCLUSION in repr(record.steps) and FINDINGS in repr(record.steps)
