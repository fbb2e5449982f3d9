"""Issue 17, item 6: pickers for people (tele-expert, physician present at injection, on-call radiologist) search
the directory through ``GET /directory/people`` and offer only the eligible people; the server still refuses an
ineligible value in French."""

from __future__ import annotations

import html
from datetime import date

import pytest

from engine.domain.actors import Actor
from engine.services.accounts import create_user
from engine.services.directory import update_radiologist_credentials
from engine.services.people_directory import check_physician_present, folded
from engine.services.people_search import search_people
from tests import demo_app
from tests.demo_app import login
from tests.integration.test_expert_eligibility import LOCAL, UNBOUND, at_choose_expert, experts, open_task
from tests.web.clinical.test_task_context import contrast_case

app, demo_ctx = demo_app.app, demo_app.demo_ctx
__all__ = ["experts"]  # the fixture of the expert-eligibility tests, used here
ADMIN = Actor("admin", frozenset({"administrator"}))
URL = "/directory/people"
MORLAIX = "Pays de Morlaix"


def names(response) -> list[str]:
    assert response.status_code == 200, response.status_code
    return [person["username"] for person in response.get_json()]


def presence_task(ctx) -> str:
    """The attestation of the physician present, open for the technologist of ch-brest (the demo's case)."""
    case_id = contrast_case(ctx)
    from tests.integration.dicom_support import complete_step

    complete_step(ctx, case_id, "check_contraindications_radiologist", "dr.legall",
                  {"contrast_decision": "cleared", "premedication": "Aucune."})
    return open_task(ctx, case_id, "attest_physician_presence")


@pytest.mark.charter("CH-3.4")
@pytest.mark.charter("CH-4.2.1", negative=True)
def test_expert_search_offers_only_the_experts_eligible_for_the_case(app, experts, clock):
    case_id = at_choose_expert(experts)
    task_id = open_task(experts, case_id, "te_choose_expert")
    client = login(app, experts, clock, LOCAL.user_id)
    found = names(client.get(URL, query_string={"purpose": "expert", "task": task_id}))
    assert found == ["dr.morvan", "dr.legall"]  # not dr.unbound (no convention), not himself
    by_case = client.get(URL, query_string={"purpose": "expert", "case": case_id})
    assert names(by_case) == found
    person = client.get(URL, query_string={"purpose": "expert", "task": task_id, "q": "MORVAN"}).get_json()
    assert person == [{"username": "dr.morvan", "display_name": "Dr Anne Morvan (radiologue)",
                       "detail": "radiologue, " + MORLAIX}]
    assert names(client.get(URL, query_string={"purpose": "expert", "task": task_id, "q": "gall"})) == ["dr.legall"]
    assert names(client.get(URL, query_string={"purpose": "expert", "task": task_id, "q": "unbound"})) == []
    assert "no-store" in by_case.headers["Cache-Control"]
    assert all(set(p) == {"username", "display_name", "detail"} for p in by_case.get_json())  # no patient


@pytest.mark.charter("CH-3.4", negative=True)
def test_the_expert_form_renders_the_picker_and_refuses_an_ineligible_username(app, experts, clock):
    case_id = at_choose_expert(experts)
    task_id = open_task(experts, case_id, "te_choose_expert")
    client = login(app, experts, clock, LOCAL.user_id)
    shown = html.unescape(client.get(f"/tasks/{task_id}").get_data(as_text=True))
    assert 'data-picker="expert"' in shown and 'list="expert_id-people"' in shown
    assert f'data-picker-url="/directory/people?purpose=expert&task={task_id}"' in shown
    assert 'aria-autocomplete="list"' in shown and 'id="expert_id-person"' in shown
    datalist = shown[shown.find('<datalist id="expert_id-people">'):shown.find("</datalist>")]
    assert 'value="dr.morvan"' in datalist and "Dr Anne Morvan (radiologue)" in datalist
    assert "dr.unbound" not in datalist and 'value="dr.lelay"' not in datalist
    refused = client.post(f"/tasks/{task_id}", data={"expert_id": "dr.unbound"})
    assert refused.status_code == 200 and UNBOUND in html.unescape(refused.get_data(as_text=True))
    assert open_task(experts, case_id, "te_choose_expert") == task_id


