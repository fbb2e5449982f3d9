"""No internal code is ever shown to a user (issue 17, item 1): every page reachable by following links, for every
demo user on the demo data, is read as a person reads it (text only, no markup or attributes), and no process
id, site or territory id, role code, timer setting or enum value of a form may appear in it."""

from __future__ import annotations

import html
import json
import re
from collections import deque

import pytest

from engine.domain.account_roles import ACCOUNT_ROLES
from engine.domain.escalation import DEFAULT_ESCALATION
from tests import demo_app
from web.cli.demo_data import USERS
from web.config import PROJECT_ROOT

app, demo_ctx = demo_app.app, demo_app.demo_ctx
PAGES_PER_USER = 120  # bounded crawl: the demo has a handful of cases
SKIPPED = re.compile(r"^/(static|logout|login|language|debug)|\.(png|bpmn|json|csv|pdf|dcm|zip)(\?|$)|/attachments/")
HIDDEN = re.compile(r"<(script|style|template)\b.*?</\1>|<!--.*?-->", re.S | re.I)
# Administrators, designers and auditors configure the system by identifiers (HL7 senders, the command line,
# ISO durations): beside its French label, an identifier may be shown to them as such, in a <code> element or
# after the label and a dash in a list of choices ("CH de Brest — ch-brest").
IDENTIFIER = re.compile(r"<code\b[^>]*>.*?</code>|(?<=\S) — [a-z0-9][\w.-]*(?=\s*<)", re.S | re.I)
TECHNICAL = {"administrator", "process_designer", "auditor"}
TAG = re.compile(r"<[^>]+>")
HREF = re.compile(r'href="(/[^"#]*)')


def visible_text(page: str, technical: bool = False) -> str:
    page = HIDDEN.sub(" ", page)
    return html.unescape(TAG.sub(" ", IDENTIFIER.sub(" ", page) if technical else page))


def internal_codes(ctx) -> set[str]:
    """Identifiers only code knows: snake_case or kebab-case ids and enum values, and the territory ids ("brest";
    other plain words are left out, they may be French or English words)."""
    from engine.services.directory import list_sites, list_territories

    territories = {territory[0] for territory in list_territories(ctx)}
    diagrams = "".join(path.read_text() for path in (PROJECT_ROOT / "workflows" / "bpmn").glob("*.bpmn"))
    codes = set(ACCOUNT_ROLES) | set(DEFAULT_ESCALATION) | set(re.findall(r'<bpmn:process id="([^"]+)"', diagrams))
    codes |= {site[0] for site in list_sites(ctx)}
    for schema in (PROJECT_ROOT / "forms" / "schemas").glob("*.json"):
        codes |= set(_enum_values(json.loads(schema.read_text())))
    return {code for code in codes if re.fullmatch(r"[a-z0-9]+([_-][a-z0-9]+)+", code)} | territories


def _enum_values(node) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        found += [value for value in node.get("enum", []) if isinstance(value, str)]
        for child in node.values():
            found += _enum_values(child)
    elif isinstance(node, list):
        for child in node:
            found += _enum_values(child)
    return found


def crawl(client, technical: bool = False) -> dict[str, str]:
    """Path -> visible text of every page reachable by links from the start pages (GET only, bounded)."""
    seen: dict[str, str] = {}
    queue = deque(["/", "/inbox", "/cases"])
    while queue and len(seen) < PAGES_PER_USER:
        path = queue.popleft()
        if path in seen or SKIPPED.search(path):
            continue
        response = client.get(path)
        is_page = response.status_code == 200 and response.mimetype == "text/html"
        seen[path] = visible_text(response.get_data(as_text=True), technical) if is_page else ""
        if is_page:
            queue.extend(link for link in HREF.findall(response.get_data(as_text=True)) if link not in seen)
    return seen


@pytest.mark.parametrize("username", [user.username for user in USERS])
def test_no_page_shows_an_internal_code(app, demo_ctx, clock, username):
    codes = internal_codes(demo_ctx)
    technical = bool(TECHNICAL & set(next(user.roles for user in USERS if user.username == username)))
    if not technical:  # people are named by their names, never by their login (the history, messages, tasks)
        codes |= {user.username for user in USERS}
    pattern = re.compile(r"(?<![\w/.@-])(" + "|".join(sorted(map(re.escape, codes), key=len, reverse=True))
                         + r")(?![\w/@-])")
    client = demo_app.login(app, demo_ctx, clock, username)
    shown = {}
    for path, text in crawl(client, technical).items():
        found = sorted(set(pattern.findall(text)))
        if found:
            shown[path] = found
    assert not shown, f"raw codes shown to {username}: {json.dumps(shown, ensure_ascii=False)[:3000]}"


def test_the_crawl_reaches_the_pages_that_matter(app, demo_ctx, clock):
    pages = crawl(demo_app.login(app, demo_ctx, clock, "dr.martin"))
    assert {"/inbox", "/cases"} <= set(pages) and any(re.fullmatch(r"/cases/\d+", p) for p in pages)
    assert any(p.startswith("/tasks/") for p in pages)


def test_the_detector_sees_a_raw_code():
    assert "insufficient_information" in visible_text("<td>insufficient_information</td>")
    assert "secret" not in visible_text('<td data-x="secret">ok</td><script>secret()</script>')
