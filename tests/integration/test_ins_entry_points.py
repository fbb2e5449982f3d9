"""The INS key check (CH-4.1.6, CH-8.1) where a case starts from the JSON API: an INS whose key does not match its
number is refused field by field (422), and no case is created; the same request with a good INS starts one."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine.domain.identity import nir_key
from engine.services.accounts import issue_api_token
from engine.services.instances import case_data
from engine.store.models import ProcessInstance
from tests.integration import dicom_support
from web.cli.demo_data import demo_request

dicom_ctx, app = dicom_support.dicom_ctx, dicom_support.dicom_app  # fixtures

NIR = "1600929123456"
GOOD_INS = f"{NIR}{nir_key(NIR):02d}"
BAD_INS = f"{NIR}{(nir_key(NIR) % 97) + 1:02d}"


def _cases(ctx) -> int:
    with ctx.read() as session:
        return int(session.execute(select(func.count()).select_from(ProcessInstance)).scalar_one())


@pytest.mark.charter("CH-4.1.6", negative=True)
@pytest.mark.charter("CH-8.1", negative=True)
def test_api_case_with_an_ins_whose_key_is_wrong_is_refused(app, dicom_ctx):  # noqa: F811
    token = issue_api_token(dicom_ctx, "dr.martin", "tests")
    client = app.test_client()
    before = _cases(dicom_ctx)
    patient = {**demo_request()["patient"], "ins": BAD_INS}
    response = client.post("/api/v1/cases", json={"process": "telediagnosis", "site_id": "ch-brest",
                                                  "request": demo_request(patient=patient)},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422
    body = response.get_json()
    assert "INS invalide" in str(body) and "patient.ins" in str(body)
    assert _cases(dicom_ctx) == before
    patient["ins"] = GOOD_INS
    created = client.post("/api/v1/cases", json={"process": "telediagnosis", "site_id": "ch-brest",
                                                 "request": demo_request(patient=patient)},
                          headers={"Authorization": f"Bearer {token}"})
    assert created.status_code == 201
    assert case_data(dicom_ctx, created.get_json()["id"])["patient"]["ins"] == GOOD_INS
