"""A direct service call cannot write the case data only the engine writes (engine.domain.engine_fields), whatever
the step's form accepts: a step without a form, or a form that does not name the field, refuses it; a field a form
names (test forms only: neither a shipped form nor a designer's may) is an ordinary answer."""

from __future__ import annotations

import pytest

from engine.domain.actors import Actor
from engine.services.definitions import deploy_library
from engine.services.instances import start_instance
from engine.services.tasks import complete_task, list_tasks
from engine.store.models import Task
from forms import FormValidationError
from tests.conftest import DATA

REQUESTER = Actor("dr.a", frozenset({"requester", "radiologist"}), frozenset({"site-a"}))


@pytest.fixture
def deployed(ctx):
    deploy_library(ctx, Actor("designer"), DATA / "bpmn")
    return ctx


def _open(ctx, case_id, spec_name=None):
    return next(t for t in list_tasks(ctx, REQUESTER)
                if t.instance_id == case_id and (spec_name is None or t.spec_name == spec_name))


def test_a_step_without_the_field_in_its_form_refuses_engine_owned_data(deployed):
    ctx = deployed
    case_id = start_instance(ctx, REQUESTER, "engine_flow", {}, site_id="site-a")
    submit = _open(ctx, case_id)
    # the test form names accession_number: an ordinary answer there
    complete_task(ctx, REQUESTER, submit.id, {"accepted": True, "urgency": "urgent", "accession_number": "ACC-1"})
    review = _open(ctx, case_id, "review")
    for forged in ({"offer": {"pack": "2020", "tier": 1}}, {"release": {"released_at": "2026-01-01"}},
                   {"accession_number": "ACC-OTHER"}):
        with pytest.raises(FormValidationError) as refused:
            complete_task(ctx, REQUESTER, review.id, forged)
        assert set(refused.value.errors) == set(forged)
    with ctx.read() as session:
        assert session.get(Task, review.id).status == "open"
    complete_task(ctx, REQUESTER, review.id, {})


def test_a_designer_form_stored_before_the_check_cannot_let_the_offer_in(ctx, clock):
    """A designer's form kept in the database that declares `offer` (saved before designer.check_form_schema
    refused it) gives no way in: only a schema file may name an engine-owned field."""
    import json

    from engine.services.task_checks import check_engine_owned
    from engine.store.designer_models import FormSchemaRow

    legacy = {"type": "object", "properties": {"note": {"type": "string"}, "offer": {"type": "object"}}}
    with ctx.write() as session:
        session.add(FormSchemaRow(key="legacy_review.v2.schema.json", schema=json.dumps(legacy), based_on=None,
                                  created_by="designer", created_at=clock.now()))
        session.commit()
    assert ctx.forms.exists("legacy_review.v2.schema.json") and not ctx.forms.is_file("legacy_review.v2.schema.json")
    with pytest.raises(FormValidationError) as refused:
        check_engine_owned(ctx, "legacy_review.v2.schema.json", {"note": "x", "offer": {"pack": "2020"}})
    assert set(refused.value.errors) == {"offer"}
    check_engine_owned(ctx, "legacy_review.v2.schema.json", {"note": "x"})
    check_engine_owned(ctx, "test_submit.schema.json", {"accession_number": "ACC-1"})  # a schema file names it
