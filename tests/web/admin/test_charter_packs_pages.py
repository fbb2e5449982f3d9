"""CH-9.1 and CH-3.5 through the pages, on the demo (with a few weeks of signed reports): an administrator switches
the Pays de Brest to the 2025 charter and dr.legall, over the 20 % cap, is skipped by routing with the reason on
the case (issue 19, "Done when"); the share pages: administrators see every radiologist, a radiologist only his own
(a forged username is a 403), others nothing; bad input answered in French, never a 500."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.domain.actors import Actor
from engine.domain.data_checks import paris_date
from engine.services.definitions import deploy_library
from engine.services.instances import case_data, start_instance
from engine.services.teleradiology_share import shares
from forms import default_registry
from tests.demo_app import WORKFLOWS, login, web_app
from web.cli.demo_data import create_demo, demo_request
from web.cli.demo_history import add_demo_history
from web.cli.demo_packs import create_demo_packs

ADMIN = Actor("admin", frozenset({"administrator"}))
REQUESTER = Actor("dr.martin", frozenset({"requester"}), frozenset({"ch-brest"}))


@pytest.fixture
def packs_ctx(make_ctx, database_url):
    ctx = make_ctx(operations=None, forms=default_registry(), escalation=None)
    deploy_library(ctx, Actor("designer"), WORKFLOWS)
    accounts = create_demo(ctx)
    add_demo_history(ctx, accounts, database_url, cases=6)
    create_demo_packs(ctx)
    return ctx


@pytest.fixture
def app(packs_ctx, database_url, tmp_path):
    return web_app(packs_ctx, database_url, tmp_path)


def _new_case(ctx) -> int:
    today = paris_date(ctx.clock.now()).isoformat()
    return start_instance(ctx, REQUESTER, "telediagnosis", {}, site_id="ch-brest",
                          first_task=demo_request(clinical_exam_date=today, urgency="scheduled"))


@pytest.mark.charter("CH-9.1")
@pytest.mark.charter("CH-3.5.1", negative=True)
def test_switching_the_demo_territory_to_2025_skips_dr_legall_with_the_reason_on_the_case(app, packs_ctx, clock):
    ctx = packs_ctx
    legall = next(s for s in shares(ctx, ADMIN) if s.username == "dr.legall")
    assert legall.teleradiology_acts > 0 and legall.over_cap  # the demo's declarations
    before = _new_case(ctx)
    assert "dr.legall" in case_data(ctx, before)["offer"]["candidates"]  # 2020: no cap
    admin = login(app, ctx, clock, "admin")
    page = admin.get("/admin/charter-packs")
    assert page.status_code == 200 and "Pays de Brest" in page.get_data(as_text=True)
    response = admin.post("/admin/charter-packs", data={
        "organisation": "territory:brest", "pack": "2025", "over_cap_mode": "skip",
        "effective_from": paris_date(ctx.clock.now()).isoformat()})
    assert response.status_code == 302
    after = _new_case(ctx)
    offer = case_data(ctx, after)["offer"]
    assert "dr.legall" not in offer["candidates"] and offer["candidates"] == ["dr.morvan"]
    assert "dr.legall" in case_data(ctx, before)["offer"]["candidates"]  # the running case keeps 2020
    requester = login(app, ctx, clock, "dr.martin")
    text = requester.get(f"/cases/{after}").get_data(as_text=True)
    assert "Radiologue écarté de l&#39;offre (charte)" in text or "Radiologue écarté de l'offre (charte)" in text
    assert "dépasse le plafond de 20 %" in text and "Dr Yann Le Gall" in text


@pytest.mark.charter("CH-9.1", negative=True)
def test_the_pack_page_refuses_non_administrators_and_bad_input(app, packs_ctx, clock):
    ctx = packs_ctx
    for username in ("dr.legall", "auditor", "dr.martin"):
        client = login(app, ctx, clock, username)
        assert client.get("/admin/charter-packs").status_code == 403
        assert client.post("/admin/charter-packs", data={"organisation": "territory:brest", "pack": "2025",
                                                         "effective_from": "2099-01-01"}).status_code == 403
        assert client.get("/admin/charter-packs/shares").status_code == 403
    admin = login(app, ctx, clock, "admin")
    yesterday = (paris_date(ctx.clock.now()) - timedelta(days=1)).isoformat()
    for data, message in (({"effective_from": ""}, "Indiquez la date"),
                          ({"effective_from": yesterday}, "ne peut pas être passée"),
                          ({"effective_from": "2099-01-01", "pack": "2031"}, "Version de charte inconnue"),
                          ({"effective_from": "2099-01-01", "organisation": "x"}, "Choisissez une organisation"),
                          ({"effective_from": "2099-01-01", "share_cap_percent": "abc"}, "pourcentage"),
                          ({"effective_from": "2099-01-01", "share_cap_percent": "0"}, "pourcentage")):
        form = {"organisation": "territory:brest", "pack": "2025", "over_cap_mode": "skip", **data}
        response = admin.post("/admin/charter-packs", data=form)
        assert response.status_code == 400 and message in response.get_data(as_text=True), data


@pytest.mark.charter("CH-3.5", negative=True)
def test_shares_administrators_all_a_radiologist_his_own_a_forged_username_403(app, packs_ctx, clock):
    ctx = packs_ctx
    admin = login(app, ctx, clock, "admin")
    text = admin.get("/admin/charter-packs/shares").get_data(as_text=True)
    assert "Dr Yann Le Gall" in text and "Dr Anne Morvan" in text and "Au-delà de 20 %" in text
    response = admin.post("/admin/charter-packs/shares", data={
        "username": "dr.morvan", "period_start": "2026-01-01", "period_end": "2025-12-01", "total_acts": "10"})
    assert response.status_code == 400 and "La fin de la période doit suivre son début" in response.get_data(
        as_text=True)
    legall = login(app, ctx, clock, "dr.legall")
    mine = legall.get("/account/teleradiology")
    assert mine.status_code == 200
    text = mine.get_data(as_text=True)
    assert "Ma part de téléradiologie" in text and "Dr Anne Morvan" not in text
    assert legall.get("/account/teleradiology?username=dr.morvan").status_code == 403
    forged = legall.post("/account/teleradiology", data={
        "username": "dr.morvan", "period_start": "2026-01-01", "period_end": "2026-01-31", "total_acts": "10"})
    assert forged.status_code == 403
    bad = legall.post("/account/teleradiology", data={
        "period_start": "2026-01-01", "period_end": "2026-01-31", "total_acts": "beaucoup"})
    assert bad.status_code == 400 and "nombre total d&#39;actes" in bad.get_data(as_text=True).replace("'", "&#39;")
    # The demo declared his last twelve months: declaring them again is refused (acts counted twice).
    again = legall.post("/account/teleradiology", data={
        "period_start": "2026-01-01", "period_end": "2026-01-31", "total_acts": "100000"})
    assert again.status_code == 400 and "une période ne se déclare qu" in again.get_data(as_text=True)
    for odd in ("²", "١٢", "1e3"):  # digits int() refuses, or not a whole number: a French 400, never a 500
        refused = legall.post("/account/teleradiology", data={
            "period_start": "2020-01-01", "period_end": "2020-01-31", "total_acts": odd})
        assert refused.status_code == 400 and "nombre total d" in refused.get_data(as_text=True), odd
    ok = legall.post("/account/teleradiology", data={
        "period_start": "2020-02-01", "period_end": "2020-02-29", "total_acts": "10"})
    assert ok.status_code == 302
    requester = login(app, ctx, clock, "dr.martin")
    assert requester.get("/account/teleradiology").status_code == 403
