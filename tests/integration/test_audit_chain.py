"""The audit chain is MACed with a key kept outside the database, and its heads are signed and exported outside
it: the rewrite-and-recompute of the security review (an actor rewritten, every `case.viewed` removed, chains
and heads recomputed) is detected, with or without the MAC key (issue 16, item 3)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from engine.services.audit import bind_keys, chain_report
from engine.services.audit_heads import export_heads, verify_heads
from engine.services.keyring import KeyRing
from engine.store.audit import LEGACY_KEY_ID, canonical
from engine.store.models import AuditEvent
from tests.integration.audit_support import (
    busy_case,
    drop_case_views,
    plain_sha256,
    rewrite,
    rewrite_actor,
    same_key_id_plain_sha256,
    with_key,
)

pytestmark = [pytest.mark.charter("CH-5.3")]
DEV = KeyRing.development()


def events(ctx, where: str = "1 = 1") -> list:
    with ctx.engine.connect() as connection:
        return list(connection.execute(text(f"SELECT * FROM audit_event WHERE {where} ORDER BY chain, seq")))


def heads_check(ctx, sink):
    with sink.open("rb") as handle:
        return verify_heads(ctx, handle)


def test_events_are_macs_of_the_newest_audit_key(deployed):
    busy_case(deployed)
    rows = events(deployed)
    assert rows and {row.key_id for row in rows} == {DEV.audit_key_id}
    first = rows[0]
    assert first.hash != hashlib.sha256(first.prev_hash.encode()).hexdigest()
    report = chain_report(deployed)
    assert report.problems == [] and report.legacy == 0 and report.by_key == {DEV.audit_key_id: len(rows)}


@pytest.mark.charter("CH-5.3", negative=True)
@pytest.mark.parametrize("change", [rewrite_actor, drop_case_views])
@pytest.mark.parametrize("hasher", [plain_sha256, same_key_id_plain_sha256(DEV.audit_key_id),
                                    with_key(DEV.audit_key_id, b"a guessed key" * 3)], ids=["legacy", "sha", "guess"])
def test_a_rewrite_recomputed_without_the_key_fails_the_chain(deployed, change, hasher):
    busy_case(deployed)
    assert rewrite(deployed, hasher, change) > 0
    problems = chain_report(deployed).problems
    assert problems and {p.message for p in problems} & {
        "content was altered (MAC mismatch)", "unkeyed event dated after the audit keys were made (chain downgraded)"}


@pytest.mark.charter("CH-5.3", negative=True)
@pytest.mark.parametrize("change", [rewrite_actor, drop_case_views])
def test_a_rewrite_recomputed_with_the_key_is_caught_by_the_exported_heads(deployed, tmp_path, change):
    case_id = busy_case(deployed)
    sink = tmp_path / "heads.jsonl"
    assert export_heads(deployed, sink)
    assert heads_check(deployed, sink).problems == []
    rewrite(deployed, with_key(DEV.audit_key_id, DEV.audit[0].material), change)
    assert chain_report(deployed).problems == []  # the attacker had the key: the database alone looks intact
    check = heads_check(deployed, sink)
    assert check.problems and {p.chain for p in check.problems} == {case_id}


def test_heads_are_exported_when_chains_grow_and_signed(deployed, tmp_path, clock):
    sink = tmp_path / "heads.jsonl"
    case_id = busy_case(deployed, views=0)
    first = json.loads(export_heads(deployed, sink)[0])
    assert {chain for chain, _, _ in first["heads"]} == {0, case_id} and first["prev"] is None
    assert export_heads(deployed, sink) == []  # nothing written since
    busy_case(deployed, views=1)
    second = json.loads(export_heads(deployed, sink)[0])
    assert len(second["heads"]) == 2 and case_id not in {chain for chain, _, _ in second["heads"]}
    lines = sink.read_bytes().splitlines()
    assert second["prev"] == hashlib.sha256(lines[0]).hexdigest()
    assert (sink.stat().st_mode & 0o777) == 0o600
    check = heads_check(deployed, sink)
    assert check.problems == [] and check.lines == 2 and check.heads == 4


@pytest.mark.charter("CH-5.3", negative=True)
def test_an_edited_or_removed_heads_line_is_reported(deployed, tmp_path):
    sink = tmp_path / "heads.jsonl"
    busy_case(deployed)
    export_heads(deployed, sink)
    busy_case(deployed)
    export_heads(deployed, sink, force=True)
    export_heads(deployed, sink, force=True)
    lines = sink.read_bytes().splitlines()
    forged = json.loads(lines[0])
    forged["heads"][0][1] -= 1
    sink.write_bytes(b"\n".join([json.dumps(forged).encode(), *lines[1:]]) + b"\n")
    assert [p.message for p in heads_check(deployed, sink).problems] == [
        "bad signature (signing key 'dev-signing')", "the line before it was removed or altered"]
    sink.write_bytes(b"\n".join([lines[0], lines[2]]) + b"\n")
    assert [p.message for p in heads_check(deployed, sink).problems] == ["the line before it was removed or altered"]


@pytest.mark.charter("CH-5.3", negative=True)
def test_events_deleted_after_the_export_leave_a_chain_shorter_than_its_head(deployed, tmp_path):
    sink = tmp_path / "heads.jsonl"
    case_id = busy_case(deployed)
    export_heads(deployed, sink)
    rewrite(deployed, with_key(DEV.audit_key_id, DEV.audit[0].material),
            lambda row: None if row["chain"] == case_id and row["seq"] > 2 else row)
    messages = {p.message for p in heads_check(deployed, sink).problems}
    assert messages == {"exported head missing: events were removed"}


def test_events_keep_their_key_across_a_rotation(make_ctx, clock):
    old = KeyRing.generate(clock.now() - timedelta(days=1))
    ctx = make_ctx(keys=old)
    busy_case(_deployed(ctx))
    rotated = old.rotated("audit", clock.now())
    ctx.keys = rotated
    bind_keys(ctx)
    busy_case(ctx)
    report = chain_report(ctx)
    assert report.problems == [] and set(report.by_key) == {old.audit_key_id, rotated.audit_key_id}
    ctx.keys = dataclasses.replace(rotated, audit=rotated.audit[:1])  # the old key lost
    assert {p.message for p in chain_report(ctx).problems} == {
        f"audit key {old.audit_key_id!r} is not in the key file"}


def test_unkeyed_legacy_events_still_verify(make_ctx, clock):
    ctx = make_ctx(keys=KeyRing.generate(clock.now() + timedelta(days=1)))  # the keys came after these events
    busy_case(_deployed(ctx))
    count = len(events(ctx))
    rewrite(ctx, plain_sha256, lambda row: row)  # what migration 0016 leaves: every old event "sha256"
    report = chain_report(ctx)
    assert report.problems == [] and report.legacy == count and report.by_key == {LEGACY_KEY_ID: count}
    with ctx.engine.begin() as connection:
        connection.execute(text("UPDATE audit_event SET actor = 'x' WHERE seq = 2"))
    assert any(p.message == "content was altered (MAC mismatch)" for p in chain_report(ctx).problems)


def test_the_keyed_mac_is_hmac_sha256_of_the_previous_hash_and_the_content(deployed):
    busy_case(deployed, views=0)
    with deployed.read() as session:
        row = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().first()
    content = canonical(row.chain, row.seq, row.at, row.actor, row.action, row.instance_id, row.detail)
    expected = hmac.new(DEV.audit[0].material, f"{row.prev_hash}\n{content}".encode(), hashlib.sha256).hexdigest()
    assert row.hash == expected and row.key_id == "dev-audit"


def _deployed(ctx):
    from engine.domain.actors import Actor
    from engine.services.definitions import deploy_library
    from tests.conftest import DATA

    bind_keys(ctx)
    deploy_library(ctx, Actor("designer"), DATA / "bpmn")
    return ctx


def test_many_heads_are_split_into_lines_under_8_kb(deployed, tmp_path, monkeypatch):
    import engine.services.audit_heads as heads_module

    monkeypatch.setattr(heads_module, "HEADS_PER_LINE", 2)
    sink = tmp_path / "heads.jsonl"
    for _ in range(3):
        busy_case(deployed, views=0)
    lines = export_heads(deployed, sink)
    assert [len(json.loads(line)["heads"]) for line in lines] == [2, 2]
    check = heads_check(deployed, sink)
    assert check.problems == [] and check.heads == 4


def test_the_worker_scheduler_exports_the_heads_periodically(deployed, tmp_path):
    from integrations.audit_export.settings import AuditExportSettings
    from web.ops.scheduler import TimerScheduler

    settings = AuditExportSettings.from_env(tmp_path, {"TELERAD_AUDIT_EXPORT_SECONDS": "45"})
    assert settings.heads_file == tmp_path / "audit-heads.jsonl" and settings.syslog is None
    scheduler = TimerScheduler(deployed, 3600, audit_export=settings)
    job = scheduler._scheduler.get_job("export_audit")
    assert job is not None and job.trigger.interval.total_seconds() == 45
    assert TimerScheduler(deployed, 3600)._scheduler.get_job("export_audit") is None
    busy_case(deployed)
    scheduler.export_audit()
    assert heads_check(deployed, settings.heads_file).heads == 2
