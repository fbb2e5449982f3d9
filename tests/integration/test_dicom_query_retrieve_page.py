"""The page "Mes stations de visualisation" (issue 18, item 2): a radiologist registers and removes his own
stations, an administrator those of any radiologist, anyone else gets 403; bad input gets the form again with a
French reason (400), never a 500; the CSRF token is required."""

from __future__ import annotations

import pytest

from integrations.dicom.workstations import list_workstations
from tests.demo_app import login
from tests.integration import dicom_support
from tests.integration.dicom_support import DEMO_ACTORS

dicom_ctx = dicom_support.dicom_ctx  # fixture
dicom_app = dicom_support.dicom_app  # fixture


def titles(ctx, username: str = "admin") -> list[str]:
    return [s.ae_title for s in list_workstations(ctx, DEMO_ACTORS[username])]


@pytest.mark.charter("CH-5.3")
def test_a_radiologist_registers_and_removes_his_stations(dicom_app, dicom_ctx, clock):
    client = login(dicom_app, dicom_ctx, clock, "dr.legall")
    page = client.get("/account/workstations")
    assert page.status_code == 200 and "Mes stations de visualisation" in page.get_data(as_text=True)
    added = client.post("/account/workstations", data={"ae_title": "LEGALL_WS", "host": "10.29.4.17", "port": "104",
                                                       "owner": "dr.morvan"})  # the owner field is the admin's
    assert added.status_code == 302
    assert [(s.owner, s.ae_title, s.host, s.port) for s in list_workstations(dicom_ctx, DEMO_ACTORS["admin"])] == [
        ("dr.legall", "LEGALL_WS", "10.29.4.17", 104)]
    for data in ({"ae_title": "LEGALL_WS", "host": "10.0.0.1", "port": "104"},
                 {"ae_title": "X", "host": "not a host!", "port": "104"},
                 {"ae_title": "X", "host": "10.0.0.1", "port": "70000"},
                 {"ae_title": "", "host": "10.0.0.1", "port": "104"}):
        refused = client.post("/account/workstations", data=data)
        assert refused.status_code == 400 and "Enregistrement refusé" in refused.get_data(as_text=True), data
    station = list_workstations(dicom_ctx, DEMO_ACTORS["dr.legall"])[0]
    other = login(dicom_app, dicom_ctx, clock, "dr.morvan")
    assert "LEGALL_WS" not in other.get("/account/workstations").get_data(as_text=True)
    assert other.post(f"/account/workstations/{station.id}/delete").status_code == 404  # not his
    assert client.post(f"/account/workstations/{station.id}/delete").status_code == 302
    assert titles(dicom_ctx) == []


@pytest.mark.charter("CH-5.3")
def test_an_administrator_registers_for_a_radiologist_and_others_are_refused(dicom_app, dicom_ctx, clock):
    admin = login(dicom_app, dicom_ctx, clock, "admin")
    assert "dr.kerbrat" in admin.get("/account/workstations").get_data(as_text=True)  # radiologists to choose
    for owner in ("nobody", "a\x00b", "x" * 300):
        assert admin.post("/account/workstations", data={"owner": owner, "ae_title": "KERBRAT_WS",
                                                         "host": "127.0.0.1", "port": "11113"}).status_code == 400
    assert admin.post(f"/account/workstations/{10**30}/delete").status_code == 404
    assert admin.post("/account/workstations", data={"owner": "dr.kerbrat", "ae_title": "KERBRAT_WS",
                                                     "host": "127.0.0.1", "port": "11113"}).status_code == 302
    refused = admin.post("/account/workstations", data={"owner": "merm.leroy", "ae_title": "LEROY_WS",
                                                        "host": "127.0.0.1", "port": "11113"})
    assert refused.status_code == 400
    assert titles(dicom_ctx) == ["KERBRAT_WS"]
    technologist = login(dicom_app, dicom_ctx, clock, "merm.leroy")
    assert technologist.get("/account/workstations").status_code == 403
    assert technologist.post("/account/workstations", data={"ae_title": "LEROY_WS", "host": "127.0.0.1",
                                                            "port": "104"}).status_code == 403
    assert titles(dicom_ctx) == ["KERBRAT_WS"]


def test_the_csrf_token_is_required(dicom_app, dicom_ctx, clock):
    client = login(dicom_app, dicom_ctx, clock, "dr.legall")
    dicom_app.config["WTF_CSRF_ENABLED"] = True
    assert client.post("/account/workstations", data={"ae_title": "LEGALL_WS", "host": "10.0.0.1",
                                                      "port": "104"}).status_code == 400
    assert titles(dicom_ctx) == []
