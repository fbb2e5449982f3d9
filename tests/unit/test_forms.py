"""Task forms: schema lookup by name, validation with one French message per field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forms import FormRegistry, FormValidationError
from forms.registry import UnknownForm

FORMS = Path(__file__).parents[1] / "data" / "forms"
KEY = "test_submit.schema.json"
VALID = {"accepted": True, "urgency": "vital", "accession_number": "ACC-0001"}


@pytest.fixture
def registry() -> FormRegistry:
    return FormRegistry([FORMS])


def errors_of(registry: FormRegistry, data: dict) -> dict[str, str]:
    with pytest.raises(FormValidationError) as caught:
        registry.validate(KEY, data)
    return caught.value.errors


def test_valid_data_passes(registry):
    registry.validate(KEY, VALID)


def test_missing_required_field_is_named_in_french(registry):
    data = {k: v for k, v in VALID.items() if k != "urgency"}
    assert errors_of(registry, data) == {"urgency": "Ce champ est obligatoire."}


def test_every_missing_field_is_reported(registry):
    assert errors_of(registry, {}) == {
        "accepted": "Ce champ est obligatoire.",
        "urgency": "Ce champ est obligatoire.",
        "accession_number": "Ce champ est obligatoire.",
    }


def test_value_outside_the_enum_is_refused_in_french(registry):
    assert errors_of(registry, {**VALID, "urgency": "whenever"}) == {
        "urgency": "Choisissez une des valeurs proposées."
    }


def test_unknown_field_is_refused(registry):
    assert errors_of(registry, {**VALID, "is_admin": True}) == {"_form": "Champ inconnu dans ce formulaire."}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("accepted", "yes", "Valeur attendue : oui ou non."),
        ("accepted", 1, "Valeur attendue : oui ou non."),
        ("accession_number", 42, "Valeur attendue : du texte."),
        ("urgency", None, "Valeur attendue : du texte."),
    ],
)
def test_wrong_type_is_refused_in_french(registry, field, value, message):
    assert errors_of(registry, {**VALID, field: value})[field] == message


def test_empty_required_text_reads_as_missing(registry):
    assert errors_of(registry, {**VALID, "accession_number": ""}) == {
        "accession_number": "Ce champ est obligatoire."
    }


def test_too_long_text_is_refused(registry):
    assert errors_of(registry, {**VALID, "accession_number": "x" * 65}) == {
        "accession_number": "Au plus 64 caractères."
    }


def test_form_validation_error_message_lists_fields(registry):
    with pytest.raises(FormValidationError, match="urgency: Ce champ est obligatoire"):
        registry.validate(KEY, {"accepted": True, "accession_number": "A"})


def test_known_form_is_listed_and_its_schema_readable(registry):
    assert registry.exists(KEY)
    listed = registry.keys()
    assert KEY in listed
    assert registry.schema(KEY)["required"] == ["accepted", "urgency", "accession_number"]


@pytest.mark.parametrize(
    "key",
    ["missing.schema.json", "../x.json", "/etc/passwd", "../../../../etc/passwd", "../forms/" + KEY,
     "..", "", "sub/x.json", "..\\x.json", "test_submit.schema", "test_submit.schema.json/.", "%2e%2e/x.json"],
)
def test_unknown_or_traversing_form_keys_are_refused(registry, key):
    with pytest.raises(UnknownForm):
        registry.validate(key, VALID)
    assert not registry.exists(key)


def test_traversal_cannot_reach_a_schema_outside_the_form_directories(tmp_path):
    forms_dir = tmp_path / "forms"
    forms_dir.mkdir()
    outside = tmp_path / "outside.schema.json"
    outside.write_text(json.dumps({"type": "object"}), encoding="utf-8")
    registry = FormRegistry([forms_dir])
    with pytest.raises(UnknownForm):
        registry.validator("../outside.schema.json")
    with pytest.raises(UnknownForm):
        registry.validator(str(outside))


@pytest.mark.parametrize(
    "schema",
    [{"type": 5}, {"type": "string"}, [], {"type": "object", "required": "urgency"}],
    ids=["bad-type-keyword", "not-an-object-form", "not-a-schema", "bad-required"],
)
def test_invalid_schema_file_is_refused(tmp_path, schema):
    (tmp_path / "broken.schema.json").write_text(json.dumps(schema), encoding="utf-8")
    registry = FormRegistry([tmp_path])
    with pytest.raises(UnknownForm):
        registry.validate("broken.schema.json", {})


def test_schema_file_that_is_not_json_is_refused(tmp_path):
    (tmp_path / "broken.schema.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UnknownForm):
        FormRegistry([tmp_path]).validate("broken.schema.json", {})


def test_first_directory_wins(tmp_path):
    (tmp_path / KEY).write_text(json.dumps({"type": "object", "required": ["other"]}), encoding="utf-8")
    registry = FormRegistry([tmp_path, FORMS])
    with pytest.raises(FormValidationError) as caught:
        registry.validate(KEY, VALID)
    assert caught.value.errors == {"other": "Ce champ est obligatoire."}


@pytest.mark.parametrize("text", ["ACC\x00-1", "\x00", "ACC\ud800", "\udc00ACC", "A\udc00\ud800"])
def test_nul_bytes_and_lone_surrogates_are_refused_not_stripped(registry, text):
    assert errors_of(registry, {**VALID, "accession_number": text}) == {"accession_number": "Caractère non autorisé."}


def test_forbidden_characters_are_found_in_nested_data_and_keys():
    from forms.validation import forbidden_characters

    data = {"patient": {"names": ["Anne", "B\x00"]}, "k\ud800": "x", "note": "Vu \U0001F600 été"}
    assert forbidden_characters(data) == {"patient.names.1": "Caractère non autorisé.",
                                          "_form": "Caractère non autorisé."}


@pytest.mark.charter("CH-4.1.12", negative=True)
def test_an_urgent_request_without_a_callback_phone_is_refused():
    from forms import default_registry
    from web.cli.demo_data import demo_request

    registry = default_registry()
    for urgency in ("vital", "urgent"):
        without = {k: v for k, v in demo_request(urgency=urgency).items() if k != "callback_phone"}
        with pytest.raises(FormValidationError) as refused:
            registry.validate("td_request.schema.json", without)
        assert set(refused.value.errors) == {"callback_phone"}
        with pytest.raises(FormValidationError):
            registry.validate("td_request.schema.json", {**without, "callback_phone": "12"})
    scheduled = {k: v for k, v in demo_request(urgency="scheduled").items() if k != "callback_phone"}
    assert registry.validate("td_request.schema.json", scheduled)["urgency"] == "scheduled"


@pytest.mark.charter("CH-4.1.10", negative=True)
def test_an_injection_without_its_lot_number_is_refused():
    from forms import default_registry

    injection = {"product": "Iohexol 350", "volume_ml": 70, "injected_at": "2026-01-05T09:12", "adverse_event": False}
    with pytest.raises(FormValidationError) as refused:
        default_registry().validate("cs_injection.schema.json", injection)
    assert set(refused.value.errors) == {"lot_number"}
    assert default_registry().validate("cs_injection.schema.json", {**injection, "lot_number": "L1"})["lot_number"]
