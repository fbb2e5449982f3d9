"""Every form of every page, as each demo role sees it, fed with the bad values of tests/data/bad_input/
(form_values.json): no 5xx, and nothing written when a text holds a NUL byte (issue 16). The forms are found by
crawling the pages from the home page; each field in turn gets each bad value, the others keep their defaults.
Then every page's path and query parameters, and the designer's JSON requests."""

from __future__ import annotations

import io
import json
import re
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from tests import demo_app
from tests.demo_app import login
from tests.web.clinical.test_task_bad_input import row_counts
from web.config import PROJECT_ROOT

app, demo_ctx = demo_app.app, demo_app.demo_ctx  # the web app on the demo data (fixtures)

_CORPUS = json.loads((PROJECT_ROOT / "tests" / "data" / "bad_input" / "form_values.json").read_text(encoding="utf-8"))
VALUES = {kind: [value.replace("@LONG", "x" * 70000) for value in values] for kind, values in _CORPUS.items()}
SKIP = ("/logout", "/static/", "/login")
_SAME_PAGE = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}|\d+")  # one form per kind of page: /cases/N/messages


class Forms(HTMLParser):
    """The links and the POST forms of a page: action, fields (name -> default value) and file inputs."""

    def __init__(self, url: str):
        super().__init__(convert_charrefs=True)
        self.url, self.links, self.forms = url, [], []
        self._form: dict[str, Any] | None = None
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href", "").startswith("/"):
            self.links.append(unescape(a["href"]).split("#")[0])
        elif tag == "form" and a.get("method", "get").lower() == "post":
            self._form = {"action": urljoin(self.url, a.get("action") or self.url), "fields": {}, "files": [],
                          "checkboxes": set()}
            self.forms.append(self._form)
        elif self._form is None or not a.get("name"):
            return
        elif tag == "input" and a.get("type") == "file":
            self._form["files"].append(a["name"])
        elif tag == "input" and a.get("type") in ("checkbox", "radio"):
            if a.get("type") == "checkbox":
                self._form["checkboxes"].add(a["name"])  # any value ticks it: the text itself is never stored
            if "checked" in a or a["name"] not in self._form["fields"]:
                self._form["fields"][a["name"]] = a.get("value", "y")
        elif tag == "input" and a.get("type") not in ("submit", "button", "reset", "image"):
            self._form["fields"][a["name"]] = a.get("value", "")
        elif tag == "button" and a.get("type", "submit") == "submit":
            self._form["fields"].setdefault(a["name"], a.get("value", ""))
        elif tag == "textarea":
            self._textarea = a["name"]
            self._form["fields"][a["name"]] = ""
        elif tag == "select":
            self._select = a["name"]
            self._form["fields"][a["name"]] = ""
        elif tag == "option" and self._select and not self._form["fields"][self._select]:
            self._form["fields"][self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._form is not None and self._textarea:
            self._form["fields"][self._textarea] += data


def crawl(app, client, limit: int = 120) -> list[dict[str, Any]]:
    adapter = app.url_map.bind("localhost")
    seen: set[str] = set()
    queue, forms = ["/"], {}
    while queue and len(seen) < limit:
        url = queue.pop(0)
        if url in seen or url.startswith(SKIP):
            continue
        seen.add(url)
        response = client.get(url)
        if response.status_code in (301, 302, 303) and response.location:
            queue.append(urlsplit(response.location).path)
        if response.status_code != 200 or "text/html" not in response.content_type:
            continue
        page = Forms(url)
        page.feed(response.get_data(as_text=True))
        queue += [link for link in page.links if link not in seen]
        for form in page.forms:
            path = urlsplit(form["action"]).path
            endpoint = adapter.match(path, method="POST")[0] if not path.startswith(SKIP) else path
            forms.setdefault((endpoint, tuple(sorted(form["fields"]))), form)
    return [form for (endpoint, _), form in sorted(forms.items()) if not endpoint.startswith(SKIP)]


@pytest.mark.parametrize("username", ["dr.martin", "dr.legall", "admin", "designer"])
def test_every_form_refuses_bad_values_without_a_5xx(app, demo_ctx, clock, username):
    client = login(app, demo_ctx, clock, username)
    failures = []
    for form in crawl(app, client):
        path = urlsplit(form["action"]).path
        for field in [*form["fields"], *form["files"]]:
            for value in VALUES["text"] if field not in form["files"] else VALUES["file_names"]:
                data: dict[str, Any] = dict(form["fields"])
                if field in form["files"]:
                    data[field] = (io.BytesIO(b"\x00\xff%PDF"), value, "application/octet-stream")
                else:
                    data[field] = value
                before = row_counts(demo_ctx) if "\x00" in value and field not in form["checkboxes"] else None
                response = client.post(path, data=data, content_type="multipart/form-data")
                if response.status_code >= 500:
                    failures.append(f"{username} POST {path} {field}={value[:20]!r}: {response.status_code}")
                elif before is not None and row_counts(demo_ctx) != before:
                    failures.append(f"{username} POST {path} {field}={value[:20]!r}: rows written")
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize("username", ["dr.legall", "admin", "designer"])
def test_bad_path_and_query_values_on_every_page_never_give_5xx(app, demo_ctx, clock, username):
    client = login(app, demo_ctx, clock, username)
    failures = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api/", "/static/", "/logout")) or "GET" not in rule.methods:
            continue
        urls = [f"{rule.rule}?q=%00&status=a%00b&page=10000000000000000000000000000000000000000"]
        for bad_int, bad_text in (("10000000000000000000000000000000000000000", "%00"), ("0", "a%00b")):
            url = rule.rule
            for name, converter in rule._converters.items():
                value = bad_int if converter.__class__.__name__ == "IntegerConverter" else bad_text
                url = re.sub(rf"<[^>]*\b{name}>", value, url)
            urls.append(url)
        for url in urls if rule.arguments else urls[:1]:
            response = client.get(url)
            if response.status_code >= 500:
                failures.append(f"{username} GET {url[:120]}: {response.status_code}")
    assert failures == [], "\n".join(failures)


def test_designer_json_requests_refuse_malformed_bodies_with_a_400(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "designer")
    deep = "[" * 5000 + "]" * 5000
    for body in (deep, '{"files": {"a.bpmn": "<x>\\u0000</x>"}, "revision": 1}',
                 '{"files": {}, "revision": 10000000000000000000000000000000000000000}', '{"files": "\\ud800"}'):
        for url in ("/designer/processes/telediagnosis/draft", "/designer/forms/preview"):
            response = client.post(url, data=body, content_type="application/json")
            assert response.status_code == 400, (url, body[:40], response.status_code)
            assert response.get_json()["message"]
