"""The "Qualité des sites" pages (CH-5.6, CH-5.2): site visits, imaging devices, reading workstations; who sees and
records what, forged ids, bad input in French, and the overdue visits partial of the indicators dashboard."""

from __future__ import annotations

from datetime import date

import pytest
from flask import render_template
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.services.reading_stations import declare_station
from engine.services.site_devices import add_device
from engine.services.site_visits import overdue_visits, record_visit
from engine.store.site_quality_models import ReadingStationRow, SiteDeviceRow, SiteVisitRow
from tests import demo_app

app, demo_ctx = demo_app.app, demo_app.demo_ctx
login = demo_app.login
LEGALL = Actor("dr.legall", frozenset({"radiologist", "tele_expert"}))
MORVAN = Actor("dr.morvan", frozenset({"radiologist"}))
GUILLOU = Actor("dr.guillou", frozenset({"site_lead"}), frozenset({"ch-brest"}))
RIOU = Actor("dr.riou", frozenset({"site_lead"}), frozenset({"ch-morlaix"}))
PAGES = ("/site-visits", "/site-devices", "/account/reading-stations")


def _protocol(ctx) -> str:
    from engine.services.protocols import list_protocols

    return list_protocols(ctx, include_inactive=False)[0].id


def _rows(ctx, model):
    with ctx.read() as session:
        return session.execute(select(model)).scalars().all()


