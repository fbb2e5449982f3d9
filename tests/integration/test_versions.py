"""Definitions are immutable versions: new cases use the newest, running cases finish on theirs (CH-9.1)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.runtime import bundles_from_library
from engine.services.definitions import deploy_definition
from engine.services.instances import start_instance
from engine.services.tasks import complete_task
from engine.store.models import ProcessDefinition, ProcessInstance
from tests.conftest import DATA
from tests.integration.test_engine_services import REQUESTER

DESIGNER = Actor("designer")


def library(title: str = "Submit the request") -> dict[str, str]:
    files = {p.name: p.read_text(encoding="utf-8") for p in (DATA / "bpmn").glob("engine_*.bpmn")}
    files["engine_flow.bpmn"] = files["engine_flow.bpmn"].replace('name="Submit the request"', f'name="{title}"')
    return files


@pytest.mark.charter("CH-9.1")
def test_CH9_1_new_version_for_new_cases_running_cases_stay_on_theirs(ctx):
    (v1,) = bundles_from_library(library())
    first = deploy_definition(ctx, DESIGNER, v1)
    assert (first.version, first.created) == (1, True)
    assert deploy_definition(ctx, DESIGNER, v1).created is False  # same content: same version
    old_case = start_instance(ctx, REQUESTER, "engine_flow", {}, site_id="site-a")

    (v2,) = bundles_from_library(library("Soumettre la demande"))
    second = deploy_definition(ctx, DESIGNER, v2)
    assert second.version == 2
    new_case = start_instance(ctx, REQUESTER, "engine_flow", {}, site_id="site-a")

    titles = {t.instance_id: t.title for t in [only_task_of(ctx, old_case), only_task_of(ctx, new_case)]}
    assert titles == {old_case: "Submit the request", new_case: "Soumettre la demande"}
    with ctx.read() as session:
        versions = dict(session.execute(
            select(ProcessInstance.id, ProcessDefinition.version).join(ProcessDefinition)).all())
    assert versions == {old_case: 1, new_case: 2}
    ctx.live_cache.clear()  # the old case reloads from its own definition, not the newest
    complete_task(ctx, REQUESTER, only_task_of(ctx, old_case).id,
                  {"accepted": False, "urgency": "scheduled", "accession_number": "A-9"})
    with ctx.read() as session:
        assert session.get(ProcessInstance, old_case).status == "completed"


def only_task_of(ctx, instance_id):
    from engine.services.tasks import list_tasks

    (task,) = [t for t in list_tasks(ctx, REQUESTER) if t.instance_id == instance_id]
    return task


