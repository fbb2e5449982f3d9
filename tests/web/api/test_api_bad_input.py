"""Bad input on the JSON API: every route of the `api` blueprint gets the corpus of tests/data/bad_input/ (see its
README) and must answer a client error in French JSON, never a 5xx, and write nothing."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.services.accounts import issue_api_token
from engine.store.directory_models import CaseMessage
from engine.store.models import AuditEvent, ProcessInstance, Task
from tests import demo_app
from tests.demo_app import case_of, open_task
from web.config import PROJECT_ROOT

app, demo_ctx = demo_app.app, demo_app.demo_ctx  # the web app on the demo data (fixtures)

CORPUS = PROJECT_ROOT / "tests" / "data" / "bad_input"
BODIES = json.loads((CORPUS / "api_bodies.json").read_text(encoding="utf-8"))
PARAMETERS = json.loads((CORPUS / "api_parameters.json").read_text(encoding="utf-8"))
LONG = "9" * 20000
ENGLISH = re.compile(r"\b(the|server|browser|not found|method)\b", re.IGNORECASE)
READS_BODY = {"POST /api/v1/cases", "POST /api/v1/cases/<int:case_id>/messages",
              "POST /api/v1/tasks/<task_id>/complete"}


def raw_body(case: dict[str, Any], site: str = "ch-brest") -> bytes:
    if "nested" in case:
        nested = case["nested"]
        text = nested["open"] * nested["depth"] + "1" + nested["close"] * nested["depth"]
    elif "repeat" in case:
        repeat = case["repeat"]
        text = repeat["before"] + repeat["unit"] * repeat["times"] + repeat["after"]
    else:
        text = case["body"]
    return text.replace("@SITE", site).encode(case.get("encoding", "utf-8"), errors="surrogatepass")


def api_rules(application) -> list[tuple[str, str]]:
    """(method, rule) of every route of the api blueprint, read from the url_map."""
    rules = [rule for rule in application.url_map.iter_rules() if rule.endpoint.startswith("api.")]
    return sorted((method, rule.rule) for rule in rules for method in rule.methods - {"HEAD", "OPTIONS"})


def row_counts(ctx) -> dict[str, int]:
    with ctx.read() as session:
        return {model.__tablename__: session.execute(select(func.count()).select_from(model)).scalar_one()
                for model in (ProcessInstance, Task, AuditEvent, CaseMessage)}


def client_error(response) -> str | None:
    """Why this response is not a French JSON client error, or None if it is one."""
    if response.status_code >= 500 or response.status_code < 400:
        return f"status {response.status_code}"
    body = response.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("message"), str) or "error" not in body:
        return f"status {response.status_code}, not a JSON error: {response.get_data()[:120]!r}"
    if ENGLISH.search(body["message"]):
        return f"status {response.status_code}, not French: {body['message']}"
    return None


@pytest.fixture
def api(app, demo_ctx):
    case_id = case_of(demo_ctx, patient_name="KERMARREC YANN")
    task_id = open_task(demo_ctx, case_id, "accept_case")
    radiologist = {"Authorization": f"Bearer {issue_api_token(demo_ctx, 'dr.legall', 'tests')}"}
    requester = {"Authorization": f"Bearer {issue_api_token(demo_ctx, 'dr.martin', 'tests')}"}

    def send(method: str, rule: str, body: bytes | None = None, content_type: str = "application/json",
             task: str = task_id, case: str = str(case_id), query: str = "") -> Any:
        url = rule.replace("<task_id>", task).replace("<int:case_id>", case) + (f"?{query}" if query else "")
        headers = requester if rule == "/api/v1/cases" else radiologist
        if content_type:
            headers = {**headers, "Content-Type": content_type}
        return app.test_client().open(url, method=method, data=body, headers=headers)

    return send


def test_malformed_bodies_get_400_on_every_route(app, demo_ctx, api):
    before = row_counts(demo_ctx)
    failures = []
    for method, rule in api_rules(app):
        if method != "POST":
            continue
        for case in BODIES["malformed"]:
            response = api(method, rule, raw_body(case), case.get("content_type", "application/json"))
            why = client_error(response) or (None if response.status_code == 400 else f"{response.status_code}")
            if why:
                failures.append(f"{method} {rule} {case['id']}: {why}")
    assert failures == [], "\n".join(failures)
    assert row_counts(demo_ctx) == before


def test_bodies_of_the_wrong_shape_are_refused_with_nothing_written(app, demo_ctx, api):
    before = row_counts(demo_ctx)
    failures = []
    for method, rule in api_rules(app):
        route = f"{method} {rule}"
        if route not in READS_BODY:
            continue
        for case in BODIES["shape"] + BODIES["per_route"][route]:
            response = api(method, rule, raw_body(case), case.get("content_type", "application/json"))
            refused = response.status_code in (400, 404, 422)
            why = client_error(response) or (None if refused else f"{response.status_code}")
            if why:
                failures.append(f"{route} {case['id']}: {why}")
    assert failures == [], "\n".join(failures)
    assert row_counts(demo_ctx) == before


def test_bad_path_and_query_parameters_never_give_5xx(app, demo_ctx, api):
    before = row_counts(demo_ctx)
    failures = []
    for method, rule in api_rules(app):
        cases: list[dict[str, str]] = []
        if "<task_id>" in rule:
            cases += [{"task": value.replace("@LONG", LONG)} for value in PARAMETERS["task_id"]]
        if "<int:case_id>" in rule:
            cases += [{"case": value.replace("@LONG", LONG)} for value in PARAMETERS["case_id"]]
        if "<" not in rule and method == "GET":
            cases += [{"query": value.replace("@LONG", LONG)} for value in PARAMETERS["query"]]
        for case in cases:
            response = api(method, rule, b"{}" if method == "POST" else None, **case)
            if rule.endswith("openapi.json") or (rule in ("/api/v1/tasks", "/api/v1/cases") and "query" in case):
                failed = None if response.status_code in (200, 400) else f"status {response.status_code}"
            else:
                # werkzeug answers 405 (not 404) to a POST whose integer in the path is too long to convert
                failed = client_error(response) or (None if response.status_code in (400, 404, 405, 422) else "")
            if failed is not None:
                failures.append(f"{method} {rule} {case}: {failed}"[:300])
    assert failures == [], "\n".join(failures)
    assert row_counts(demo_ctx) == before


def test_valid_unicode_still_passes(app, demo_ctx, api):
    """The checks refuse what cannot be valid, not what is merely unusual: an emoji (a surrogate pair in JSON),
    accents and a nested request are accepted."""
    response = api("POST", "/api/v1/cases/<int:case_id>/messages", b'{"body": "Vu \\ud83d\\ude00 \xc3\xa9t\xc3\xa9"}')
    assert response.status_code == 201, response.get_data()
    messages = api("GET", "/api/v1/cases/<int:case_id>/messages").get_json()["messages"]
    assert messages[-1]["body"] == "Vu \U0001F600 été"


def test_the_refusal_says_what_is_wrong_and_where(app, demo_ctx, api):
    rule = "/api/v1/cases/<int:case_id>/messages"
    cases = {b'{"body": "a\\u0000b"}': "Caractère non autorisé dans « body ».",
             b'{"note": {"x": ["\\ud800"]}}': "Caractère non autorisé dans « note.x[0] ».",
             b"[" * 40 + b"]" * 40: "JSON trop imbriqué (au plus 32 niveaux).",
             b'{"body": 1e400}': "Nombre hors limites dans « body ».",
             b'{"body": NaN}': "Valeur non autorisée dans le JSON : NaN."}
    for body, message in cases.items():
        response = api("POST", rule, body)
        assert (response.status_code, response.get_json()) == (400, {"error": "bad_request", "message": message})
    response = api("GET", "/api/v1/cases/<int:case_id>", case=str(10**40))
    assert response.get_json()["message"] == "Identifiant hors limites dans « case_id »."