@pytest.mark.charter("CH-4.1.10")
def test_physician_present_search_offers_the_physicians_of_the_case_site_only(app, demo_ctx, clock):
    task_id = presence_task(demo_ctx)
    client = login(app, demo_ctx, clock, "merm.leroy")
    found = names(client.get(URL, query_string={"purpose": "physician_present", "task": task_id}))
    assert found == ["dr.martin", "dr.guillou"]  # ch-brest; not dr.kerbrat, dr.riou (ch-morlaix) nor merm.leroy
    martin = client.get(URL, query_string={"purpose": "physician_present", "task": task_id, "q": "claire"})
    assert martin.get_json()[0]["detail"].startswith("médecin demandeur")
    shown = html.unescape(client.get(f"/tasks/{task_id}").get_data(as_text=True))
    assert 'data-picker="physician_present"' in shown and 'data-picker-value="display_name"' in shown
    assert '<option value="Dr Claire Martin (urgentiste, demandeuse)">' in shown


@pytest.mark.charter("CH-4.1.10", negative=True)
@pytest.mark.charter("CH-4.2.1", negative=True)
def test_people_search_is_refused_without_the_task_and_for_an_unknown_purpose(app, demo_ctx, clock):
    task_id = presence_task(demo_ctx)
    requester = login(app, demo_ctx, clock, "dr.martin")  # sees the case, holds no attestation task
    assert requester.get(URL, query_string={"purpose": "physician_present", "task": task_id}).status_code == 403
    assert requester.get(URL, query_string={"purpose": "expert", "task": task_id}).status_code == 403
    assert requester.get(URL, query_string={"purpose": "oncall"}).status_code == 403
    assert requester.get(URL, query_string={"purpose": "physician_present"}).status_code == 403
    assert requester.get(URL, query_string={"purpose": "patients"}).status_code == 400
    assert requester.get(URL, query_string={"purpose": "expert", "case": "1 OR 1=1"}).status_code == 400
    technologist = login(app, demo_ctx, clock, "merm.leroy")
    # the form of this task declares the physician present, not the expert
    assert technologist.get(URL, query_string={"purpose": "expert", "task": task_id}).status_code == 403
    assert app.test_client().get(URL, query_string={"purpose": "oncall"}).status_code in (302, 401)


def test_bad_queries_never_give_a_500(app, demo_ctx, clock):
    admin = login(app, demo_ctx, clock, "admin")
    for query in ("\x00", "a\x00b"):  # refused as unstorable input by the application, never a 500
        assert admin.get(URL, query_string={"purpose": "oncall", "q": query}).status_code == 400
    for query in ("é" * 5000, "%", "_", "' OR 1=1 --", "\u202e", "\x07"):
        response = admin.get(URL, query_string={"purpose": "oncall", "q": query})
        assert response.status_code == 200 and isinstance(response.get_json(), list), repr(query[:10])
    assert admin.get(URL + "?purpose=oncall&q=%FF%FE").status_code in (200, 400)
    assert admin.get(URL, query_string={"purpose": "oncall", "task": "x" * 5000}).status_code == 200


@pytest.mark.charter("CH-5.5")
def test_oncall_search_offers_active_radiologists_with_valid_credentials(app, demo_ctx, clock):
    create_user(demo_ctx, ADMIN, "dr.expired", "Dr Expirée Kerleo", "une phrase de passe solide",
                ("radiologist",), (), territory_id="brest", rpps="10003456786",
                authorization_expires=date(2030, 12, 31), insurance_expires=date(2020, 1, 1))
    admin = login(app, demo_ctx, clock, "admin")
    found = names(admin.get(URL, query_string={"purpose": "oncall"}))
    assert "dr.legall" in found and "dr.morvan" in found
    assert "dr.expired" not in found and "dr.martin" not in found and "dr.kerbrat" not in found
    assert names(admin.get(URL, query_string={"purpose": "oncall", "q": "ANNE morvan"})) == ["dr.morvan"]
    assert names(admin.get(URL, query_string={"purpose": "oncall", "q": "le gall"})) == ["dr.legall"]
    update_radiologist_credentials(demo_ctx, ADMIN, "dr.morvan", rpps="10101010105",
                                   authorization_expires=date(2030, 12, 31), insurance_expires=date(2020, 1, 1),
                                   extraterritorial=False, foreign_authorization_on_file=False,
                                   foreign_insurance_on_file=False, territory_id="morlaix", external_company=None)
    assert "dr.morvan" not in names(admin.get(URL, query_string={"purpose": "oncall"}))


