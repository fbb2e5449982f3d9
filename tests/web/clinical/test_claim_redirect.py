"""Claiming a task sends the browser back only to a page of this site (issue 16: `POST /tasks/<id>/claim`
followed an external `next`)."""

from __future__ import annotations

import pytest

from tests import demo_app
from tests.demo_app import case_of, login, open_task

app, demo_ctx = demo_app.app, demo_app.demo_ctx  # the web app on the demo data (fixtures)


@pytest.mark.charter("CH-8.1", negative=True)
@pytest.mark.parametrize("target", ["https://evil.example/phish", "//evil.example/", "/\\evil.example",
                                    "javascript:alert(1)", "/login?next=https://evil.example"])
def test_claim_refuses_to_send_the_browser_elsewhere(app, demo_ctx, clock, target):
    client = login(app, demo_ctx, clock, "dr.legall")
    task_id = open_task(demo_ctx, case_of(demo_ctx, patient_name="KERMARREC YANN"), "accept_case")
    response = client.post(f"/tasks/{task_id}/claim", data={"next": target})
    assert response.status_code == 302 and response.headers["Location"] == "/inbox"


def test_claim_goes_back_to_the_page_it_came_from(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    case_id = case_of(demo_ctx, patient_name="KERMARREC YANN")
    response = client.post(f"/tasks/{open_task(demo_ctx, case_id, 'accept_case')}/claim",
                           data={"next": f"/cases/{case_id}"})
    assert response.status_code == 302 and response.headers["Location"] == f"/cases/{case_id}"
