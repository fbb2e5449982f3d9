"""Administrators organise on-call duty and see the gaps in H24 coverage (CH-5.5)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from engine.store.directory_models import OnCallSlotRow
from tests import demo_app

app, demo_ctx = demo_app.app, demo_app.demo_ctx
login = demo_app.login


@pytest.mark.charter("CH-5.5")
def test_admin_adds_a_slot_and_the_gap_shrinks(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    page = client.get("/admin/oncall").get_data(as_text=True)
    assert "Trous dans la couverture H24" in page and page.count('class="text-danger"') >= 2
    response = client.post("/admin/oncall", data={"territory_id": "brest", "username": "dr.legall",
                                                  "starts_at": "2026-01-05T18:30", "ends_at": "2026-01-06T08:00"})
    assert response.status_code == 302
    with demo_ctx.read() as session:
        slot = session.execute(select(OnCallSlotRow)).scalar_one()
    assert (slot.username, slot.starts_at.isoformat()) == ("dr.legall", "2026-01-05T17:30:00+00:00")
    page = client.get("/admin/oncall").get_data(as_text=True)
    assert "Dr Yann Le Gall" in page
    assert "06/01/2026 18:30" in page  # the next uncovered evening starts the gap list of brest


@pytest.mark.charter("CH-5.5")
def test_the_gaps_read_the_service_hours_whatever_the_minute_the_page_is_opened(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    first = client.get("/admin/oncall").get_data(as_text=True)
    clock.advance(minutes=23)
    second = client.get("/admin/oncall").get_data(as_text=True)
    gaps = [re.findall(r'<li class="text-danger">([^<]+)</li>', page) for page in (first, second)]
    assert gaps[0] == gaps[1] and gaps[0]
    assert all(re.fullmatch(r"\d\d/\d\d/\d{4} (18:30|00:00) → \d\d/\d\d/\d{4} (08:00|00:00)", gap.strip())
               for gap in gaps[0]), gaps[0][:4]
    assert "Brest" in first and "<h3 class=\"h6\">brest</h3>" not in first  # the territory's name, not its id


@pytest.mark.charter("CH-5.5", negative=True)
def test_invalid_slots_are_refused_in_french_and_non_admins_get_403(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    page = client.post("/admin/oncall", data={"territory_id": "brest", "username": "dr.martin",
                                              "starts_at": "2026-01-05T18:30", "ends_at": "2026-01-06T08:00"})
    assert "est pas un radiologue" in page.get_data(as_text=True)
    page = client.post("/admin/oncall", data={"territory_id": "brest", "username": "dr.legall",
                                              "starts_at": "2026-01-06T08:00", "ends_at": "2026-01-05T18:30"})
    assert "La fin de la garde doit suivre son début." in page.get_data(as_text=True)
    with demo_ctx.read() as session:
        assert session.execute(select(OnCallSlotRow)).first() is None  # no on-call duty held by nobody
    requester = login(app, demo_ctx, clock, "dr.martin")
    assert requester.get("/admin/oncall").status_code == 403
    assert requester.post("/admin/oncall/1/delete").status_code == 403


@pytest.mark.charter("CH-5.5")
def test_the_radiologist_is_chosen_with_a_picker_of_the_eligible_radiologists(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "admin")
    page = client.get("/admin/oncall").get_data(as_text=True)
    assert 'data-picker="oncall"' in page and 'list="username-people"' in page
    assert 'data-picker-url="/directory/people?purpose=oncall"' in page and "js/people-picker.js" in page
    assert 'aria-autocomplete="list"' in page and "(identifiant)" not in page
    datalist = page[page.find('<datalist id="username-people">'):page.find("</datalist>")]
    assert 'value="dr.legall"' in datalist and "Dr Yann Le Gall (radiologue)" in datalist
    assert 'value="dr.martin"' not in datalist  # a requester is never offered


@pytest.mark.charter("CH-5.5", negative=True)
def test_a_radiologist_whose_credentials_expired_is_refused_in_french(app, demo_ctx, clock):
    from datetime import date

    from engine.domain.actors import Actor
    from engine.services.directory import update_radiologist_credentials

    update_radiologist_credentials(demo_ctx, Actor("admin", frozenset({"administrator"})), "dr.morvan",
                                   rpps="10101010105", authorization_expires=date(2030, 12, 31),
                                   insurance_expires=date(2020, 1, 1), extraterritorial=False,
                                   foreign_authorization_on_file=False, foreign_insurance_on_file=False,
                                   territory_id="morlaix", external_company=None)
    client = login(app, demo_ctx, clock, "admin")
    for username in ("dr.morvan", "nobody\u00e9", "x" * 5000):
        response = client.post("/admin/oncall", data={"territory_id": "brest", "username": username,
                                                      "starts_at": "2026-01-05T18:30", "ends_at": "2026-01-06T08:00"})
        assert response.status_code == 200
        assert "n'est pas un radiologue actif dont l'autorisation d'exercer et l'assurance sont valides" in \
            response.get_data(as_text=True).replace("&#39;", "'")
    with demo_ctx.read() as session:
        assert session.execute(select(OnCallSlotRow)).first() is None


@pytest.mark.charter("CH-5.5")
def test_the_demo_has_a_night_on_call_radiologist_so_an_urgent_request_at_night_reaches_him(demo_ctx):
    """`telerad demo` (web.cli.demo) adds two weeks of nights: `make run` with a mail sink shows the on-call mail."""
    from datetime import UTC, datetime

    from web.cli.demo_data import DEMO_ON_CALL_NIGHTS, create_demo_on_call

    now = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    assert create_demo_on_call(demo_ctx, now) == DEMO_ON_CALL_NIGHTS
    directory = demo_ctx.directory
    assert directory.on_call("brest", datetime(2026, 12, 8, 2, 0, tzinfo=UTC)) == "dr.legall"  # 03:00 Paris
    assert directory.on_call("brest", datetime(2026, 12, 7, 4, 0, tzinfo=UTC)) == "dr.legall"  # the night before
    assert directory.on_call("brest", datetime(2026, 12, 8, 11, 0, tzinfo=UTC)) is None  # day time: a gap
    assert directory.on_call("morlaix", datetime(2026, 12, 8, 2, 0, tzinfo=UTC)) is None
