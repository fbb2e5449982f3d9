"""The interface in French by default and in English on request, with a complete and up-to-date English catalogue.

French is the source language (the msgids); web/translations/en/LC_MESSAGES/messages.po holds the English. The
pages are rendered with a catalogue compiled here from that .po (the .mo is not committed), so they show what
the committed translations give.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from sqlalchemy import select

from engine.store.models import ProcessInstance, Task
from tests import demo_app
from tests.demo_app import login
from web.app import create_app
from web.config import PROJECT_ROOT, Settings
from web.extensions import babel

TRANSLATIONS = PROJECT_ROOT / "web" / "translations"
POT = TRANSLATIONS / "messages.pot"
ENGLISH_PO = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po"
KEYWORDS = ("_", "gettext", "lazy_gettext", "_l")  # as in the Makefile's extraction
TEMPLATES = PROJECT_ROOT / "web" / "templates"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def read_catalog(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle)


def msgids(catalog: Catalog) -> set[tuple[str | None, str | tuple[str, ...]]]:
    return {(message.context, message.id) for message in catalog if message.id}


def strings_of(message) -> tuple[str, ...]:  # several for a plural entry
    return message.string if isinstance(message.string, tuple) else (message.string,)


demo_ctx = demo_app.demo_ctx  # the demo data (fixture), on SQLite and PostgreSQL


@pytest.fixture(scope="module")
def compiled_translations(tmp_path_factory) -> Path:
    """What `pybabel compile -d web/translations` makes, from the committed .po, in a temporary directory."""
    directory = tmp_path_factory.mktemp("translations")
    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        target = directory / po.relative_to(TRANSLATIONS).with_suffix(".mo")
        target.parent.mkdir(parents=True)
        with target.open("wb") as handle:
            write_mo(handle, read_catalog(po))
    return directory


@pytest.fixture
def app(demo_ctx, database_url, tmp_path, compiled_translations):
    settings = replace(Settings.from_env({"TELERAD_INSTANCE_PATH": str(tmp_path / "instance")}),
                       database_url=database_url)
    application = create_app(settings, demo_ctx)
    application.config["WTF_CSRF_ENABLED"] = False  # CSRF has its own tests in test_auth.py
    application.extensions["babel"].translation_directories = [str(compiled_translations)]
    # Flask-Babel keeps loaded catalogues in its domain, shared by every app of the process: start afresh.
    with application.app_context():
        cache = babel.domain_instance.cache
    cache.clear()
    yield application
    cache.clear()


def case_of(ctx, patient_name):
    with ctx.read() as session:
        return session.execute(select(ProcessInstance.id).where(ProcessInstance.patient_name == patient_name)
                               .order_by(ProcessInstance.id)).scalars().first()


def open_task(ctx, case_id, spec_name):
    with ctx.read() as session:
        return session.execute(select(Task.id).where(Task.instance_id == case_id, Task.spec_name == spec_name,
                                                     Task.status == "open")).scalar_one()


def switch_language(client, language, next_url):
    response = client.post("/language", data={"language": language, "next": next_url})
    assert response.status_code == 302 and response.headers["Location"] == next_url
    return client.get(next_url).get_data(as_text=True)


# What the steps recorded (the forms' titles and values, and the timeline's summaries written from them) stays in
# French, as the English pages say (#language-note): those parts are left out of the check.
CASE_CONTENT = re.compile(r'<section[^>]*id="(steps|task-context)".*?</section>|<ol class="timeline[^"]*".*?</ol>',
                          re.S)


def untranslated_in(page: str) -> list[str]:
    """The French msgids (with an English translation different from them) still shown on an English page."""
    page = CASE_CONTENT.sub("", page)
    left = []
    for message in read_catalog(ENGLISH_PO):
        if not message.id or isinstance(message.id, tuple) or message.string == message.id:
            continue
        for form in {message.id, html.escape(message.id)}:  # placeholders match any text
            pattern = ".{1,200}?".join(re.escape(fragment) for fragment in PLACEHOLDER.split(form))
            if re.search(rf"(?<!\w){pattern}(?!\w)", page):
                left.append(message.id)
                break
    return left


# The pages

def test_pages_are_in_french_by_default_and_in_english_after_the_switch(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    case_id = case_of(demo_ctx, "KERMARREC YANN")
    task_id = open_task(demo_ctx, case_id, "accept_case")
    pages = ("/inbox", f"/cases/{case_id}", f"/tasks/{task_id}", "/cases")

    inbox = client.get("/inbox").get_data(as_text=True)
    assert '<html lang="fr">' in inbox and "Mes tâches" in inbox and "Urgence vitale" in inbox
    case = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert '<html lang="fr">' in case and "Compte-rendu" in case and "Dossier créé" in case
    assert f"Dossier n° {case_id}" in case

    inbox = switch_language(client, "en", "/inbox")
    assert '<html lang="en">' in inbox and "My tasks" in inbox and "Life-threatening emergency" in inbox
    assert "Mes tâches" not in inbox
    case = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert '<html lang="en">' in case and "Report" in case and "Case created" in case
    assert f"Case No. {case_id}" in case and "Compte-rendu" not in case
    for url in pages:
        page = client.get(url).get_data(as_text=True)
        assert untranslated_in(page) == [], url

    inbox = switch_language(client, "fr", "/inbox")
    assert '<html lang="fr">' in inbox and "Mes tâches" in inbox and "My tasks" not in inbox
    assert 'id="language-note"' not in inbox


def test_english_mode_says_what_stays_french(app, demo_ctx, clock):
    client = login(app, demo_ctx, clock, "dr.legall")
    page = switch_language(client, "en", "/inbox")
    note = re.search(r'<p class="small text-muted" id="language-note">([^<]+)</p>', page)
    assert note is not None and "stay in French" in note.group(1)


def test_login_page_messages_and_errors_follow_the_language(app, demo_ctx, clock):
    anonymous = app.test_client()
    response = anonymous.get("/inbox")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    page = anonymous.get(response.headers["Location"]).get_data(as_text=True)
    assert "Veuillez vous identifier pour accéder à cette page." in page and "Identifiant" in page

    page = switch_language(anonymous, "en", "/login")
    assert '<html lang="en">' in page and "Username" in page and "Password" in page and "Sign in" in page
    assert untranslated_in(page) == []
    response = anonymous.get("/cases")
    page = anonymous.get(response.headers["Location"]).get_data(as_text=True)
    assert "Please sign in to access this page." in page

    client = login(app, demo_ctx, clock, "dr.legall", client=anonymous)  # the choice survives the login
    case_id = case_of(demo_ctx, "KERMARREC YANN")
    task_id = open_task(demo_ctx, case_id, "accept_case")
    response = client.post(f"/tasks/{task_id}/claim", follow_redirects=True)
    assert "The task is now assigned to you." in response.get_data(as_text=True)
    response = client.post(f"/tasks/{task_id}/unclaim", follow_redirects=True)
    assert "The task is available to your colleagues again." in response.get_data(as_text=True)
    missing = client.get("/cases/999999")
    page = missing.get_data(as_text=True)
    assert missing.status_code == 404 and "Page not found" in page and "Page introuvable" not in page
    assert untranslated_in(page) == []
    assert client.get("/api/v1/no-such-route").get_json()["error"] == "Page not found"  # lazy strings in JSON

    page = switch_language(client, "fr", "/inbox")
    response = client.post(f"/tasks/{task_id}/claim", follow_redirects=True)
    assert "La tâche vous est attribuée." in response.get_data(as_text=True)


# The catalogue

def test_english_catalogue_is_complete():
    catalog = read_catalog(ENGLISH_PO)
    assert not catalog.fuzzy, "the .po header is marked fuzzy: pybabel compile would skip the whole catalogue"
    entries = [message for message in catalog if message.id]
    assert entries
    untranslated = [message.id for message in entries if not all(s.strip() for s in strings_of(message))]
    fuzzy = [message.id for message in entries if message.fuzzy]
    assert untranslated == [], "msgids without an English msgstr"
    assert fuzzy == [], "fuzzy translations (check them, then remove the flag)"
    errors = [(message.id, str(error)) for message, errors in catalog.check() for error in errors]
    assert errors == [], "placeholders differing between msgid and msgstr"
    for message in entries:  # English has the two plural forms of French: msgstr[i] goes with msgid form i
        sources = message.id if isinstance(message.id, tuple) else (message.id,)
        for index, string in enumerate(strings_of(message)):
            source = sources[min(index, len(sources) - 1)]
            assert set(PLACEHOLDER.findall(string)) == set(PLACEHOLDER.findall(source)), message.id


def test_catalogue_is_extracted_from_the_current_sources(tmp_path):
    """A string wrapped in _() but never extracted, or a stale one, fails here: re-run the extraction."""
    fresh = tmp_path / "messages.pot"
    command = [sys.executable, "-m", "babel.messages.frontend", "--quiet", "extract", "-F", "babel.cfg",
               *(f"--keyword={keyword}" for keyword in KEYWORDS), "-o", str(fresh), "."]
    subprocess.run(command, cwd=PROJECT_ROOT, check=True, timeout=120)
    extracted = msgids(read_catalog(fresh))
    hint = ("run: pybabel extract -F babel.cfg -k _ -k gettext -k lazy_gettext -k _l "
            "-o web/translations/messages.pot . && pybabel update -i web/translations/messages.pot "
            "-d web/translations, then translate")
    for path in (POT, ENGLISH_PO):
        committed = msgids(read_catalog(path))
        assert sorted(map(str, extracted - committed)) == [], f"not in {path.name}; {hint}"
        assert sorted(map(str, committed - extracted)) == [], f"no longer in the sources but in {path.name}; {hint}"


def test_every_wrapped_template_string_is_in_the_catalogue():
    """Independent of babel.cfg: the literal of every _('...') call in the templates is a msgid."""
    literal = re.compile(r"""\b_\(\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")""")
    known = {message.id for message in read_catalog(ENGLISH_PO) if message.id}
    wrapped = {}
    for template in TEMPLATES.rglob("*.html"):
        source = re.sub(r"\{#.*?#\}", "", template.read_text(encoding="utf-8"), flags=re.S)  # not comments
        for match in literal.finditer(source):
            text = re.sub(r"\\(.)", r"\1", match.group(1) if match.group(1) is not None else match.group(2))
            wrapped.setdefault(text, str(template.relative_to(PROJECT_ROOT)))
    assert len(wrapped) > 100
    assert {text: where for text, where in wrapped.items() if text not in known} == {}
