"""The worklist of a teleradiology service (issue 17, item 4): site name, modality, patient age and sex, due time
with its countdown, filters and sort kept in the address (bad values: a French 400, never a 500), and the
duplicate-request warning shown to the requester before submitting and to the radiologist on the offer."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from engine.services.duplicates import WINDOW_SETTING, window
from tests import demo_app
from tests.demo_app import case_of, login, open_task

app, demo_ctx = demo_app.app, demo_app.demo_ctx

REQUEST = {
    "site_id": "ch-brest", "patient-birth_name": "Le Goff", "patient-first_names": "Anne",
    "patient-birth_date": "1990-01-02", "patient-sex": "F", "patient-identity_status": "validated",
    "clinical_exam_done": "y", "clinical_exam_date": "2026-01-05", "clinical_context": "Douleur thoracique",
    "question": "Dissection aortique ?", "modality": "CT", "requested_exam": "Angioscanner thoracique",
    "urgency": "vital", "pregnancy_status": "not_pregnant", "callback_phone": "02 98 00 00 01",
}


def submit(client, **changes):
    return client.post("/cases/new/telediagnosis", data={**REQUEST, **changes})


def rows(page: str) -> list[str]:
    return re.findall(r"<tr class=\"urgency-.*?</tr>", page, flags=re.S)


def test_every_line_shows_site_name_modality_age_sex_and_a_live_due_time(app, demo_ctx, clock):
    page = login(app, demo_ctx, clock, "dr.legall").get("/inbox").get_data(as_text=True)
    line = next(row for row in rows(page) if "KERMARREC" in row)
    assert "CH de Brest (urgences)" in line and "ch-brest" not in line.replace('value="ch-brest"', "")
    assert "Scanner" in line and "77 ans" in line and "Masculin" in line and "Urgence vitale" in line
    due = re.search(r'data-due="([^"]+)"[^>]*><span data-countdown-text>([^<]+)<', line)
    assert due and due.group(2) == "dans 15 min"  # the accept_tier1 delay of the escalation settings
    assert "/static/js/countdown.js" in page and "/static/js/live-inbox.js" in page


def test_an_overdue_step_says_so_in_words_not_only_in_red(app, demo_ctx, clock):
    clock.advance(minutes=40)
    page = login(app, demo_ctx, clock, "dr.legall").get("/inbox").get_data(as_text=True)
    line = next(row for row in rows(page) if "KERMARREC" in row)
    assert "en retard de" in line and "overdue" in line


def test_filters_and_sort_are_kept_in_the_address(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.martin")
    all_rows = rows(client.get("/inbox").get_data(as_text=True))
    page = client.get("/inbox?urgency=vital&site=ch-brest&modality=CT&status=unclaimed&sort=due").get_data(
        as_text=True)
    assert '<option value="vital" selected>' in page and '<option value="CT" selected>' in page
    assert '<option value="due" selected>' in page
    kept = rows(page)
    assert len(kept) <= len(all_rows) and all('data-urgency="0"' in row for row in kept)
    none = client.get("/inbox?modality=MG").get_data(as_text=True)
    assert "Aucune tâche ne correspond à ces filtres." in none
    claim_next = re.search(r'name="next" value="([^"]+)"', page)
    assert claim_next is None or "urgency=vital" in claim_next.group(1)


@pytest.mark.parametrize("query", ["urgency=tres-urgent", "modality=PET", "status=all", "sort=patient",
                                   "site=%3Cscript%3E", "type=a%20b"])
def test_bad_filters_are_a_french_400_never_a_500(app, demo_ctx, clock, query):
    response = login(app, demo_ctx, clock, "dr.martin").get(f"/inbox?{query}")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "choisissez" in page and "Voir toutes mes tâches" in page and "<script>" not in page


def test_requester_is_warned_of_an_open_request_before_a_second_one(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.martin")
    assert submit(client).status_code == 302
    first = case_of(demo_ctx, patient_name="LE GOFF ANNE")
    check = client.get("/cases/duplicates", query_string={
        "site_id": "ch-brest", "patient-birth_name": "le goff", "patient-first_names": "anne",
        "patient-birth_date": "1990-01-02", "modality": "CT"}).get_json()
    assert check["warnings"] and f"n° {first}" in check["warnings"][0]
    other_modality = client.get("/cases/duplicates", query_string={
        "site_id": "ch-brest", "patient-birth_name": "Le Goff", "patient-first_names": "Anne",
        "patient-birth_date": "1990-01-02", "modality": "MR"}).get_json()
    assert other_modality == {"warnings": []}

    clock.advance(minutes=12)
    again = submit(client)
    assert again.status_code == 200  # shown again, nothing created
    page = again.get_data(as_text=True)
    assert (f"Une demande ouverte existe déjà pour ce patient et cette modalité (n° {first}, il y a" in page
            and "Confirmer quand même ?" in page and 'name="confirm_duplicate"' in page)
    assert case_of(demo_ctx, patient_name="LE GOFF ANNE") == first
    confirmed = submit(client, confirm_duplicate="1")
    assert confirmed.status_code == 302
    assert int(confirmed.headers["Location"].rsplit("/", 1)[1]) != first


def test_radiologist_sees_the_duplicate_on_the_offer_line_and_the_task_page(app, demo_ctx, clock):
    requester = login(app, demo_ctx, clock, "dr.martin")
    assert submit(requester).status_code == 302
    assert submit(requester, confirm_duplicate="1").status_code == 302
    first = case_of(demo_ctx, patient_name="LE GOFF ANNE")
    radiologist = login(app, demo_ctx, clock, "dr.legall")
    page = radiologist.get("/inbox").get_data(as_text=True)
    lines = [row for row in rows(page) if "LE GOFF" in row]
    assert lines and all("Doublon possible" in row for row in lines)
    task_id = open_task(demo_ctx, first, "accept_case")
    task_page = radiologist.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "Doublon possible : une autre demande ouverte existe pour ce patient et cette modalité" in task_page


def test_a_duplicate_at_a_site_the_requester_never_saw_is_not_revealed(app, demo_ctx, clock):
    assert submit(login(app, demo_ctx, clock, "dr.martin")).status_code == 302
    kerbrat = login(app, demo_ctx, clock, "dr.kerbrat")  # ch-morlaix
    answer = kerbrat.get("/cases/duplicates", query_string={
        "site_id": "ch-morlaix", "patient-birth_name": "Le Goff", "patient-first_names": "Anne",
        "patient-birth_date": "1990-01-02", "modality": "CT"}).get_json()
    assert answer == {"warnings": []}


def test_duplicate_window_setting():
    assert window({}) == timedelta(hours=48)
    assert window({WINDOW_SETTING: "2"}) == timedelta(hours=2)
    assert window({WINDOW_SETTING: "0"}) == timedelta(0)
    assert window({WINDOW_SETTING: "beaucoup"}) == timedelta(hours=48)
    assert window({WINDOW_SETTING: "-3"}) == timedelta(hours=48)


def test_traits_come_from_the_tasks_that_ran_the_latest_first_never_from_future_tasks():
    import json

    from engine.services.case_traits import NO_TRAITS, traits_from_state

    state = {"data": {}, "tasks": {
        "a": {"state": 64, "last_state_change": 1.0, "data": {},
              "delta": {"updates": {"patient": {"sex": "M", "ins": "1 48 05"}, "modality": "CT"}}},
        "b": {"state": 64, "last_state_change": 2.0, "data": {"modality": "MR"}, "delta": {}},
        "c": {"state": 4, "last_state_change": 3.0, "data": {"modality": "US"},
              "delta": {"updates": {"patient": {"sex": "F"}}, "deletions": ["modality"]}},  # future: ignored
    }}
    traits = traits_from_state(json.dumps(state))
    assert (traits.modality, traits.sex, traits.ins) == ("MR", "M", "1 48 05")
    assert traits_from_state("not json") == NO_TRAITS and traits_from_state("[]") == NO_TRAITS


def test_age_is_in_whole_years_at_the_paris_date():
    from datetime import date

    from engine.services.worklist import age_in_years

    assert age_in_years("1948-05-17", date(2026, 5, 16)) == 77
    assert age_in_years("1948-05-17", date(2026, 5, 17)) == 78
    assert age_in_years("17/05/1948", date(2026, 5, 17)) is None and age_in_years(None, date(2026, 1, 1)) is None


def test_filters_round_trip_through_the_address():
    from engine.services.worklist import parse_filters

    filters = parse_filters({"urgency": "vital", "site": "ch-brest", "modality": "CT", "status": "mine",
                             "type": "accept_case", "sort": "-created"})
    assert filters.descending and filters.sort == "created"
    assert parse_filters(filters.as_args()) == filters
    assert parse_filters({}).as_args() == {}


def test_duplicate_check_with_a_nul_byte_is_refused_not_a_500(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.martin")
    response = client.get("/cases/duplicates?site_id=ch-brest&patient-birth_name=Le%00Goff&patient-first_names=A"
                          "&patient-birth_date=1990-01-02&patient-site_patient_id=%00&modality=CT%00")
    assert response.status_code == 400  # the application's guard on NUL bytes; the POST is in test_task_bad_input
    assert client.get("/cases/duplicates?site_id=ch-brest&patient-birth_name=Le%20Goff&modality=CT").get_json() == {
        "warnings": []}
