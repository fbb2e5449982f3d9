"""The findings tried over HTTP, on the command line, on the files and in the database (scripts/replay_findings.py).
Each function takes the running instance and returns {"fixed": bool, ...figures}."""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

import pydicom
from sqlalchemy import create_engine, text

from scripts.replay.http import Browser
from scripts.replay.processes import peak_rss_mb, tree_cpu_seconds
from tests.integration.dicom_support import QUERE, rewrite
from tests.integration.test_dicom_previews import inflated_j2k
from tests.integration.test_dicom_upload_limits import overlapping_bomb

EVIL_SCRIPT = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="evil" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="run"/>
    <bpmn:scriptTask id="run"><bpmn:script>__import__('os').system('id')</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="run" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def database(instance: Any) -> Any:
    url = instance.env["TELERAD_DATABASE_URL"]
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def quere_case(instance: Any) -> tuple[int, str]:
    with database(instance).connect() as connection:
        row = connection.execute(text("SELECT id, accession_number FROM process_instance WHERE patient_name LIKE "
                                      "'QU%' AND process_id = 'telediagnosis'")).one()
    return int(row.id), str(row.accession_number)


def copied_cookie(instance: Any) -> dict[str, Any]:
    outcomes = {}
    for username, end in (("dr.legall", "logout"), ("dr.morvan", "password")):
        browser = Browser(instance.base).login(instance.accounts[username])
        copy = dict(browser.cookies)
        before = browser.get("/inbox").status
        if end == "logout":
            browser.post("/logout", {}, "/inbox")
        else:
            instance.telerad("users", "set-password", username, "--password-stdin",
                             stdin="Un tout nouveau mot de passe 2026!\n")
        after = Browser(instance.base, cookies=copy).get("/inbox")
        outcomes[end] = {"before": before, "after": after.status, "location": after.header("Location")}
    fixed = all(o["before"] == 200 and o["after"] in (302, 401) and "/login" in (o["location"] or "")
                for o in outcomes.values())
    return {"fixed": fixed, "copied_cookie_after": outcomes}


def zip_bomb(instance: Any) -> dict[str, Any]:
    case_id, _ = quere_case(instance)
    browser = Browser(instance.base).login(instance.accounts["merm.leroy"])
    bomb = overlapping_bomb(128 * 1024 * 1024, 5500)  # about 385 KB, as in the finding
    before = tree_cpu_seconds(instance.process.pid)
    answer = browser.post_file(f"/cases/{case_id}/dicom", "dicom_files", "bomb.zip", bomb, f"/cases/{case_id}")
    cpu = tree_cpu_seconds(instance.process.pid) - before
    page = browser.get(f"/cases/{case_id}").text
    refused = "chevauch" in page or "refus" in page.lower()
    return {"fixed": answer.status < 500 and cpu < 1.0 and refused, "archive_kb": round(len(bomb) / 1024),
            "status": answer.status, "server_cpu_seconds": round(cpu, 3), "refusal_shown": refused}


def j2k_bomb(instance: Any) -> dict[str, Any]:
    """The bomb uploaded to a case, then the case page and the preview asked for until the series says whether
    its preview is ready or unavailable (bounded), watching the web process's peak memory."""
    case_id, accession = quere_case(instance)
    browser = Browser(instance.base).login(instance.accounts["merm.leroy"])
    with tempfile.TemporaryDirectory() as folder:
        bomb = pydicom.dcmread(inflated_j2k(Path(folder), 8192, 8192))
        dataset = pydicom.dcmread(rewrite(Path(folder) / "out", "MR_small_jp2klossless.dcm", **QUERE,
                                          AccessionNumber=accession))
        dataset.PixelData = bomb.PixelData  # the inflated codestream, with the case's identity
        dataset.Rows = dataset.Columns = 8192
        path = Path(folder) / "bomb.dcm"
        dataset.save_as(path, enforce_file_format=True)
        content = path.read_bytes()
    thumbnail = f"/cases/{case_id}/series/{dataset.SeriesInstanceUID}/thumbnail.png"
    rss_before = peak_rss_mb(instance.process.pid)
    browser.post_file(f"/cases/{case_id}/dicom", "dicom_files", "bomb.dcm", content, f"/cases/{case_id}")
    statuses, state, deadline = [], "absent", time.monotonic() + 60
    while time.monotonic() < deadline:
        statuses.append(browser.get(thumbnail).status)
        page = browser.get(f"/cases/{case_id}").text
        state = next((label for label in ("indisponible", "en préparation") if f"aperçu {label}" in page),
                     "ready" if thumbnail in page else "absent")
        if state in ("indisponible", "ready"):
            break
        time.sleep(1)
    rss_after = peak_rss_mb(instance.process.pid)
    return {"fixed": state == "indisponible" and rss_after - rss_before < 200 and all(s < 500 for s in statuses),
            "dicom_bytes": len(content), "preview_state": state, "thumbnail_statuses": sorted(set(statuses)),
            "web_peak_rss_mb_before": rss_before, "web_peak_rss_mb_after": rss_after}


def audit_rewrite(instance: Any) -> dict[str, Any]:
    from scripts.replay.audit_attack import rewrite_and_recompute  # it uses this module's helpers

    return rewrite_and_recompute(instance)