def test_folding_and_limit(demo_ctx):
    assert folded("Gwenaëlle LE GALL\x00") == "gwenaelle le gall"
    assert len(search_people(demo_ctx, ADMIN, "oncall", "")) <= 20


@pytest.fixture
def presence_checked(demo_ctx):
    """The presence check registered on its form as the lead registers it (engine.services.task_checks)."""
    from engine.services import task_checks

    key = "cs_presence.schema.json"
    added = check_physician_present not in task_checks._BY_FORM.get(key, [])
    if added:
        task_checks.register(key, check_physician_present)
    yield demo_ctx
    if added:
        task_checks._BY_FORM[key].remove(check_physician_present)


@pytest.mark.charter("CH-4.1.10", negative=True)
def test_a_named_account_that_is_no_physician_of_the_site_is_refused(demo_ctx):
    refused = "n'est pas un médecin actif de ce site"
    for name in ("Paul Leroy (manipulateur)", "merm.leroy", "dr.kerbrat", "DR LOIC KERBRAT (radiologue de proximite)"):
        assert refused in check_physician_present(demo_ctx, "ch-brest", {"physician_name": name}, {})[
            "physician_name"], name
    for name in ("Dr Claire Martin (urgentiste, demandeuse)", "dr.guillou", "Dr Urgences Kerléo", ""):
        assert check_physician_present(demo_ctx, "ch-brest", {"physician_name": name}, {}) == {}, name


@pytest.mark.charter("CH-4.1.10", negative=True)
def test_the_attestation_page_refuses_an_ineligible_physician_in_french(app, presence_checked, clock):
    task_id = presence_task(presence_checked)
    client = login(app, presence_checked, clock, "merm.leroy")
    response = client.post(f"/tasks/{task_id}", data={"physician_name": "Dr Loïc Kerbrat (radiologue de proximité)",
                                                      "physician_role": "other", "physically_present": "y"})
    assert response.status_code == 200
    assert "n'est pas un médecin actif de ce site" in html.unescape(response.get_data(as_text=True))
    assert open_task(presence_checked, open_case_of(presence_checked, task_id), "attest_physician_presence") == task_id


def open_case_of(ctx, task_id: str) -> int:
    from sqlalchemy import select

    from engine.store.models import Task

    with ctx.read() as session:
        return session.execute(select(Task.instance_id).where(Task.id == task_id)).scalar_one()


@pytest.mark.charter("CH-4.2.1")
def test_the_chosen_expert_is_shown_by_name_on_the_case_page(app, experts, clock):
    case_id = at_choose_expert(experts)
    client = login(app, experts, clock, LOCAL.user_id)
    client.post(f"/tasks/{open_task(experts, case_id, 'te_choose_expert')}", data={"expert_id": "dr.morvan"})
    shown = html.unescape(client.get(f"/cases/{case_id}").get_data(as_text=True))
    assert "Télé-expert sollicité : Dr Anne Morvan (radiologue)" in shown
    assert "Télé-expert sollicité : dr.morvan" not in shown


@pytest.mark.charter("CH-3.4")
@pytest.mark.charter("CH-4.2.1", negative=True)
def test_a_new_teleexpertise_request_picks_its_expert_among_those_eligible_for_the_requesting_site(
        app, experts, clock):
    client = login(app, experts, clock, "dr.kerbrat")  # local radiologist of ch-morlaix
    page = client.get("/cases/new/teleexpertise").get_data(as_text=True)
    assert 'data-picker="expert"' in page and "purpose=expert&amp;site=ch-morlaix" in page
    assert 'value="dr.legall"' in page and "dr.unbound" not in page  # the list rendered without JavaScript
    assert "js/people-picker.js" in page
    found = names(client.get(URL, query_string={"purpose": "expert", "site": "ch-morlaix"}))
    assert "dr.legall" in found and "dr.unbound" not in found and "dr.kerbrat" not in found
    assert client.get(URL, query_string={"purpose": "expert", "site": "ch-brest"}).status_code == 403  # not his
    assert client.get(URL, query_string={"purpose": "expert", "site": "x" * 65}).status_code == 400
    technologist = login(app, experts, clock, "merm.leroy")  # of ch-brest, but asks for no teleexpertise
    assert technologist.get(URL, query_string={"purpose": "expert", "site": "ch-brest"}).status_code == 403
