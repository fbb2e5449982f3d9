"""Declaring the sites' PACS (prior exams, issue 18 item 5): `telerad dicom pacs set/remove/list` and the
section of the DICOM administration page; administrators only, every change on the global audit chain."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine.services.keyring import KeyRing
from engine.store.models import AuditEvent
from integrations.dicom.callers import caller_access
from integrations.dicom.pacs import list_pacs
from tests.demo_app import login
from tests.integration import dicom_support
from web.cli.main import main

dicom_ctx, app = dicom_support.dicom_ctx, dicom_support.dicom_app  # fixtures


def _pacs_events(ctx) -> list[tuple[str, str]]:
    with ctx.read() as session:
        return [(action, actor) for action, actor in session.execute(
            select(AuditEvent.action, AuditEvent.actor).where(AuditEvent.chain == 0,
                                                              AuditEvent.action.like("dicom.pacs%"))
            .order_by(AuditEvent.seq)).all()]


@pytest.fixture
def telerad(database_url, tmp_path):
    keys = tmp_path / "keys.json"
    KeyRing.development().save(keys)
    env = {"TELERAD_DATABASE_URL": database_url, "TELERAD_INSTANCE_PATH": str(tmp_path / "instance"),
           "TELERAD_KEYS_FILE": str(keys)}

    def invoke(*arguments: str):
        return CliRunner().invoke(main, ["dicom", "pacs", *arguments], env=env)
    return invoke


def test_the_pacs_commands(dicom_ctx, telerad):
    assert telerad("list").output.strip() == "aucun PACS déclaré"
    done = telerad("set", "ch-brest", "PACS_BREST", "pacs.chu-brest.example", "104", "--dicomweb-url",
                   "https://pacs.chu-brest.example/dicom-web")
    assert done.exit_code == 0, done.output
    assert telerad("list").output.strip() == \
        "ch-brest\tPACS_BREST\tpacs.chu-brest.example:104\thttps://pacs.chu-brest.example/dicom-web"
    assert caller_access(dicom_ctx, "PACS_BREST").site_id == "ch-brest"
    refused = telerad("set", "ch-brest", "PACS_BREST", "pacs.chu-brest.example", "70000")
    assert refused.exit_code != 0 and "Port du PACS invalide" in refused.output
    unknown = telerad("set", "nowhere", "PACS_X", "127.0.0.1", "104")
    assert unknown.exit_code != 0 and "Site inconnu" in unknown.output
    assert telerad("remove", "ch-brest").exit_code == 0
    assert list_pacs(dicom_ctx) == []
    again = telerad("remove", "ch-brest")
    assert again.exit_code != 0 and "aucun PACS" in again.output
    assert _pacs_events(dicom_ctx) == [("dicom.pacs_set", "cli"), ("dicom.pacs_removed", "cli")]


def test_the_pacs_section_of_the_dicom_page(app, dicom_ctx, clock):
    admin = login(app, dicom_ctx, clock, "admin")
    assert "Aucun PACS déclaré" in admin.get("/admin/dicom").get_data(as_text=True)
    refused = admin.post("/admin/dicom/pacs", data={"site_id": "ch-brest", "ae_title": "PACS_BREST",
                                                    "host": "pacs.example", "port": "x"}, follow_redirects=True)
    assert "Port du PACS invalide" in refused.get_data(as_text=True) and list_pacs(dicom_ctx) == []
    page = admin.post("/admin/dicom/pacs", data={"site_id": "ch-brest", "ae_title": "PACS_BREST",
                                                 "host": "pacs.example", "port": "104"},
                      follow_redirects=True).get_data(as_text=True)
    assert "PACS du site enregistré." in page and "pacs.example:104" in page
    assert [(p.site_id, p.ae_title, p.port, p.updated_by) for p in list_pacs(dicom_ctx)] \
        == [("ch-brest", "PACS_BREST", 104, "admin")]
    technologist = login(app, dicom_ctx, clock, "merm.leroy")
    assert technologist.post("/admin/dicom/pacs", data={"site_id": "ch-brest", "ae_title": "X", "host": "h",
                                                        "port": "1"}).status_code == 403
    assert technologist.post("/admin/dicom/pacs/ch-brest/delete").status_code == 403
    assert admin.post("/admin/dicom/pacs/ch-brest/delete").status_code == 302
    assert admin.post("/admin/dicom/pacs/ch-brest/delete").status_code == 404
    assert list_pacs(dicom_ctx) == []
    assert _pacs_events(dicom_ctx) == [("dicom.pacs_set", "admin"), ("dicom.pacs_removed", "admin")]
