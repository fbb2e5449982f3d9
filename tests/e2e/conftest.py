"""End-to-end fixtures: a real `telerad run` server on a free loopback port, Debian's Chromium driven by
Playwright (sync API), and one logged-in browser context per demo user (password then TOTP, through the real
pages).

The server runs on a fresh instance folder (SQLite) prepared with `telerad db upgrade` and `telerad demo --json`
(which also deploys the diagrams); its output goes to test-artifacts/e2e/server.log. Screenshots go to
test-artifacts/e2e/ too.

Without /usr/bin/chromium these tests are skipped, except under CI=true where they fail.
No browser is ever downloaded (never `playwright install`).
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "e2e"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STARTUP_TIMEOUT_S = 60
TOTP_STEP_S = 30
UI_TIMEOUT_MS = 15_000


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"end-to-end tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the end-to-end tests: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _telerad() -> str:
    script = Path(sys.executable).with_name("telerad")
    if not script.exists():
        pytest.fail(f"the `telerad` script is missing next to {sys.executable}: run `make install`")
    return str(script)


@dataclass(frozen=True)
class Server:
    base_url: str
    accounts: dict[str, dict[str, Any]]
    log_path: Path

    def url(self, path: str) -> str:
        return self.base_url + path

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return "(no server log)"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    _require_chromium()  # skipped runs leave the artifacts of the last real run alone
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if os.environ.get("PYTEST_XDIST_WORKER", "gw0") == "gw0":  # one worker clears the screenshots of an earlier run
        for old in ARTIFACTS.glob("[0-9][0-9]-*.png"):
            old.unlink(missing_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Any]:
    """A real SMTP server on loopback (aiosmtpd) that the e2e server sends its notifications to, as the local
    sink of `make run` does (docs/notifications.md)."""
    from tests.integration.notify_support import smtp_server

    controller, box = smtp_server()
    box.port = controller.port
    yield box
    controller.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, artifacts: Path, mailbox: Any) -> Iterator[Server]:
    instance = tmp_path_factory.mktemp("telerad-instance")
    port = _free_port()
    env = {**os.environ, "TELERAD_INSTANCE_PATH": str(instance), "TELERAD_PORT": str(port),
           "TELERAD_HOST": "127.0.0.1", "TELERAD_SCHEDULER_INTERVAL": "1",
           # Free ports for the listeners: another instance (a developer's `make run`, a parallel run) may hold
           # the default 2575 and 11112.
           "TELERAD_MLLP_PORT": "0", "TELERAD_DICOM_PORT": "0",
           # People are reached outside the browser: mail to the local sink, sent every second.
           "TELERAD_SMTP_URL": f"smtp://127.0.0.1:{mailbox.port}", "TELERAD_NOTIFY_SECONDS": "1",
           "TELERAD_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    env.pop("TELERAD_DATABASE_URL", None)  # the instance's own SQLite file
    telerad = _telerad()
    for args in (["db", "upgrade"], ["demo", "--json"]):
        done = subprocess.run([telerad, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"telerad {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    demo = json.loads(done.stdout)
    assert demo.get("users"), f"telerad demo --json created no users: {done.stdout}"
    accounts = {user["username"]: user for user in demo["users"]}

    # One server per pytest-xdist worker (PYTEST_XDIST_WORKER: gw0, gw1...), each with its own log.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    log_path = artifacts / (f"server-{worker}.log" if worker else "server.log")
    log = log_path.open("w", encoding="utf-8")
    process = subprocess.Popen([telerad, "run", "--port", str(port)], cwd=REPO, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    result = Server(f"http://127.0.0.1:{port}", accounts, log_path)
    try:
        _wait_healthy(process, result)
        yield result
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _wait_healthy(process: subprocess.Popen[bytes], server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last = "no answer yet"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"telerad run exited with status {process.returncode}:\n{server.log_tail()}")
        try:
            with direct.open(server.url("/healthz"), timeout=2) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as err:
            last = f"HTTP {err.code}: {err.read()[:300]!r}"
        except OSError as err:
            last = repr(err)
        time.sleep(0.25)  # polling a starting process, not waiting on the page
    pytest.fail(f"/healthz did not answer 200 within {STARTUP_TIMEOUT_S} s ({last}); server log:\n"
                f"{server.log_tail()}")


@pytest.fixture(scope="session")
def browser(server: Server) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@dataclass
class BrowserLog:
    """Console messages, uncaught page errors and failed responses of every page opened by the tests."""

    entries: list[str] = field(default_factory=list)

    def attach(self, page: Any, who: str) -> None:
        page.on("console", lambda msg: self.entries.append(
            f"[{who}] console.{msg.type}: {msg.text} ({(msg.location or {}).get('url', '?')})"))
        page.on("pageerror", lambda err: self.entries.append(f"[{who}] pageerror: {err}"))

        def failed(response: Any) -> None:
            if response.status >= 400:
                self.entries.append(f"[{who}] HTTP {response.status} {response.request.method} {response.url}")

        page.on("response", failed)

    def mark(self) -> int:
        return len(self.entries)

    def since(self, mark: int = 0) -> list[str]:
        return self.entries[mark:]

    def matching(self, text: str, mark: int = 0) -> list[str]:
        return [entry for entry in self.since(mark) if text.lower() in entry.lower()]

    def errors(self, mark: int = 0) -> list[str]:
        """Errors of the pages themselves: Chromium's own request for /favicon.ico (the app has none) is left out."""
        return [entry for entry in self.since(mark) if "/favicon.ico" not in entry
                and ("console.error" in entry or "pageerror" in entry or "] HTTP " in entry)]


