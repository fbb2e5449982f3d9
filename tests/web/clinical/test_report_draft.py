"""The report's draft (issue 17, item 5): autosaved from the report task page, read and written by its author only
(the radiologist holding the task), given back to prefill the page; never holding the signature code."""

from __future__ import annotations

import html
import json

import pytest
from sqlalchemy import func, select

from engine.store.report_models import ReportDraft
from tests import demo_app
from tests.demo_app import case_of, login, open_task
from tests.web.clinical.test_charter_negative_pages import xr_case_at_interpretation

app, demo_ctx = demo_app.app, demo_app.demo_ctx

DRAFT = {"outcome": "report", "findings": "Trait de fracture <b>non déplacé</b> \"radius\".", "conclusion": "",
         "urgent_finding": False, "signature_code": "123456"}


def drafts(ctx) -> int:
    with ctx.read() as session:
        return session.execute(select(func.count()).select_from(ReportDraft)).scalar_one()


@pytest.mark.charter("CH-5.3")
def test_the_author_autosaves_and_reads_back_his_draft_and_the_page_is_prefilled(app, demo_ctx, clock):
    task_id = open_task(demo_ctx, xr_case_at_interpretation(demo_ctx), "interpret")
    client = login(app, demo_ctx, clock, "dr.legall")
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "data-report-draft" in page and "js/report-draft.js" in page
    assert client.get(f"/tasks/{task_id}/draft").get_json() == {"fields": {}, "updated_at": None}
    assert client.post(f"/tasks/{task_id}/draft", json={"fields": DRAFT}).status_code == 200
    clock.advance(seconds=5)
    assert client.post(f"/tasks/{task_id}/draft", json={"fields": DRAFT}).status_code == 200  # replaced
    saved = client.get(f"/tasks/{task_id}/draft").get_json()
    assert saved["fields"]["findings"] == DRAFT["findings"] and "signature_code" not in saved["fields"]
    assert drafts(demo_ctx) == 1
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "Brouillon enregistré à" in page
    start = page.index('data-draft="') + len('data-draft="')
    attribute = page[start:page.index('"', start)]
    assert "<b>" not in attribute  # escaped in the attribute
    assert json.loads(html.unescape(attribute))["findings"] == DRAFT["findings"]


@pytest.mark.charter("CH-5.3", negative=True)
@pytest.mark.parametrize("who", ["dr.morvan", "dr.martin", "merm.leroy"])
def test_nobody_else_reads_or_writes_the_draft(app, demo_ctx, clock, who):
    task_id = open_task(demo_ctx, xr_case_at_interpretation(demo_ctx), "interpret")
    author = login(app, demo_ctx, clock, "dr.legall")
    assert author.post(f"/tasks/{task_id}/draft", json={"fields": DRAFT}).status_code == 200
    other = login(app, demo_ctx, clock, who)
    read = other.get(f"/tasks/{task_id}/draft")
    assert read.status_code in (403, 404) and "radius" not in read.get_data(as_text=True)
    assert other.post(f"/tasks/{task_id}/draft", json={"fields": {"findings": "autre"}}).status_code in (403, 404)
    assert author.get(f"/tasks/{task_id}/draft").get_json()["fields"]["findings"] == DRAFT["findings"]
    assert "data-report-draft" not in other.get(f"/tasks/{task_id}").get_data(as_text=True)


def test_a_bad_body_or_an_unknown_task_is_refused_without_a_500(app, demo_ctx, clock):
    task_id = open_task(demo_ctx, xr_case_at_interpretation(demo_ctx), "interpret")
    client = login(app, demo_ctx, clock, "dr.legall")
    for body in (None, [], {"fields": []}, {"fields": {"bad name": "x"}}, {"fields": {"findings": {"a": 1}}},
                 {"fields": {"findings": "x" * 40_000}}):
        response = client.post(f"/tasks/{task_id}/draft", data=json.dumps(body), content_type="application/json")
        assert response.status_code == 400, body
    assert client.post(f"/tasks/{task_id}/draft", data="{", content_type="application/json").status_code == 400
    assert client.post("/tasks/no-such-task/draft", json={"fields": {}}).status_code == 404
    assert client.get("/tasks/no-such-task/draft").status_code == 404
    other_task = open_task(demo_ctx, case_of(demo_ctx, patient_name="KERMARREC YANN"), "accept_case")
    assert client.post(f"/tasks/{other_task}/draft", json={"fields": {}}).status_code == 404  # not a report task
    assert drafts(demo_ctx) == 0


def test_anonymous_visitors_are_sent_to_the_login(app, demo_ctx):
    task_id = open_task(demo_ctx, xr_case_at_interpretation(demo_ctx), "interpret")
    response = app.test_client().post(f"/tasks/{task_id}/draft", json={"fields": {}})
    assert response.status_code in (302, 401)
