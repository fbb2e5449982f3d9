"""The audit finding replayed: cases are viewed, the heads exported, then an attacker who can write to the database
removes every `case.viewed` event and recomputes the chains and heads, first with plain SHA-256 (the review's
attack), then with the audit key itself (an attacker who also stole the key file)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from engine.services.keyring import KeyRing
from scripts.replay.attacks import database, quere_case
from scripts.replay.http import Browser
from tests.integration.audit_support import drop_case_views, plain_sha256, rewrite, rewrite_actor, with_key


def rewrite_and_recompute(instance: Any) -> dict[str, Any]:
    case_id, _ = quere_case(instance)
    browser = Browser(instance.base).login(instance.accounts["merm.leroy"])
    for _ in range(3):
        browser.get(f"/cases/{case_id}")
    exported = instance.telerad("audit", "export-heads")
    attacker = SimpleNamespace(engine=database(instance))
    outcomes = {"export_heads_exit": exported.returncode}
    outcomes["plain_sha256"] = _attempt(instance, rewrite(attacker, plain_sha256, drop_case_views))
    ring = KeyRing.load(Path(instance.env["TELERAD_INSTANCE_PATH"]) / "keys.json")
    stolen_key = with_key(ring.audit_key_id, ring.audit[0].material)
    outcomes["with_the_key"] = _attempt(instance, rewrite(attacker, stolen_key, rewrite_actor))
    outcomes["fixed"] = all(outcomes[name]["verify_exit"] == 1 for name in ("plain_sha256", "with_the_key"))
    return outcomes


def _attempt(instance: Any, touched: int) -> dict[str, Any]:
    verify = instance.telerad("audit", "verify", "--json")
    report = json.loads(verify.stdout or "{}")
    return {"events_changed_or_dropped": touched, "verify_exit": verify.returncode,
            "first_problems": [problem.get("message") for problem in (report.get("problems") or [])[:2]]}