@pytest.fixture(scope="session")
def browser_log() -> BrowserLog:
    return BrowserLog()


@dataclass
class _TotpSteps:
    last: dict[str, int] = field(default_factory=dict)

    def fresh_code(self, username: str, secret: str) -> str:
        """A code of a step this user has not used yet (the server refuses replays)."""
        used = self.last.get(username)
        while used is not None and int(time.time()) // TOTP_STEP_S <= used:
            time.sleep(0.5)  # only when one user logs in twice within 30 s
        step = int(time.time()) // TOTP_STEP_S
        self.last[username] = step
        return pyotp.TOTP(secret, interval=TOTP_STEP_S).at(step * TOTP_STEP_S)


@pytest.fixture(scope="session")
def totp_steps() -> _TotpSteps:
    """The TOTP steps each user has used, shared by the logins and the report signatures of the session."""
    return _TotpSteps()


@pytest.fixture(scope="session")
def signature_code(server: Server, totp_steps: _TotpSteps) -> Callable[[str], str]:
    """signature_code(username) -> a fresh code of that user (a report is signed with it, CH-5.3)."""
    return lambda username: totp_steps.fresh_code(username, server.accounts[username]["totp_secret"])


@pytest.fixture(scope="session")
def login(browser: Any, server: Server, browser_log: BrowserLog,
          totp_steps: _TotpSteps) -> Iterator[Callable[[str], Any]]:
    """login(username) -> a page, on the inbox, of a browser context in which that user is logged in (one login
    per user and session: a second TOTP code of the same 30-s step would be refused as a replay)."""
    from playwright.sync_api import expect

    contexts: dict[str, Any] = {}
    pages: dict[str, Any] = {}
    steps = totp_steps

    def _login(username: str) -> Any:
        if username in pages and not pages[username].is_closed():
            pages[username].goto("/inbox")  # as after a fresh login, whatever an earlier test left open
            return pages[username]
        account = server.accounts[username]
        context = browser.new_context(base_url=server.base_url, locale="fr-FR", timezone_id="Europe/Paris",
                                      viewport={"width": 1366, "height": 900})
        context.set_default_timeout(UI_TIMEOUT_MS)
        page = context.new_page()
        browser_log.attach(page, username)
        page.goto("/login")
        expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
        page.get_by_label("Identifiant").fill(username)
        page.get_by_label("Mot de passe").fill(account["password"])
        page.get_by_role("button", name="Continuer").click()
        expect(page).to_have_url(server.url("/login/totp"))
        expect(page.get_by_role("heading", name="Code de vérification")).to_be_visible()
        page.get_by_label("Code à 6 chiffres").fill(steps.fresh_code(username, account["totp_secret"]))
        page.get_by_role("button", name="Se connecter").click()
        expect(page).to_have_url(server.url("/inbox"))
        expect(page.get_by_role("heading", name="Mes tâches")).to_be_visible()
        expect(page.locator(".navbar-text")).to_contain_text(account["name"].split(" (")[0])
        contexts[username], pages[username] = context, page
        return page

    yield _login
    for context in contexts.values():
        context.close()


_shot_numbers = itertools.count(1)


@pytest.fixture
def shoot(artifacts: Path) -> Callable[[Any, str], Path]:
    """shoot(page, "step") saves a full-page screenshot as test-artifacts/e2e/NN-step.png."""

    def _shoot(page: Any, step: str) -> Path:
        path = artifacts / f"{next(_shot_numbers):02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return _shoot
