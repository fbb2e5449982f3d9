"""The case viewer's time to first image in Chromium, against the time to load the case page itself.

Not a test. Run from the project root:

    .venv/bin/python benchmarks/viewer.py [--runs 5] [--json]

A throwaway instance folder (SQLite) is prepared as `make run` does: `telerad db upgrade`, then `telerad demo --json`
(the demo data with their images: a 40-slice 256 x 256 CT and its prior on Jean Quéré's case, see
integrations.dicom.demo_images); then `telerad run` serves it on a free loopback port (waitress, as in production).
Debian's Chromium (/usr/bin/chromium, headless, through Playwright) logs in as dr.legall (password, then TOTP), and
the login is kept as a storage state: no login is timed.

Each run, in a new browser context (empty HTTP cache, the session cookie only) and then again in the same context
(warm: the viewer's bundle, worker and WebAssembly codecs cached as after a first visit):

- viewer: navigation to /cases/<id>/viewer, until the current pane's canvas first shows a non-black pixel, read in
  the page at every animation frame; the time is the page's own performance.now() then (0 = navigation start);
- case page (baseline, same run): navigation to /cases/<id>, until its load event (loadEventEnd of the navigation
  timing entry).

Cold and warm runs alternate viewer and case page, which goes first alternating too. Medians over `--runs`;
`ratio` = viewer's median time to first image / case page's median load time (cold; `warm_ratio` the same warm).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyotp  # noqa: E402
from sqlalchemy import select  # noqa: E402

from engine.services.bootstrap import build_context  # noqa: E402
from integrations.dicom.models import STUDY  # noqa: E402
from web.config import Settings  # noqa: E402

TELERAD = ROOT / ".venv" / "bin" / "telerad"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RADIOLOGIST = "dr.legall"
STARTUP_TIMEOUT_S = 60
PAGE_TIMEOUT_MS = 60_000
# Resolves with performance.now() at the first animation frame where the current pane's canvas has a lit pixel.
FIRST_IMAGE = """() => new Promise((resolve, reject) => {
  const deadline = performance.now() + 60000;  // bounded: a viewer that never draws fails the run
  const look = () => {
    if (performance.now() > deadline) { reject(new Error('no image drawn within 60 s')); return; }
    const canvas = document.querySelector('[data-pane="current"] [data-viewport] canvas');
    if (canvas && canvas.width > 0 && canvas.height > 0) {
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      for (let i = 0; i < data.length; i += 4) {
        if (data[i] || data[i + 1] || data[i + 2]) { resolve(performance.now()); return; }
      }
    }
    requestAnimationFrame(look);
  };
  look();
})"""
PAGE_LOADED = """() => new Promise((resolve) => {
  const look = () => {
    const [entry] = performance.getEntriesByType('navigation');
    if (entry && entry.loadEventEnd > 0) resolve(entry.loadEventEnd); else setTimeout(look, 5);
  };
  look();
})"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prepare(folder: Path, port: int) -> tuple[dict[str, str], dict[str, Any], int]:
    """(environment, dr.legall's account, case id) of a fresh instance with the demo and its images."""
    env = {**os.environ, "TELERAD_INSTANCE_PATH": str(folder), "TELERAD_PORT": str(port), "TELERAD_HOST": "127.0.0.1",
           "TELERAD_MLLP_PORT": "0", "TELERAD_DICOM_PORT": "0", "TELERAD_SMTP_URL": "",
           "TELERAD_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    env.pop("TELERAD_DATABASE_URL", None)
    subprocess.run([str(TELERAD), "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True, timeout=300)
    started = time.perf_counter()
    done = subprocess.run([str(TELERAD), "demo", "--json"], env=env, cwd=ROOT, check=True, capture_output=True,
                          text=True, timeout=300)
    env["BENCH_DEMO_S"] = f"{time.perf_counter() - started:.2f}"
    account = next(u for u in json.loads(done.stdout)["users"] if u["username"] == RADIOLOGIST)
    settings = Settings.from_env({"TELERAD_INSTANCE_PATH": str(folder)})
    ctx = build_context(settings.database_url)
    with ctx.read() as session:  # the demo's head CT case: the one whose study is attached (`telerad demo`)
        case_id = session.execute(select(STUDY.c.case_id).where(STUDY.c.status == "attached", STUDY.c.accession_number
                                                                .is_not(None)).limit(1)).scalar()
    ctx.engine.dispose()
    if case_id is None:
        raise SystemExit("the demo has no case with images")
    return env, account, case_id


def wait_healthy(process: subprocess.Popen[bytes], base: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"telerad run exited with status {process.returncode}")
        try:
            with direct.open(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise SystemExit(f"/healthz did not answer within {STARTUP_TIMEOUT_S} s")


def log_in(browser: Any, base: str, account: dict[str, Any]) -> dict[str, Any]:
    """The storage state (session cookie) of dr.legall after the password and the TOTP code."""
    context = browser.new_context(base_url=base, locale="fr-FR", timezone_id="Europe/Paris")
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("Identifiant").fill(account["username"])
    page.get_by_label("Mot de passe").fill(account["password"])
    page.get_by_role("button", name="Continuer").click()
    page.wait_for_url(f"{base}/login/totp")
    page.get_by_label("Code à 6 chiffres").fill(pyotp.TOTP(account["totp_secret"]).now())
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{base}/inbox")
    state = context.storage_state()
    context.close()
    return dict(state)


def time_viewer(page: Any, case_id: int) -> float:
    page.goto(f"/cases/{case_id}/viewer", wait_until="commit")
    shown = float(page.evaluate(FIRST_IMAGE))
    images = page.locator('[data-pane="current"] [data-viewport]').get_attribute("data-images")
    if not images or int(images) < 1:
        raise SystemExit("the viewer showed no series")
    return shown


def time_case_page(page: Any, case_id: int) -> float:
    page.goto(f"/cases/{case_id}", wait_until="load")
    return float(page.evaluate(PAGE_LOADED))


def measure(base: str, account: dict[str, Any], case_id: int, runs: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    cold: dict[str, list[float]] = {"viewer": [], "case_page": []}
    warm: dict[str, list[float]] = {"viewer": [], "case_page": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            state = log_in(browser, base, account)
            version = browser.version
            for run in range(runs):
                order = ("viewer", "case_page") if run % 2 == 0 else ("case_page", "viewer")
                for kind in order:
                    context = browser.new_context(base_url=base, storage_state=state, locale="fr-FR",  # type: ignore[arg-type]
                                                  timezone_id="Europe/Paris", viewport={"width": 1366, "height": 900})
                    context.set_default_timeout(PAGE_TIMEOUT_MS)
                    page = context.new_page()
                    timer = time_viewer if kind == "viewer" else time_case_page
                    cold[kind].append(timer(page, case_id))
                    warm[kind].append(timer(page, case_id))  # the same context: its HTTP cache filled
                    context.close()
        finally:
            browser.close()

    def summary(values: list[float]) -> dict[str, Any]:
        return {"median_ms": round(statistics.median(values), 1), "min_ms": round(min(values), 1),
                "max_ms": round(max(values), 1), "runs_ms": [round(v, 1) for v in values]}

    result: dict[str, Any] = {"chromium": version, "cold": {k: summary(v) for k, v in cold.items()},
                              "warm": {k: summary(v) for k, v in warm.items()}}
    result["ratio"] = round(statistics.median(cold["viewer"]) / statistics.median(cold["case_page"]), 2)
    result["warm_ratio"] = round(statistics.median(warm["viewer"]) / statistics.median(warm["case_page"]), 2)
    return result


def run(runs: int) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="telerad-viewer-bench-") as folder:
        env, account, case_id = prepare(Path(folder), port)
        with open(Path(folder) / "server.log", "wb") as log:
            process = subprocess.Popen([str(TELERAD), "run", "--port", str(port)], cwd=ROOT, env=env, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            try:
                wait_healthy(process, base)
                measured = measure(base, account, case_id, runs)
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
    return {"benchmark": "viewer", "date": datetime.now(UTC).isoformat(timespec="seconds"), "runs": runs,
            "case_id": case_id, "demo_command_s": float(env["BENCH_DEMO_S"]), "cpus": os.cpu_count(), **measured}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.runs <= 50:
        parser.error("--runs 1-50")
    if not CHROMIUM.exists():
        parser.error(f"needs Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    result = run(args.runs)
    if args.json:
        print(json.dumps(result))
        return
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