@pytest.mark.charter("CH-5.6")
def test_CH5_6_a_radiologist_records_his_visit_from_the_page(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    page = client.get("/site-visits").get_data(as_text=True)
    assert "Qualité des sites" in page and "Enregistrer une visite" in page and "En retard" in page
    assert 'name="radiologist"' not in page  # a radiologist records for himself only: no owner field
    protocol = _protocol(demo_ctx)
    response = client.post("/site-visits", data={"site_id": "ch-brest", "visited_on": "2025-12-15",
                                                 "findings": "Salle vérifiée, réseau conforme.",
                                                 "protocols": [protocol]})
    assert response.status_code == 302
    (row,) = _rows(demo_ctx, SiteVisitRow)
    assert (row.site_id, row.radiologist, row.visited_on, row.recorded_by) == (
        "ch-brest", "dr.legall", date(2025, 12, 15), "dr.legall")
    page = client.get("/site-visits").get_data(as_text=True)
    assert "Salle vérifiée, réseau conforme." in page and "15/12/2025" in page and "15/12/2026" in page


@pytest.mark.charter("CH-5.6", negative=True)
def test_CH5_6_bad_visit_input_on_the_page_is_refused_in_french_and_typed_text_kept(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    response = client.post("/site-visits", data={"site_id": "ch-brest", "visited_on": "2030-01-01",
                                                 "findings": "Texte tapé à garder", "protocols": [_protocol(demo_ctx)]})
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "la date ne peut pas être dans le futur" in page
    assert "Texte tapé à garder" in page
    response = client.post("/site-visits", data={"site_id": "ch-brest", "visited_on": "2025-12-01",
                                                 "findings": "Visite"})
    assert response.status_code == 400 and "au moins un protocole" in response.get_data(as_text=True)
    response = client.post("/site-visits", data={"site_id": "no-site", "visited_on": "2025-12-01",
                                                 "findings": "Visite", "protocols": [_protocol(demo_ctx)]})
    assert response.status_code == 400 and "Site inconnu" in response.get_data(as_text=True)
    # For someone else: refused, whatever the form carries.
    response = client.post("/site-visits", data={"site_id": "ch-brest", "radiologist": "dr.morvan",
                                                 "visited_on": "2025-12-01", "findings": "Visite",
                                                 "protocols": [_protocol(demo_ctx)]})
    assert response.status_code == 403
    assert _rows(demo_ctx, SiteVisitRow) == []


@pytest.mark.charter("CH-5.6", negative=True)
def test_CH5_6_site_leads_see_their_site_only_and_others_get_403(app, demo_ctx, clock):
    protocol = _protocol(demo_ctx)
    record_visit(demo_ctx, LEGALL, "ch-brest", "", "2025-12-01", "Visite de Brest.", [protocol])
    record_visit(demo_ctx, MORVAN, "ch-morlaix", "", "2025-12-02", "Visite de Morlaix.", [protocol])
    add_device(demo_ctx, RIOU, "ch-morlaix", "MR", "GE", "Signa Artist", "MOR-7", "2023-05-01")
    lead = login(app, demo_ctx, clock, "dr.guillou")
    page = lead.get("/site-visits").get_data(as_text=True)
    assert "Visite de Brest." in page and "Visite de Morlaix." not in page
    assert "Enregistrer une visite" not in page
    assert lead.post("/site-visits", data={"site_id": "ch-brest", "visited_on": "2025-12-01", "findings": "x",
                                           "protocols": [protocol]}).status_code == 403
    assert lead.get("/site-visits?site=ch-morlaix").status_code == 403  # a forged site filter
    assert lead.get("/site-devices?site=ch-morlaix").status_code == 403
    assert "Signa Artist" not in lead.get("/site-devices").get_data(as_text=True)
    assert lead.get("/account/reading-stations").status_code == 403
    morvan = login(app, demo_ctx, clock, "dr.morvan")
    page = morvan.get("/site-visits").get_data(as_text=True)
    assert "Visite de Morlaix." in page and "Visite de Brest." not in page
    admin = login(app, demo_ctx, clock, "admin")
    page = admin.get("/site-visits").get_data(as_text=True)
    assert "Visite de Brest." in page and "Visite de Morlaix." in page and 'name="radiologist"' in page
    for username in ("dr.martin", "merm.leroy", "auditor", "designer"):
        client = login(app, demo_ctx, clock, username)
        for path in PAGES:
            assert client.get(path).status_code == 403, (username, path)
        assert client.post("/site-devices/1/validate", data={"validated_on": "2025-12-01"}).status_code == 403


@pytest.mark.charter("CH-5.6", negative=True)
def test_CH5_6_devices_page_validation_by_a_bound_radiologist_only(app, demo_ctx, clock):
    device = add_device(demo_ctx, GUILLOU, "ch-brest", "CT", "Siemens", "Somatom go.Up", "BRE-1", "2024-03-01")
    lead = login(app, demo_ctx, clock, "dr.guillou")
    page = lead.get("/site-devices").get_data(as_text=True)
    assert "Somatom go.Up" in page and "Non validé" in page and "Valider l’appareil" not in page
    assert lead.post(f"/site-devices/{device}/validate", data={"validated_on": "2025-12-01"}).status_code == 403
    other_lead = login(app, demo_ctx, clock, "dr.riou")
    assert other_lead.post(f"/site-devices/{device}/validate",
                           data={"validated_on": "2025-12-01"}).status_code == 403  # another site's device
    local = login(app, demo_ctx, clock, "dr.kerbrat")  # a local radiologist of Morlaix, bound by no convention
    assert local.post(f"/site-devices/{device}/validate", data={"validated_on": "2025-12-01"}).status_code == 403
    radiologist = login(app, demo_ctx, clock, "dr.legall")
    assert radiologist.post("/site-devices/99999/validate", data={"validated_on": "2025-12-01"}).status_code == 404
    response = radiologist.post(f"/site-devices/{device}/validate", data={"validated_on": "2020-01-01"})
    assert response.status_code == 400 and "précéder la mise en service" in response.get_data(as_text=True)
    assert "Valider l’appareil" in radiologist.get("/site-devices").get_data(as_text=True)
    response = radiologist.post(f"/site-devices/{device}/validate",
                                data={"validated_on": "2025-12-01", "remarks": "Contrôle qualité à jour."})
    assert response.status_code == 302
    (row,) = _rows(demo_ctx, SiteDeviceRow)
    assert (row.validated_by, row.validated_on) == ("dr.legall", date(2025, 12, 1))
    page = lead.get("/site-devices").get_data(as_text=True)
    assert "Validé" in page and "Dr Yann Le Gall" in page and "Contrôle qualité à jour." in page


@pytest.mark.charter("CH-5.6", negative=True)
def test_CH5_6_devices_are_added_from_the_page_with_french_errors(app, demo_ctx, clock):
    lead = login(app, demo_ctx, clock, "dr.guillou")
    data = {"site_id": "ch-brest", "modality": "XX", "manufacturer": "Fuji", "model": "FDR Go",
            "serial": "INV-42", "installed_on": "2022-09-01"}
    response = lead.post("/site-devices", data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "choisissez une modalité" in page and "INV-42" in page
    assert lead.post("/site-devices", data={**data, "modality": "DX", "site_id": "ch-morlaix"}).status_code == 403
    assert _rows(demo_ctx, SiteDeviceRow) == []
    assert lead.post("/site-devices", data={**data, "modality": "DX"}).status_code == 302
    assert [r.serial for r in _rows(demo_ctx, SiteDeviceRow)] == ["INV-42"]


@pytest.mark.charter("CH-5.2", negative=True)
def test_CH5_2_reading_stations_page_is_distinct_from_dicom_stations_and_personal(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    page = client.get("/account/reading-stations").get_data(as_text=True)
    assert "Mes postes de lecture" in page and "/account/workstations" in page  # the DICOM stations, apart
    data = {"name": "Poste domicile", "display_model": "Eizo RadiForce RX360", "declared_on": "2025-11-01",
            "reference": "Contrôle de qualité annuel (11/2025)."}
    response = client.post("/account/reading-stations", data=data)  # the declaration not ticked
    assert response.status_code == 400 and "écran de diagnostic conforme" in response.get_data(as_text=True)
    assert "Eizo RadiForce RX360" in response.get_data(as_text=True)
    assert client.post("/account/reading-stations", data={**data, "conformity": "yes"}).status_code == 302
    (row,) = _rows(demo_ctx, ReadingStationRow)
    assert (row.username, row.conformity_declared) == ("dr.legall", True)
    admin = login(app, demo_ctx, clock, "admin")
    page = admin.get("/account/reading-stations").get_data(as_text=True)
    assert "Poste domicile" in page and "Dr Yann Le Gall" in page and "Déclarer un poste" not in page
    assert admin.post("/account/reading-stations", data={**data, "conformity": "yes"}).status_code == 403
    other = login(app, demo_ctx, clock, "dr.morvan")
    assert "Poste domicile" not in other.get("/account/reading-stations").get_data(as_text=True)
    assert other.post(f"/account/reading-stations/{row.id}/delete").status_code == 404  # a forged id
    assert len(_rows(demo_ctx, ReadingStationRow)) == 1
    assert client.post(f"/account/reading-stations/{row.id}/delete").status_code == 302
    assert _rows(demo_ctx, ReadingStationRow) == []


@pytest.mark.charter("CH-5.6")
def test_CH5_6_the_overdue_visits_partial_renders_for_the_dashboard(app, demo_ctx, clock):
    record_visit(demo_ctx, LEGALL, "ch-brest", "", "2025-01-04", "Visite.", [_protocol(demo_ctx)])
    declare_station(demo_ctx, LEGALL, "Poste", "Écran", True, "2025-11-01", "Contrôle.")  # not in the partial
    overdue = overdue_visits(demo_ctx, date(2026, 1, 5), site_id="ch-brest")
    with app.test_request_context("/"):
        html = render_template("admin/_overdue_visits.html", overdue_visits=overdue)
        empty = render_template("admin/_overdue_visits.html", overdue_visits=[])
    assert "Visites de sites en retard" in html and "Dr Yann Le Gall" in html and "04/01/2025" in html
    assert "1 jour" in html and "Jamais visité" in html and "Dr Anne Morvan" in html
    assert "Aucune visite de site en retard." in empty


@pytest.mark.charter("CH-5.6", negative=True)
def test_CH5_6_a_radiologist_bound_to_no_site_records_no_visit(app, demo_ctx, clock):
    local = login(app, demo_ctx, clock, "dr.kerbrat")  # a local radiologist, named in no convention
    page = local.get("/site-visits").get_data(as_text=True)
    assert 'id="no-bound-site"' in page and "Enregistrer la visite" not in page
    response = local.post("/site-visits", data={"site_id": "ch-morlaix", "visited_on": "2025-12-01",
                                                "findings": "Visite", "protocols": [_protocol(demo_ctx)]})
    assert response.status_code == 400 and "aucune convention active" in response.get_data(as_text=True)
    assert _rows(demo_ctx, SiteVisitRow) == []
