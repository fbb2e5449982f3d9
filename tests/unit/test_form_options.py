"""Fields whose choices come from the case (``x-options``): the protocol of the radiologist's form is drawn from the
catalogue (CH-4.1.9) and contrast is no separate tick any more, it follows from the protocol (CH-4.1.10)."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict
from wtforms import Form
from wtforms.fields import SelectField

from engine.domain.protocols import DEFAULT_CATALOGUE, final_modality
from forms import FormRegistry, FormValidationError
from forms.registry import UnknownForm, check_schema, option_fields, with_options
from forms.wtforms_builder import EMPTY_CHOICE_LABEL, build_form_class, form_data_to_json, prefill, set_choices

REGISTRY = FormRegistry()
PROTOCOL_FORM = "td_protocol.schema.json"
CHOICES = [("ct_head_plain", "Scanner cérébral sans injection"),
           ("ct_head_contrast", "Scanner cérébral avec injection — injection : produit de contraste iodé")]


@pytest.mark.charter("CH-4.1.9")
def test_the_protocol_field_names_its_option_source_and_has_no_static_list():
    schema = REGISTRY.schema(PROTOCOL_FORM)
    assert option_fields(schema) == {"protocol": "protocols"}
    assert "enum" not in schema["properties"]["protocol"]


@pytest.mark.charter("CH-4.1.10", negative=True)
def test_contrast_is_no_tick_box_a_submitted_contrast_field_is_refused():
    assert "contrast" not in REGISTRY.schema(PROTOCOL_FORM)["properties"]
    with pytest.raises(FormValidationError) as refused:
        REGISTRY.validate(PROTOCOL_FORM, {"protocol": "ct_head_contrast", "contrast": False})
    assert refused.value.errors == {"_form": "Champ inconnu dans ce formulaire."}
    REGISTRY.validate(PROTOCOL_FORM, {"protocol": "ct_head_contrast", "instructions": "Voie veineuse 18G"})


@pytest.mark.charter("CH-4.1.10")
def test_contrast_follows_from_the_chosen_protocol():
    assert DEFAULT_CATALOGUE.get("ct_head_contrast").contrast is True
    assert DEFAULT_CATALOGUE.get("ct_head_contrast").as_dict()["agent_class"] == "iodine"
    assert DEFAULT_CATALOGUE.get("mr_brain_gadolinium").contrast is True
    assert DEFAULT_CATALOGUE.get("ct_head_plain").contrast is False
    assert DEFAULT_CATALOGUE.get("ct_head_plain").ionizing and not DEFAULT_CATALOGUE.get("mr_brain").ionizing


def test_the_justification_may_name_the_modality_of_a_modified_exam():
    schema = REGISTRY.schema("td_justify.schema.json")
    assert schema["properties"]["modified_modality"]["x-labels"]["MR"] == "IRM"
    REGISTRY.validate("td_justify.schema.json", {"justification": "modify", "modified_exam": "IRM cérébrale",
                                                 "modified_modality": "MR"})
    with pytest.raises(FormValidationError) as refused:
        REGISTRY.validate("td_justify.schema.json", {"justification": "modify", "modified_exam": "IRM",
                                                     "modified_modality": "IRM"})
    assert refused.value.errors == {"modified_modality": "Choisissez une des valeurs proposées."}


@pytest.mark.parametrize(("case", "expected"), [
    ({"modality": "CT"}, "CT"),
    ({"modality": "CT", "justification": "substitute", "substitute_modality": "MR"}, "MR"),
    ({"modality": "CT", "justification": "modify", "modified_modality": "us"}, "US"),
    ({"modality": "CT", "justification": "modify", "modified_exam": "Scanner injecté"}, "CT"),
    ({"modality": "CT", "justification": "validate", "substitute_modality": "MR"}, "CT"),
    ({"modality": "pet"}, "PT"),
    ({}, None),
    ({"modality": "ZZ"}, None),
])
def test_the_final_modality(case, expected):
    assert final_modality(case) == expected


def test_with_options_lists_the_choices_for_a_client_and_keeps_the_stored_schema():
    schema = REGISTRY.schema(PROTOCOL_FORM)
    shown = with_options(schema, {"protocol": CHOICES})
    assert shown["properties"]["protocol"]["enum"] == ["ct_head_plain", "ct_head_contrast"]
    assert shown["properties"]["protocol"]["x-labels"]["ct_head_plain"] == "Scanner cérébral sans injection"
    assert "enum" not in REGISTRY.schema(PROTOCOL_FORM)["properties"]["protocol"]


@pytest.mark.parametrize("prop", [{"type": "string", "x-options": "patients"}, {"type": "integer", "x-options":
                                                                                 "protocols"}])
def test_an_unknown_option_source_is_refused(prop):
    with pytest.raises(UnknownForm, match="x-options"):
        check_schema({"type": "object", "properties": {"nested": {"type": "object", "properties": {"p": prop}}}})


def test_the_select_shows_the_case_choices_and_gives_the_chosen_id():
    form_class = build_form_class(REGISTRY.schema(PROTOCOL_FORM), base=Form)
    form = prefill(form_class, {"protocol": "ct_head_contrast"})
    assert isinstance(form.protocol, SelectField)
    set_choices(form, {"protocol": CHOICES})
    html = form.protocol()
    assert EMPTY_CHOICE_LABEL in html and 'selected value="ct_head_contrast"' in html
    assert "produit de contraste iodé" in html
    posted = form_class(formdata=MultiDict({"protocol": "ct_head_plain", "instructions": ""}))
    set_choices(posted, {"protocol": CHOICES})
    assert form_data_to_json(posted, REGISTRY.schema(PROTOCOL_FORM)) == {"protocol": "ct_head_plain"}
    assert form_data_to_json(form_class(formdata=MultiDict({"protocol": ""})), REGISTRY.schema(PROTOCOL_FORM)) == {}
