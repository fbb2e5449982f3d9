"""Task forms rendered through WTForms: JSON Schema -> form class -> typed task data, validated by jsonschema."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest
from flask import Flask, render_template_string
from flask_babel import Babel
from werkzeug.datastructures import MultiDict
from wtforms import Form
from wtforms.fields import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    FloatField,
    FormField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)

from forms import FormRegistry, FormValidationError
from forms.wtforms_builder import (
    EMPTY_CHOICE_LABEL,
    UNSET_RADIO_LABEL,
    UnsupportedSchema,
    build_form_class,
    form_data_to_json,
    json_errors_to_form,
    prefill,
)

ROOT = Path(__file__).parents[2]
REGISTRY = FormRegistry()
TD_REQUEST = "td_request.schema.json"
RENDER = '{% from "_form_macros.html" import render_task_form %}{{ render_task_form(form, "/tasks/1", "Envoyer") }}'

TYPICAL = {
    "patient-birth_name": "DUPONT",
    "patient-used_name": "",
    "patient-first_names": "Jeanne Marie",
    "patient-birth_date": "1941-03-12",
    "patient-sex": "F",
    "patient-birth_place_code": "",
    "patient-ins": "",
    "patient-identity_status": "qualified",
    "clinical_exam_done": "y",
    "clinical_exam_date": "2024-11-03",
    "clinical_context": "Chute sous anticoagulants, céphalées.\r\nGCS 14.",
    "question": "Hématome intracrânien ?",
    "history": "",
    "paraclinical": "",
    "prior_exams": "",
    "modality": "CT",
    "requested_exam": "Scanner cérébral sans injection",
    "urgency": "vital",
    "pregnancy_status": "not_applicable",
    "teleradiology_reason": "",
    "callback_phone": "02 98 00 00 01",
}


def make_app(csrf: bool = False) -> Flask:
    app = Flask(__name__, template_folder=str(ROOT / "web" / "templates"))
    app.config.update(SECRET_KEY="test", WTF_CSRF_ENABLED=csrf)
    Babel(app)  # the macros translate their own messages, as in the application
    return app


@pytest.fixture
def app() -> Flask:
    return make_app()


@pytest.fixture
def request_ctx(app):
    with app.test_request_context("/tasks/1", method="POST"):
        yield


def submit(key: str, values: dict[str, str]):
    schema = REGISTRY.schema(key)
    form = prefill(build_form_class(schema), {}, MultiDict(values))
    return form, form_data_to_json(form, schema)


def render(form) -> str:
    return render_template_string(RENDER, form=form)


def validation_errors(key: str, data: dict) -> dict[str, str]:
    with pytest.raises(FormValidationError) as caught:
        REGISTRY.validate(key, data)
    return caught.value.errors


@pytest.mark.parametrize("key", REGISTRY.keys())
def test_every_schema_builds_instantiates_and_renders(key, request_ctx):
    schema = REGISTRY.schema(key)
    form = build_form_class(schema)()
    assert [f.name for f in form] == list(schema["properties"])
    html = render(form)
    for prop in schema["properties"].values():
        assert prop["title"].replace("'", "&#39;") in html
    assert "<script" not in html and "style=" not in html


def test_fields_follow_the_schema_types(request_ctx):
    form = build_form_class(REGISTRY.schema(TD_REQUEST))()
    expected = {"patient": FormField, "clinical_exam_done": BooleanField, "clinical_exam_date": DateField,
                "clinical_context": TextAreaField, "requested_exam": StringField, "modality": SelectField,
                "urgency": RadioField, "local_radiologist_on_duty": BooleanField}
    for name, field_type in expected.items():
        assert type(form[name]) is field_type, name
    assert type(form.patient.birth_date) is DateField
    assert type(form.patient.sex) is RadioField
    assert "csrf_token" not in form.patient.form._fields
    assert form.patient.label.text == "Patient"
    assert form.clinical_exam_date.label.text == "Date de l'examen clinique"
    phone = build_form_class(REGISTRY.schema("td_phone_call.schema.json"))()
    assert type(phone.called_at) is DateTimeLocalField
    injection = build_form_class(REGISTRY.schema("cs_injection.schema.json"))()
    assert type(injection.volume_ml) is FloatField
    assert injection.volume_ml.render_kw["max"] == 500
    egfr = build_form_class(REGISTRY.schema("cs_requester_check.schema.json"))().renal_function_egfr
    assert type(egfr) is IntegerField
    assert (egfr.render_kw["min"], egfr.render_kw["max"]) == (0, 200)
    assert "required" not in egfr.render_kw


def test_html_hints_never_stricter_than_the_schema(request_ctx):
    form = build_form_class(REGISTRY.schema(TD_REQUEST))()
    assert form.clinical_exam_done.render_kw["required"] is True  # const: true, must be ticked
    assert "required" not in form.local_radiologist_on_duty.render_kw  # False is a valid answer
    assert form.question.render_kw["required"] is True
    assert form.question.render_kw["maxlength"] == 4000
    assert form.patient.birth_name.render_kw["minlength"] == 1
    assert form.patient.birth_place_code.render_kw["pattern"] == "^([0-9]{5}|2[AB][0-9]{3}|)$"
    assert "required" not in form.teleradiology_reason.render_kw  # only conditionally required
    assert form.clinical_exam_done.render_kw["data_charter"] == "CH-4.1.1"
    injection = build_form_class(REGISTRY.schema("cs_injection.schema.json"))()
    assert "required" not in injection.adverse_event.render_kw
    assert injection.volume_ml.render_kw["min"] == 0  # exclusiveMinimum: looser hint, the schema decides


def test_enum_labels_are_the_french_x_labels(request_ctx):
    form = build_form_class(REGISTRY.schema(TD_REQUEST))()
    assert [(c.value, c.label) for c in form.modality.choices] == [
        ("", EMPTY_CHOICE_LABEL), ("CT", "Scanner"), ("MR", "IRM"), ("US", "Échographie"),
        ("XR", "Radiographie"), ("MG", "Mammographie")]
    assert [o.label.text for o in form.urgency] == ["Urgence vitale", "Urgent", "Programmé"]
    assert [o.label.text for o in form.patient.sex] == ["Féminin", "Masculin", "Indéterminé"]
    report = build_form_class(REGISTRY.schema("td_report.schema.json"))()
    assert [c.value for c in report.certainty.choices] == ["certain", "uncertain", ""]  # optional radio
    assert report.certainty.choices[-1].label == UNSET_RADIO_LABEL


def test_typical_submission_round_trips_to_valid_task_data(request_ctx):
    form, data = submit(TD_REQUEST, TYPICAL)
    REGISTRY.validate(TD_REQUEST, data)
    assert data["patient"] == {"birth_name": "DUPONT", "first_names": "Jeanne Marie", "birth_date": "1941-03-12",
                               "sex": "F", "identity_status": "qualified"}
    assert data["clinical_exam_done"] is True
    assert data["local_radiologist_on_duty"] is False  # unticked
    assert data["clinical_exam_date"] == "2024-11-03"
    assert data["clinical_context"] == "Chute sous anticoagulants, céphalées.\nGCS 14."
    assert data["urgency"] == "vital"
    assert "history" not in data and "teleradiology_reason" not in data


def test_numbers_and_datetimes_get_json_types(request_ctx):
    _, data = submit("cs_injection.schema.json", {"product": "Iohexol", "volume_ml": "80.5", "lot_number": "L1",
                                                  "injected_at": "2024-11-03T02:40", "adverse_event": ""})
    assert data == {"product": "Iohexol", "volume_ml": 80.5, "lot_number": "L1", "injected_at": "2024-11-03T02:40",
                    "adverse_event": False}
    REGISTRY.validate("cs_injection.schema.json", data)
    _, data = submit("cs_requester_check.schema.json", {"renal_function_egfr": "62", "metformin": "y"})
    assert data == {"allergy_history": False, "renal_function_egfr": 62, "metformin": True,
                    "requester_contraindication": False}
    _, data = submit("cs_requester_check.schema.json", {"renal_function_egfr": ""})
    assert "renal_function_egfr" not in data


def test_values_wtforms_cannot_coerce_are_judged_by_the_schema(request_ctx):
    key = "cs_injection.schema.json"
    form, data = submit(key, {"product": "Iohexol", "volume_ml": "nan", "injected_at": "hier soir"})
    errors = validation_errors(key, data)
    assert errors["volume_ml"] == "Valeur attendue : un nombre."
    assert errors["injected_at"] == "Le format de cette valeur n'est pas valide."
    assert json_errors_to_form(form, errors) == []
    assert form.volume_ml.errors == ["Valeur attendue : un nombre."]
    _, data = submit("cs_requester_check.schema.json", {"renal_function_egfr": "abc"})
    assert validation_errors("cs_requester_check.schema.json", data)["renal_function_egfr"] == (
        "Valeur attendue : un nombre entier.")


def test_validation_errors_land_on_their_fields(request_ctx):
    values = dict(TYPICAL, **{"patient-birth_date": "1941-02-30", "local_radiologist_on_duty": "y",
                              "question": "   "})
    form, data = submit(TD_REQUEST, values)
    errors = validation_errors(TD_REQUEST, data)
    assert errors["patient.birth_date"] == "Date attendue (AAAA-MM-JJ)."
    assert errors["teleradiology_reason"] == "Ce champ est obligatoire."
    unmatched = json_errors_to_form(form, {**errors, "_form": "Champ inconnu dans ce formulaire."})
    assert unmatched == ["Champ inconnu dans ce formulaire."]
    assert form.patient.birth_date.errors == ["Date attendue (AAAA-MM-JJ)."]
    assert form.teleradiology_reason.errors == ["Ce champ est obligatoire."]
    assert form.question.errors == ["Ce champ est obligatoire."]
    assert form.form_errors == ["Champ inconnu dans ce formulaire."]
    assert form.patient.birth_name.errors == ()
    html = render(form)
    assert 'value="1941-02-30"' in html  # what was typed is kept
    assert 'value="DUPONT"' in html
    assert 'aria-describedby="teleradiology_reason-error"' in html
    assert '<div class="invalid-feedback d-block" id="patient-birth_date-error">Date attendue (AAAA-MM-JJ).' in html
    assert 'is-invalid' in html and 'aria-invalid="true"' in html
    assert '<a href="#patient-birth_date" class="alert-link">Date de naissance</a>' in html
    assert "Champ inconnu dans ce formulaire." in html


def test_object_level_errors_go_to_the_nested_fieldset(request_ctx):
    form = build_form_class(REGISTRY.schema(TD_REQUEST))()
    assert json_errors_to_form(form, {"patient": "Valeur attendue : un objet.", "patient.nope": "x"}) == ["x"]
    assert form.patient.form.form_errors == ["Valeur attendue : un objet."]


def test_prefill_keeps_nested_values_and_typed_text_wins(request_ctx):
    schema = REGISTRY.schema(TD_REQUEST)
    form_class = build_form_class(schema)
    case = {"patient": {"birth_name": "DUPONT", "first_names": "Jeanne", "birth_date": "1941-03-12", "sex": "F",
                        "identity_status": "validated", "unknown": "ignored"},
            "clinical_exam_date": "2024-11-03", "urgency": "vital", "local_radiologist_on_duty": True,
            "case_id": 42}
    form = prefill(form_class, case)
    assert form.patient.birth_name.data == "DUPONT"
    assert form.patient.birth_date.data == date(1941, 3, 12)
    assert form.urgency.data == "vital"
    html = render(form)
    assert 'value="DUPONT"' in html and 'value="1941-03-12"' in html
    assert re.search(r'<input[^>]* checked [^>]*id="urgency-0"', html)
    again = prefill(form_class, case, MultiDict({"patient-birth_name": "MARTIN", "urgency": "urgent"}))
    assert again.patient.birth_name.data == "MARTIN"
    assert again.urgency.data == "urgent"
    assert again.local_radiologist_on_duty.data is False  # unticked on the page: the page wins


def test_prefilled_valid_data_round_trips_unchanged(request_ctx):
    _, data = submit(TD_REQUEST, TYPICAL)
    schema = REGISTRY.schema(TD_REQUEST)
    assert form_data_to_json(prefill(build_form_class(schema), data), schema) == data
    call = {"caller": "Dr A", "callee": "Dr B", "called_at": "2024-11-03T03:05", "summary": "Hématome."}
    phone_schema = REGISTRY.schema("td_phone_call.schema.json")
    phone = prefill(build_form_class(phone_schema), call)
    assert phone.called_at.data == datetime(2024, 11, 3, 3, 5)
    assert form_data_to_json(phone, phone_schema) == call


def test_csrf_field_is_rendered_when_enabled():
    app = make_app(csrf=True)
    with app.test_request_context("/tasks/1"):
        form = prefill(build_form_class(REGISTRY.schema("td_acknowledge.schema.json")), {})
        html = render(form)
        assert 'name="csrf_token" type="hidden"' in html
        assert form_data_to_json(form, REGISTRY.schema("td_acknowledge.schema.json")) == {
            "report_read": False, "integrated_in_record": False}


def test_plain_wtforms_base_works_outside_flask():
    schema = REGISTRY.schema("td_accept.schema.json")
    form = build_form_class(schema, base=Form)(MultiDict({"acceptance": "decline", "decline_reason": "Hors champ"}))
    assert form_data_to_json(form, schema) == {"acceptance": "decline", "decline_reason": "Hors champ"}


def test_an_optional_object_neither_forces_its_fields_nor_appears_when_untouched():
    schema = {"type": "object", "properties": {"contact": {
        "type": "object", "title": "Contact", "required": ["name", "reachable"],
        "properties": {"name": {"type": "string", "title": "Nom"}, "reachable": {"type": "boolean"}}}}}
    form = build_form_class(schema, base=Form)(MultiDict({"contact-name": ""}))
    assert "required" not in form.contact.form.name.render_kw
    assert form_data_to_json(form, schema) == {}
    form = build_form_class(schema, base=Form)(MultiDict({"contact-name": "Dr B"}))
    assert form_data_to_json(form, schema) == {"contact": {"name": "Dr B", "reachable": False}}


@pytest.mark.parametrize("prop", [{"type": "array", "items": {"type": "string"}}, {"type": ["string", "integer"]}])
def test_unmappable_properties_are_refused(prop):
    with pytest.raises(UnsupportedSchema):
        build_form_class({"type": "object", "properties": {"x": prop}}, base=Form)


@pytest.mark.parametrize("name", ["data", "meta", "prefix", "_secret", "bad-name"])
def test_names_that_clash_with_wtforms_are_refused(name):
    with pytest.raises(UnsupportedSchema):
        build_form_class({"type": "object", "properties": {name: {"type": "string"}}}, base=Form)


def test_patterns_the_browser_would_read_differently_are_left_to_the_server():
    schema = {"type": "object", "properties": {
        "a": {"type": "string", "pattern": "^[0-9AB ]*$"},
        "b": {"type": "string", "pattern": "^(?!x)[a-z]+$"},
        "c": {"type": "string", "pattern": "^[a-z-]+$"}}}
    form = build_form_class(schema, base=Form)()
    assert form.a.render_kw["pattern"] == "^[0-9AB ]*$"
    assert "pattern" not in form.b.render_kw and "pattern" not in form.c.render_kw


def test_the_engine_side_package_does_not_load_wtforms():
    code = "import sys, forms; forms.default_registry().validator('td_request.schema.json'); " \
           "sys.exit('wtforms' in sys.modules or 'forms.wtforms_builder' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False).returncode == 0
