"""The de-identification rules of research exports (engine.domain.research, CH-8.2): pseudonyms and date shifts
stable within an export and different across exports, names scrubbed from free text, requests checked."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from engine.domain.research import (
    REDACTED,
    RequestSpec,
    ResearchError,
    burned_in_reason,
    burned_in_risk,
    check_spec,
    date_shift,
    deidentified_row,
    not_an_image,
    scrub,
)

SECRET, OTHER = b"s" * 32, b"o" * 32


def test_dates_shift_by_patient_and_export():
    assert date_shift("ch-brest:IPP-1", SECRET) == date_shift("ch-brest:IPP-1", SECRET)
    shifts = {date_shift(f"ch-brest:IPP-{n}", SECRET) for n in range(20)}
    assert len(shifts) > 10 and all(-365 <= shift.days <= -1 for shift in shifts)
    assert date_shift("ch-brest:IPP-1", SECRET) != date_shift("ch-brest:IPP-1", OTHER) or \
        date_shift("ch-brest:IPP-2", SECRET) != date_shift("ch-brest:IPP-2", OTHER)


def test_names_are_scrubbed_from_free_text_whatever_their_case():
    text = scrub("Douleur thoracique chez M. QUÉRÉ Jean (Quéré), voir Dr Le Gall", ["Quéré", "Jean"])
    assert "QUÉRÉ" not in text and "Jean" not in text and "Quéré" not in text and text.count(REDACTED) == 3
    assert "Dr Le Gall" in text  # only the patient's names are given
    assert scrub("Jeanne est venue", ["Jean"]) == "Jeanne est venue"  # whole words only


def test_a_row_holds_pseudonyms_and_the_asked_fields_only():
    values = {"process": "telediagnosis", "requested_at": datetime(2026, 3, 1, 10, tzinfo=UTC),
              "question": "Embolie chez Mme Abgrall ?", "site": "ch-brest"}
    row = deidentified_row(values, patient_key="ch-brest:IPP-9", case_key="42", names=["ABGRALL^MARIE"],
                           birth=date(1950, 6, 1), fields=("age_years", "question", "requested_at"), secret=SECRET)
    assert set(row) == {"patient", "case", "age_years", "question", "requested_at"}
    assert row["age_years"] == 75 and "Abgrall" not in str(row["question"]) and row["case"] != "42"
    assert row["requested_at"] != "2026-03-01"
    again = deidentified_row(values, patient_key="ch-brest:IPP-9", case_key="42", names=[], birth=None,
                             fields=(), secret=SECRET)
    assert again["patient"] == row["patient"]
    assert deidentified_row(values, patient_key="ch-brest:IPP-9", case_key="42", names=[], birth=None,
                            fields=(), secret=OTHER)["patient"] != row["patient"]


def test_with_retained_dates_the_case_dates_are_the_real_ones():
    """The images keep their real dates with the option: shifted case dates beside them would give the shift."""
    values = {"requested_at": datetime(2026, 3, 1, 10, tzinfo=UTC), "ended_at": datetime(2026, 3, 2, 9, tzinfo=UTC)}
    kept = deidentified_row(values, patient_key="ch-brest:IPP-9", case_key="42", names=[], birth=date(1950, 6, 1),
                            fields=("requested_at", "ended_at", "age_years"), secret=SECRET, retain_dates=True)
    assert (kept["requested_at"], kept["ended_at"], kept["age_years"]) == ("2026-03-01", "2026-03-02", 75)
    shifted = deidentified_row(values, patient_key="ch-brest:IPP-9", case_key="42", names=[], birth=None,
                               fields=("requested_at", "ended_at"), secret=SECRET)
    shift = date_shift("ch-brest:IPP-9", SECRET)
    assert (shifted["requested_at"], shifted["ended_at"]) == ((date(2026, 3, 1) + shift).isoformat(),
                                                              (date(2026, 3, 2) + shift).isoformat())


def test_burned_in_text_is_refused_unless_its_pixels_are_cleaned():
    assert burned_in_risk("yes", "CT") == "Texte incrusté dans l'image (BurnedInAnnotation=YES)"
    assert burned_in_risk(None, "US") == "Modalité US susceptible de porter du texte incrusté"
    assert burned_in_risk("NO", "CT") is None and burned_in_reason("NO", "CT", True) is None
    assert burned_in_reason("YES", "CT", False).endswith("option Clean Pixel Data non choisie.")
    assert burned_in_reason(None, "SC", True).endswith("aucune règle de nettoyage des pixels ne connaît cet appareil.")



def test_a_screen_saved_as_an_image_under_the_ct_modality_is_a_burned_in_risk():
    # a CT dose screen (patient name and dates drawn in the pixels) comes as Modality CT, Secondary Capture class,
    # ImageType DERIVED\SECONDARY\SCREEN SAVE; a reformatted CT series (DERIVED\SECONDARY\AXIAL) does not
    ct_image = "1.2.840.10008.5.1.4.1.1.2"
    assert burned_in_risk("NO", "CT", "1.2.840.10008.5.1.4.1.1.7", ("DERIVED", "SECONDARY", "SCREEN SAVE"))
    assert burned_in_risk(None, "CT", "1.2.840.10008.5.1.4.1.1.7.4", ())
    assert burned_in_risk(None, "CT", ct_image, ("DERIVED", "SECONDARY", "OTHER", "CSA REPORT"))
    assert burned_in_reason(None, "CT", False, ct_image, ("derived", "secondary", "screen save")).endswith(
        "option Clean Pixel Data non choisie.")
    assert burned_in_risk(None, "CT", ct_image, ("DERIVED", "SECONDARY", "AXIAL")) is None


@pytest.mark.parametrize("fields", [("patient_name",), ("birth_date",), ("accession_number",)])
def test_direct_identifiers_cannot_be_asked_for(fields):
    spec = RequestSpec("P", "A", fields, True, False, False, date(2026, 1, 1), date(2026, 2, 1), ("ch-brest",))
    with pytest.raises(ResearchError, match="non exportable"):
        check_spec(spec, ["ch-brest"])


@pytest.mark.charter("CH-8.2")
def test_scrub_replaces_identifiers_phone_numbers_and_two_letter_names():
    text = ("Mme Ly Anh, IPP123456 NIR 1850775123456 ACC998877, INS 2 85 07 75 123 456 78, tel 0601020304, "
            "06.01.02.03.04, +33 6 01 02 03 04 ; lyophilisat, nodule de 12 mm, Vu en 2024.")
    scrubbed = scrub(text, ["LY^ANH", "Vu"], ["123456", "ACC998877"])
    for value in ("Ly ", "Anh", "123456", "1850775123456", "ACC998877", "2 85 07 75", "0601020304", "06.01.02",
                  "+33 6", "Vu "):
        assert value not in scrubbed, value
    assert "[IDENTIFIANT]" in scrubbed and "[TÉLÉPHONE]" in scrubbed and f"Mme {REDACTED}" in scrubbed
    assert "lyophilisat" in scrubbed and "12 mm" in scrubbed and "2024" in scrubbed  # whole words, real numbers
    assert scrub("IPP 12 ; 12 mm", [], ["12"]) == "IPP 12 ; 12 mm"  # too short to search inside text


@pytest.mark.charter("CH-8.2")
def test_the_exported_row_scrubs_the_case_identifiers_and_keeps_whole_years():
    values = {"clinical_context": "IPP-BREST-1, accession ACC998877, tel +33601020304",
              "requested_at": datetime(2026, 3, 1, tzinfo=UTC)}
    row = deidentified_row(values, patient_key="ch-brest:IPP-BREST-1", case_key="7", names=["QUERE"],
                           birth=date(2025, 12, 20), fields=("clinical_context", "age_years"), secret=SECRET,
                           identifiers=["IPP-BREST-1", "ACC998877"])
    assert row["clinical_context"] == "[IDENTIFIANT], accession [IDENTIFIANT], tel [TÉLÉPHONE]"
    assert row["age_years"] == 0 and isinstance(row["age_years"], int)  # an infant: whole years, never days


@pytest.mark.charter("CH-8.2", negative=True)
def test_documents_and_screen_copies_are_risks_but_reformatted_series_are_not():
    pdf = "1.2.840.10008.5.1.4.1.1.104.1"
    assert not_an_image(pdf, False, False) and not_an_image("1.2.840.10008.5.1.4.1.1.2", True, True)
    assert not_an_image("1.2.840.10008.5.1.4.1.1.88.33", False, False)  # a structured report
    assert not_an_image("1.2.840.10008.5.1.4.1.1.11.1", False, False)  # a presentation state: no pixels
    assert not_an_image("1.2.840.10008.5.1.4.1.1.2", False, True) is None
    ct_image = "1.2.840.10008.5.1.4.1.1.2"
    assert burned_in_risk(None, "CT", ct_image, ("DERIVED", "SECONDARY", "REFORMATTED")) is None
    assert burned_in_risk(None, "MR", "1.2.840.10008.5.1.4.1.1.77.1.4") is None  # not a secondary capture (1.1.7)
    assert burned_in_risk(None, "CT", "1.2.840.10008.5.1.4.1.1.7.2")
    assert burned_in_risk(None, "CT", ct_image, ("DERIVED", "SECONDARY", "DOSE_INFO"))
    assert burned_in_risk(None, "CT", ct_image, (), "WSD")  # ConversionType: a secondary capture
    for description in ("Dose Report", "Patient Protocol", "dose info"):
        assert burned_in_risk(None, "CT", ct_image, (), None, description), description
    assert burned_in_risk(None, "CT", ct_image, (), None, "Thorax 1.25 mm") is None
