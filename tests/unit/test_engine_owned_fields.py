"""A form cannot declare, and a task completion cannot write, the case data the engine's operations write (the
offer's pack and tier, the release, the radiologist's profile...): a designer's form that would let a user forge
them is refused, and every shipped form refuses undeclared fields."""

from __future__ import annotations

import json
import re

import pytest

from engine.domain.engine_fields import ENGINE_OWNED_FIELDS
from engine.services.designer import FormRefused, check_form_schema
from web.config import PROJECT_ROOT

RESULT_VARIABLE = re.compile(r'resultVariable="([^"]+)"')


def test_the_reserved_names_are_exactly_the_shipped_operations_result_variables():
    written = {name for path in (PROJECT_ROOT / "workflows" / "bpmn").glob("*.bpmn")
               for name in RESULT_VARIABLE.findall(path.read_text(encoding="utf-8"))}
    assert written == ENGINE_OWNED_FIELDS


@pytest.mark.parametrize("path", sorted((PROJECT_ROOT / "forms" / "schemas").glob("*.schema.json")),
                         ids=lambda path: path.name)
def test_every_shipped_form_refuses_undeclared_fields_and_declares_no_engine_field(path):
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema.get("additionalProperties") is False
    assert not set(schema["properties"]) & ENGINE_OWNED_FIELDS
    assert check_form_schema(path.read_text(encoding="utf-8")) == schema


def test_a_designer_form_that_would_let_a_user_write_the_offer_is_refused():
    base = {"type": "object", "additionalProperties": False, "properties": {"note": {"type": "string"}}}
    assert check_form_schema(json.dumps(base)) == base
    open_form = {key: value for key, value in base.items() if key != "additionalProperties"}
    with pytest.raises(FormRefused, match="additionalProperties"):
        check_form_schema(json.dumps(open_form))
    with pytest.raises(FormRefused, match="additionalProperties"):
        check_form_schema(json.dumps({**base, "additionalProperties": True}))
    forged = {**base, "properties": {**base["properties"], "offer": {"type": "object"}}}
    with pytest.raises(FormRefused, match="offer"):
        check_form_schema(json.dumps(forged))
    # a pattern would let undeclared names through additionalProperties: false
    patterned = {**base, "patternProperties": {"^(offer|release)$": {}}}
    with pytest.raises(FormRefused, match="patternProperties"):
        check_form_schema(json.dumps(patterned))