def secure_cookie(instance: Any) -> dict[str, Any]:
    browser = Browser(instance.base)
    login_page = browser.get("/login")
    cookies = login_page.all("Set-Cookie")
    hsts = login_page.header("Strict-Transport-Security")
    secure = bool(cookies) and all("secure" in cookie.lower() for cookie in cookies)
    return {"fixed": secure and bool(hsts), "set_cookie": [c.split(";", 1)[1].strip() for c in cookies],
            "hsts": hsts}


def claim_next(instance: Any) -> dict[str, Any]:
    browser = Browser(instance.base).login(instance.accounts["dr.legall"])
    inbox = browser.get("/inbox").text
    claims = re.findall(r'action="(/tasks/[^"/]+/claim)"', inbox)
    if not claims:
        return {"fixed": False, "error": "no claimable task in dr.legall's inbox"}
    answer = browser.post(claims[0], {"next": "https://evil.example/phish"}, "/inbox")
    location = answer.header("Location") or ""
    return {"fixed": "evil.example" not in location, "status": answer.status, "location": location}


def validate_neighbour(instance: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        broken, evil_file = Path(folder) / "broken.bpmn", Path(folder) / "evil.bpmn"
        broken.write_text("<bpmn:definitions")
        evil_file.write_text(EVIL_SCRIPT)
        done = instance.telerad("validate", "--json", str(broken), str(evil_file))
    files = {entry["file"]: entry for entry in json.loads(done.stdout or '{"files": []}')["files"]}
    evil = [error["rule"] for error in files.get("evil.bpmn", {}).get("errors", [])]
    return {"fixed": done.returncode != 0 and bool(evil), "exit": done.returncode, "evil_bpmn_errors": evil}


def bad_api_input(instance: Any) -> dict[str, Any]:
    token = issue_token(instance, "dr.martin")
    api = Browser(instance.base, headers={"Authorization": f"Bearer {token}"})
    bodies = {
        "lone_surrogate": b'{"process": "telediagnosis", "data": {"question": "\\ud800"}}',
        "nested_5000": b'{"process": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        "list_for_string": b'{"process": ["telediagnosis"], "data": {}}',
        "nul_byte": b'{"process": "telediagnosis", "data": {"question": "a\\u0000b"}}',
        "not_json": b"\xff\xfe{",
    }
    before = case_count(instance)
    statuses = {name: api.request("POST", "/api/v1/cases", body, "application/json").status
                for name, body in bodies.items()}
    statuses["huge_id"] = api.get("/api/v1/cases/" + "9" * 40).status
    statuses["huge_task_id"] = api.get("/api/v1/tasks/" + "9" * 40).status
    written = case_count(instance) - before
    return {"fixed": all(400 <= s < 500 for s in statuses.values()) and written == 0, "statuses": statuses,
            "cases_written": written}


def case_count(instance: Any) -> int:
    with database(instance).connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM process_instance")).scalar_one())


def issue_token(instance: Any, username: str) -> str:
    done = instance.telerad("users", "token", username, "--name", f"replay-{os.getpid()}")
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    return next(line for line in reversed(lines) if re.fullmatch(r"[A-Za-z0-9_\-]{30,}", line))


def file_modes(instance: Any) -> dict[str, Any]:
    folder = Path(instance.env["TELERAD_INSTANCE_PATH"])
    modes = {}
    for path in [folder, *folder.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            modes[str(path.relative_to(folder.parent))] = oct(mode)
    checked = sum(1 for _ in folder.rglob("*")) + 1
    return {"fixed": not modes and checked > 3, "paths_checked": checked, "readable_by_others": modes}


def totp_clear(instance: Any) -> dict[str, Any]:
    with database(instance).connect() as connection:
        secrets = [row[0] for row in connection.execute(text("SELECT totp_secret FROM app_user"))]
    in_clear = [s for s in secrets if re.fullmatch(r"[A-Z2-7]{16,64}", s)]
    known = {account["totp_secret"] for account in instance.accounts.values()}
    return {"fixed": bool(secrets) and not in_clear and not known & set(secrets), "accounts": len(secrets),
            "in_clear": len(in_clear)}


def token_expiry(instance: Any) -> dict[str, Any]:
    issue_token(instance, "dr.legall")
    with database(instance).connect() as connection:
        rows = connection.execute(text("SELECT created_at, expires_at FROM api_token")).all()
    return {"fixed": bool(rows) and all(row.expires_at is not None for row in rows), "tokens": len(rows),
            "expires": [str(row.expires_at) for row in rows][:3]}


def timers_masking(instance: Any) -> dict[str, Any]:
    with database(instance).connect() as connection:
        names = [row[0] for row in connection.execute(text(
            "SELECT DISTINCT patient_name FROM process_instance WHERE patient_name IS NOT NULL"))]
    page = Browser(instance.base).login(instance.accounts["admin"]).get("/admin/escalation/timers")
    shown = [name for name in names if name and (name in page.text or name.split()[0] in page.text)]
    return {"fixed": page.status == 200 and bool(names) and not shown, "status": page.status,
            "patients_in_database": len(names), "patient_names_shown": shown}
