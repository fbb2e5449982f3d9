"""The forms' declarations of issue 17, item 1: ``x-context`` (what earlier steps recorded that a task's decision
needs) and ``x-summary`` (what the case history says once the step is done), checked when a schema is loaded
(shape, the form's own fields in the summary) and across forms (context_problems: the forms and fields named)."""

from __future__ import annotations

import json

import pytest

from forms import FormRegistry, default_registry
from forms.registry import UnknownForm, check_schema, context_problems, context_sources, fill_summary


def schema(**extra):
    return {"type": "object", "title": "Essai", "properties": {"decision": {"type": "string"}}, **extra}


def test_every_shipped_form_says_what_happened_and_names_existing_forms_and_fields():
    registry = default_registry()
    for key in registry.keys():  # noqa: SIM118 - FormRegistry.keys() lists the schema files
        assert context_problems(registry, key) == [], key
        assert registry.schema(key).get("x-summary"), f"{key}: the history would only give the step's title"


@pytest.mark.parametrize(("form", "source", "fields"), [
    ("cs_radiologist_check", "cs_requester_check.schema.json", {"renal_function_egfr", "metformin", "allergy_history"}),
    ("cs_injection", "cs_radiologist_check.schema.json", {"premedication"}),
    ("td_acquisition", "cs_radiologist_check.schema.json", {"premedication"}),
    ("bn_confirm", "bn_proposal.schema.json", {"announcement_proposal"}),
    ("te_complete", "te_check.schema.json", {"missing_items", "missing_reason"}),
    ("te_check", "te_complete.schema.json", {"additional_information"}),
    ("td_acknowledge", "td_report.schema.json", {"technique", "findings", "conclusion", "complementary_strategy"}),
])
def test_the_decisions_of_the_walk_through_declare_what_they_need(form, source, fields):
    sources = context_sources(default_registry().schema(f"{form}.schema.json"))
    assert fields <= {f for s in sources if s.form == source for f in s.fields}


def test_the_call_task_names_the_requester_whose_phone_is_shown():
    sources = context_sources(default_registry().schema("td_phone_call.schema.json"))
    assert "requester_id" in {s.contact for s in sources}


@pytest.mark.parametrize("context", [
    "td_request.schema.json", [{"form": "td_request.schema.json"}], [{"form": "td_request.schema.json", "fields": []}],
    [{"contact": "requester_id", "fields": ["x"]}], [{"form": "td_request.schema.json", "fields": [3]}]])
def test_a_malformed_context_is_refused_when_the_schema_is_loaded(context):
    with pytest.raises(UnknownForm, match="x-context"):
        check_schema(schema(**{"x-context": context}))


def test_a_summary_naming_another_forms_field_is_refused():
    check_schema(schema(**{"x-summary": "Décision : {decision} ({by})"}))
    with pytest.raises(UnknownForm, match="x-summary.*protocol"):
        check_schema(schema(**{"x-summary": "Protocole : {protocol}"}))


def test_a_context_naming_an_unknown_form_or_field_is_reported(tmp_path):
    (tmp_path / "essai.json").write_text(json.dumps(schema(**{"x-context": [
        {"form": "absent.schema.json", "fields": ["x"]},
        {"form": "td_request.schema.json", "fields": ["question", "egfr"]}]})), encoding="utf-8")
    registry = FormRegistry([tmp_path, *default_registry()._directories])
    problems = context_problems(registry, "essai.json")
    assert len(problems) == 2
    assert "absent.schema.json" in problems[0] and "egfr" in problems[1]


def test_a_summary_whose_value_is_not_readable_is_not_filled():
    assert fill_summary("Appel : {summary}", {"by": "Dr X"}) is None  # a withheld report field: the title instead
    assert fill_summary("Fait par {by}", {"by": "Dr X"}) == "Fait par Dr X"
