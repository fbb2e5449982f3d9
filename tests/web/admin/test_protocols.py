"""The protocol catalogue page (CH-4.1.9, CH-4.1.10): administrators list, create, edit and (de)activate
protocols, each change audited; everyone else gets 403; forms carry a CSRF token."""

from __future__ import annotations

import html
import json
import re

import pytest
from sqlalchemy import select

from engine.store.models import AuditEvent
from engine.store.protocol_models import ProtocolRow
from tests import demo_app
from tests.integration.test_protocol_catalogue import reset_catalogue

app, demo_ctx = demo_app.app, demo_app.demo_ctx
login = demo_app.login
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
NEW = {"protocol_id": "ct_sinus_plain", "label": "Scanner des sinus", "modality": "CT", "agent_class": "",
       "body_region": "sinus", "patient_groups": ["adult", "child"], "active": "y", "submit": "1"}


@pytest.fixture
def catalogue(demo_ctx):
    reset_catalogue(demo_ctx)
    yield demo_ctx
    reset_catalogue(demo_ctx)


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def actions(ctx, prefix: str = "protocol.") -> list[tuple[str, str, dict]]:
    with ctx.read() as session:
        rows = session.execute(select(AuditEvent.actor, AuditEvent.action, AuditEvent.detail)
                               .where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.id)).all()
    return [(actor, action, json.loads(detail)) for actor, action, detail in rows]


def stored(ctx, protocol_id: str) -> ProtocolRow | None:
    with ctx.read() as session:
        return session.get(ProtocolRow, protocol_id)


@pytest.mark.charter("CH-4.1.9")
def test_the_list_shows_each_protocol_in_french(app, catalogue, clock):
    client = login(app, catalogue, clock, "admin")
    page = text(client.get("/admin/protocols"))
    for heading in ("Modalité", "Irradiant", "Produit de contraste", "Région anatomique", "Patients concernés",
                    "Actif"):
        assert f">{heading}</th>" in page
    row = re.search(r"<tr>\s*<td>Scanner cérébral avec injection<.*?</tr>", page, re.S).group(0)
    assert "Scanner (CT)" in row and "Produit de contraste iodé" in row and "tête" in row and "Enfant" in row
    assert ">oui<" in row  # ionizing
    row = re.search(r"<tr>\s*<td>IRM cérébrale<.*?</tr>", page, re.S).group(0)
    assert "Aucune injection" in row and "Femme enceinte" in row and ">non<" in row
    filtered = text(client.get("/admin/protocols?modality=US"))
    assert "Échographie abdominale" in filtered and "Scanner cérébral" not in filtered


@pytest.mark.charter("CH-4.1.9")
def test_an_administrator_creates_edits_and_deactivates_a_protocol(app, catalogue, clock):
    client = login(app, catalogue, clock, "admin")
    assert "Nouveau protocole" in text(client.get("/admin/protocols/new"))
    response = client.post("/admin/protocols/new", data=NEW)
    assert response.status_code == 302, text(response)
    assert "Scanner des sinus" in text(client.get("/admin/protocols"))
    page = text(client.get("/admin/protocols/ct_sinus_plain/edit"))
    assert 'value="Scanner des sinus"' in page and "ne changent pas" in page
    response = client.post("/admin/protocols/ct_sinus_plain/edit", data={
        "label": "Scanner des sinus (coupes fines)", "body_region": "sinus", "patient_groups": ["adult"],
        "active": "y", "submit": "1"})
    assert response.status_code == 302, text(response)
    row = stored(catalogue, "ct_sinus_plain")
    assert (row.label, row.modality, row.agent_class, row.patient_groups, row.updated_by) == (
        "Scanner des sinus (coupes fines)", "CT", None, '["adult"]', "admin")
    assert client.post("/admin/protocols/ct_sinus_plain/active", data={"active": "0"}).status_code == 302
    assert stored(catalogue, "ct_sinus_plain").active is False
    assert "Réactiver" in text(client.get("/admin/protocols?modality=CT"))
    assert [(a, action) for a, action, _d in actions(catalogue)] == [
        ("admin", "protocol.created"), ("admin", "protocol.updated"), ("admin", "protocol.deactivated")]


@pytest.mark.charter("CH-4.1.9", negative=True)
def test_invalid_input_is_refused_in_french_and_kept(app, catalogue, clock):
    client = login(app, catalogue, clock, "admin")
    page = text(client.post("/admin/protocols/new", data={**NEW, "protocol_id": "ct sinus"}))
    assert "Identifiant de protocole invalide" in page and 'value="Scanner des sinus"' in page
    page = text(client.post("/admin/protocols/new", data={**NEW, "patient_groups": []}))
    assert "Groupes de patients : choisissez parmi adulte, enfant, femme enceinte." in page
    page = text(client.post("/admin/protocols/new", data={**NEW, "label": ""}))
    assert "Saisissez le libellé." in page
    page = text(client.post("/admin/protocols/new", data={**NEW, "protocol_id": "ct_head_plain"}))
    assert "existe déjà" in page
    # A forged edit of the modality or the agent class is ignored: those fields are fixed once created
    client.post("/admin/protocols/ct_head_plain/edit", data={
        "label": "Scanner cérébral sans injection", "modality": "MR", "agent_class": "iodine", "body_region": "tête",
        "patient_groups": ["adult", "child"], "active": "y", "submit": "1"})
    row = stored(catalogue, "ct_head_plain")
    assert (row.modality, row.agent_class) == ("CT", None)
    assert stored(catalogue, "ct_sinus_plain") is None
    assert [action for _a, action, _d in actions(catalogue)] == ["protocol.updated"]
    assert client.get("/admin/protocols/no_such/edit").status_code == 404
    assert client.post("/admin/protocols/no_such/active", data={"active": "0"}).status_code == 404


@pytest.mark.charter("CH-4.1.9", negative=True)
def test_clinicians_get_403_on_every_route(app, catalogue, clock):
    for username in ("dr.legall", "dr.martin"):
        client = login(app, catalogue, clock, username)
        assert client.get("/admin/protocols").status_code == 403
        assert client.get("/admin/protocols/new").status_code == 403
        assert client.post("/admin/protocols/new", data=NEW).status_code == 403
        assert client.get("/admin/protocols/ct_head_plain/edit").status_code == 403
        assert client.post("/admin/protocols/ct_head_plain/edit", data={**NEW, "label": "X"}).status_code == 403
        assert client.post("/admin/protocols/ct_head_plain/active", data={"active": "0"}).status_code == 403
    assert stored(catalogue, "ct_head_plain").active and stored(catalogue, "ct_sinus_plain") is None
    assert actions(catalogue) == []


@pytest.mark.charter("CH-8.1", negative=True)
def test_changes_need_the_page_csrf_token(app, catalogue, clock):
    client = login(app, catalogue, clock, "admin")
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.post("/admin/protocols/new", data=NEW).status_code == 400
    assert client.post("/admin/protocols/ct_head_plain/active", data={"active": "0"}).status_code == 400
    assert stored(catalogue, "ct_sinus_plain") is None and stored(catalogue, "ct_head_plain").active
    token = CSRF.search(client.get("/admin/protocols/new").get_data(as_text=True)).group(1)
    assert client.post("/admin/protocols/new", data={**NEW, "csrf_token": token}).status_code == 302
    token = CSRF.search(client.get("/admin/protocols").get_data(as_text=True)).group(1)
    assert client.post("/admin/protocols/ct_head_plain/active",
                       data={"active": "0", "csrf_token": token}).status_code == 302
    assert stored(catalogue, "ct_sinus_plain") is not None and not stored(catalogue, "ct_head_plain").active
