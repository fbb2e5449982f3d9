"""Replay the security review's findings (issue 16) against a fresh instance, the way the reviewer tried them.

It makes a throwaway instance with the commands `make run` uses (`telerad db upgrade`, `deploy`, `demo`),
starts `telerad run` on free loopback ports as if behind a TLS reverse proxy (TELERAD_PUBLIC_URL https,
one trusted proxy), tries each finding from outside (HTTP, MLLP, DICOM, the command line, and the database
for the attacker who can write to it), stops the instance and prints one JSON document: for each finding,
whether it is now refused or detected, with the figures that show it.

    .venv/bin/python scripts/replay_findings.py [--database-url postgresql://...] [--keep]

Exit status 0 when every finding is refused or detected, 1 otherwise. Loopback only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess  # noqa: S404 - runs the telerad command of this checkout
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.replay import attacks, peers  # noqa: E402
from scripts.replay.http import Browser  # noqa: E402

TELERAD = str(Path(sys.executable).with_name("telerad"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Instance:
    """A fresh Telerad instance in a temporary folder, started with `telerad run`."""

    def __init__(self, database_url: str | None, keep: bool):
        self.folder = Path(tempfile.mkdtemp(prefix="telerad-replay-"))
        self.keep = keep
        self.http_port, self.mllp_port, self.dicom_port = free_port(), free_port(), free_port()
        self.env = {**os.environ,
                    "TELERAD_INSTANCE_PATH": str(self.folder / "instance"),
                    "TELERAD_DATABASE_URL": database_url or f"sqlite:///{self.folder / 'instance' / 'telerad.db'}",
                    "TELERAD_PORT": str(self.http_port), "TELERAD_MLLP_PORT": str(self.mllp_port),
                    "TELERAD_DICOM_PORT": str(self.dicom_port), "TELERAD_SCHEDULER_INTERVAL": "1",
                    "TELERAD_PUBLIC_URL": "https://telerad.replay.test", "TELERAD_TRUSTED_PROXIES": "1",
                    "TELERAD_LOG_LEVEL": "WARNING"}
        self.process: subprocess.Popen[bytes] | None = None
        self.accounts: dict[str, dict[str, Any]] = {}

    def telerad(self, *arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([TELERAD, *arguments], env=self.env, capture_output=True, text=True,  # noqa: S603
                              input=stdin, timeout=300, check=False)

    def start(self) -> None:
        for step in (("db", "upgrade"), ("deploy",)):
            done = self.telerad(*step)
            if done.returncode:
                raise SystemExit(f"telerad {' '.join(step)} failed: {done.stderr[-2000:]}")
        demo = self.telerad("demo", "--json")
        self.accounts = {account["username"]: account for account in json.loads(demo.stdout)["users"]}
        with open(self.folder / "run.log", "wb") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen([TELERAD, "run"], env=self.env, stdout=subprocess.DEVNULL,  # noqa: S603
                                            stderr=log, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if Browser(self.base).get("/healthz").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"telerad run did not answer within 60 s; see {self.folder / 'run.log'}")

    @property
    def base(self) -> tuple[str, int]:
        return "127.0.0.1", self.http_port

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        if not self.keep:
            shutil.rmtree(self.folder, ignore_errors=True)


FINDINGS: list[tuple[str, str, Callable[[Instance], dict[str, Any]]]] = [
    ("session_cookie", "a session cookie copied before logout still works after logout", attacks.copied_cookie),
    ("zip_bomb", "a 385 KB zip of overlapping members costs minutes of CPU", attacks.zip_bomb),
    ("j2k_bomb", "a 1 KB JPEG 2000 of 8192x8192 makes the first case view allocate GBs", attacks.j2k_bomb),
    ("audit_rewrite", "a rewritten and recomputed audit chain passes `telerad audit verify`",
     attacks.audit_rewrite),
    ("idle_dicom", "idle sockets to the DICOM port block every association", peers.idle_dicom),
    ("idle_mllp", "idle sockets to the MLLP port make new connections fail", peers.idle_mllp),
    ("tls_headers", "no Secure cookie flag and no HSTS behind TLS", attacks.secure_cookie),
    ("claim_next", "POST /tasks/<id>/claim follows an external next", attacks.claim_next),
    ("validate_neighbour", "`telerad validate` skips a file's checks when a neighbour is broken",
     attacks.validate_neighbour),
    ("bad_api_input", "bad API input gives HTTP 500; NUL bytes are stored", attacks.bad_api_input),
    ("file_modes", "database, WAL, attachments and DICOM files are world-readable", attacks.file_modes),
    ("totp_clear", "TOTP secrets are stored in clear", attacks.totp_clear),
    ("token_expiry", "API tokens never expire", attacks.token_expiry),
    ("dicom_resend", "a resent SOP Instance UID with other content leaves an orphan file", peers.dicom_resend),
    ("hl7_sender", "an HL7 sender is identified only by MSH-3/MSH-4", peers.hl7_sender_address),
    ("timers_masking", "the timers page shows every site's patients to an administrator of none",
     attacks.timers_masking),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a PostgreSQL database to use (default: SQLite in the instance)")
    parser.add_argument("--keep", action="store_true", help="keep the instance folder (its run.log) afterwards")
    parser.add_argument("--only", action="append", help="replay only these findings (repeatable)")
    options = parser.parse_args()
    instance = Instance(options.database_url, options.keep)
    results: dict[str, Any] = {}
    try:
        instance.start()
        for name, finding, replay in FINDINGS:
            if options.only and name not in options.only:
                continue
            started = time.monotonic()
            try:
                outcome = replay(instance)
            except Exception as error:  # noqa: BLE001 - a replay that breaks is reported, the others still run
                outcome = {"fixed": False, "error": f"{type(error).__name__}: {error}"}
            results[name] = {"finding": finding, **outcome, "seconds": round(time.monotonic() - started, 2)}
            print(f"{'fixed' if outcome.get('fixed') else 'NOT FIXED':9} {name}", file=sys.stderr)
    finally:
        instance.stop()
    fixed = sum(1 for result in results.values() if result.get("fixed"))
    print(json.dumps({"findings": results, "fixed": fixed, "total": len(results),
                      "database": "postgresql" if options.database_url else "sqlite"}, indent=2, ensure_ascii=False))
    return 0 if fixed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
