"""The audit trail reaches a real rsyslog as IHE ATNA messages (DICOM PS3.15 A.5 XML in RFC 5424 frames over
TLS, RFC 5425), with the signed heads; a server that is down or a CA that does not match loses nothing
(issue 16, item 3)."""

from __future__ import annotations

import json
import logging
import re
import uuid
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import func, select

from engine.services.audit import record_global_event
from engine.services.audit_outbox import read_cursor
from engine.store.models import AuditEvent
from integrations.audit_export.exporter import ATNA_EXPORT, run_audit_export
from integrations.audit_export.settings import AuditExportSettings, SyslogTarget
from tests.integration.audit_support import busy_case
from tests.integration.rsyslog_support import Rsyslog, rsyslog  # noqa: F401  (the session fixture)

pytestmark = [pytest.mark.charter("CH-5.3")]
FRAME = re.compile(rb"^<85>1 (\S+) (\S+) telerad (\d+|-) (IHE\+RFC-3881|TELERAD-HEADS) - \xef\xbb\xbf(.*)$", re.S)


def settings_for(server: Rsyslog, tmp_path, ca: str = "ca.crt") -> AuditExportSettings:
    return AuditExportSettings(
        heads_file=tmp_path / "heads.jsonl",
        syslog=SyslogTarget("127.0.0.1", server.port, True, server.pki.path(ca)),
        source_id=f"telerad-{uuid.uuid4().hex[:8]}", enterprise_site="FINESS-290000017", interval=30, batch=500)


def frames_of(server: Rsyslog, settings: AuditExportSettings) -> list[tuple[str, bytes]]:
    found = []
    for line in server.messages():
        match = FRAME.match(line)
        if match and match.group(2).decode() == settings.source_id:
            found.append((match.group(4).decode(), match.group(5)))
    return found


def wait_frames(server: Rsyslog, settings: AuditExportSettings, count: int) -> list[tuple[str, bytes]]:
    import time

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = frames_of(server, settings)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{len(frames_of(server, settings))} frame(s) received, expected {count}")


def event_count(ctx) -> int:
    with ctx.read() as session:
        return int(session.execute(select(func.count()).select_from(AuditEvent)).scalar_one())


def test_events_and_heads_reach_rsyslog_as_atna_messages(deployed, rsyslog, tmp_path):  # noqa: F811
    settings = settings_for(rsyslog, tmp_path)
    case_id = busy_case(deployed, views=1)
    with deployed.write() as session:
        record_global_event(session, 'ev<il>&"\x07', "auth.failed", {"reason": "</AuditMessage>"},
                            deployed.clock.now())
        session.commit()
    total = event_count(deployed)
    report = run_audit_export(deployed, settings)
    assert report.errors == [] and report.events_sent == total and report.heads_sent == 1
    frames = wait_frames(rsyslog, settings, total + 1)
    messages = [ET.fromstring(body) for msgid, body in frames if msgid == "IHE+RFC-3881"]
    assert len(messages) == total
    viewed = next(m for m in messages if m.find("EventIdentification/EventTypeCode[@csd-code='case.viewed']")
                  is not None)
    event_id = viewed.find("EventIdentification/EventID")
    assert event_id is not None and event_id.get("csd-code") == "110110" and event_id.get("codeSystemName") == "DCM"
    assert viewed.find("EventIdentification").get("EventActionCode") == "R"
    assert viewed.find("ActiveParticipant").get("UserID") == "dr.martin"
    objects = {o.get("ParticipantObjectTypeCodeRole"): o.get("ParticipantObjectID")
               for o in viewed.findall("ParticipantObjectIdentification")}
    assert objects["20"] == str(case_id)
    source = viewed.find("AuditSourceIdentification")
    assert source is not None and source.get("AuditSourceID") == settings.source_id
    failed = next(m for m in messages if m.find("EventIdentification/EventID").get("csd-code") == "110114")
    assert failed.find("ActiveParticipant").get("UserID") == 'ev<il>&"\ufffd'
    assert failed.find("EventIdentification").get("EventOutcomeIndicator") == "4"
    heads = [json.loads(body) for msgid, body in frames if msgid == "TELERAD-HEADS"]
    assert heads == [json.loads(settings.heads_file.read_text().splitlines()[0])]
    assert run_audit_export(deployed, settings).events_sent == 0  # nothing sent twice


def test_a_server_down_loses_nothing_and_gets_everything_once_back(deployed, rsyslog, tmp_path, clock):  # noqa: F811
    settings = settings_for(rsyslog, tmp_path)
    busy_case(deployed, views=1)
    rsyslog.stop()
    try:
        report = run_audit_export(deployed, settings)
        assert report.events_sent == 0 and len(report.errors) == 2  # the events, the heads line
        cursor = read_cursor(deployed, ATNA_EXPORT)
        assert cursor.position == 0 and cursor.attempts == 1 and cursor.last_error
        busy_case(deployed, views=1)  # more events while it is down
    finally:
        rsyslog.start()
    assert run_audit_export(deployed, settings).events_sent == 0  # the next attempt waits 5 s (backoff)
    clock.advance(seconds=6)
    report = run_audit_export(deployed, settings)
    total = event_count(deployed)
    assert report.errors == [] and report.events_sent == total and report.heads_sent == 2
    frames = wait_frames(rsyslog, settings, total + 2)
    assert sum(1 for msgid, _ in frames if msgid == "IHE+RFC-3881") == total
    assert read_cursor(deployed, ATNA_EXPORT).attempts == 0


@pytest.mark.charter("CH-5.3", negative=True)
def test_a_server_certificate_from_another_ca_is_refused_and_retried(deployed, rsyslog, tmp_path, clock,  # noqa: F811
                                                                    caplog):
    settings = settings_for(rsyslog, tmp_path, ca="rogue.crt")
    busy_case(deployed, views=0)
    with caplog.at_level(logging.ERROR, logger="integrations.audit_export.exporter"):
        report = run_audit_export(deployed, settings)
    assert report.events_sent == 0 and any("CERTIFICATE_VERIFY_FAILED" in e for e in report.errors)
    assert any("audit export to syslog failed" in r.message for r in caplog.records)
    cursor = read_cursor(deployed, ATNA_EXPORT)
    assert cursor.position == 0 and cursor.attempts == 1 and "CERTIFICATE_VERIFY_FAILED" in (cursor.last_error or "")
    assert frames_of(rsyslog, settings) == []
    clock.advance(seconds=6)
    fixed = settings_for(rsyslog, tmp_path)
    report = run_audit_export(deployed, AuditExportSettings(**{**fixed.__dict__, "source_id": settings.source_id}))
    assert report.errors == [] and report.events_sent == event_count(deployed)


def test_settings_are_checked_when_read(tmp_path):
    from integrations.audit_export.settings import AuditExportSettingsError

    def read(**env: str) -> AuditExportSettings:
        return AuditExportSettings.from_env(tmp_path, env)

    assert read().syslog is None and read().heads_file == tmp_path / "audit-heads.jsonl"
    assert read(TELERAD_AUDIT_SYSLOG="tls://syslog.example:7000").syslog == SyslogTarget("syslog.example", 7000, True)
    assert read(TELERAD_AUDIT_SYSLOG="tcp://127.0.0.1").syslog == SyslogTarget("127.0.0.1", 514, False)
    for bad in ({"TELERAD_AUDIT_SYSLOG": "udp://host:514"}, {"TELERAD_AUDIT_SYSLOG": "tls://host:port"},
                {"TELERAD_AUDIT_SYSLOG": "tls://h", "TELERAD_AUDIT_SYSLOG_CA": str(tmp_path / "none.crt")},
                {"TELERAD_AUDIT_SYSLOG": "tls://h", "TELERAD_AUDIT_SYSLOG_KEY": __file__},
                {"TELERAD_AUDIT_EXPORT_SECONDS": "0"}, {"TELERAD_AUDIT_SYSLOG_BATCH": "many"}):
        with pytest.raises(AuditExportSettingsError):
            read(**bad)


def test_a_frame_is_rfc5424_with_octet_counting():
    from datetime import UTC, datetime

    from integrations.audit_export.syslog import octet_counted, rfc5424

    frame = rfc5424(b"<AuditMessage/>", hostname="h\u00f4te avec espaces", msgid="IHE+RFC-3881",
                    at=datetime(2026, 12, 7, 18, 0, tzinfo=UTC), procid="42")
    assert frame == b"<85>1 2026-12-07T18:00:00.000000Z h_te_avec_espaces telerad 42 IHE+RFC-3881 - " \
                    b"\xef\xbb\xbf<AuditMessage/>"
    assert octet_counted(frame) == str(len(frame)).encode() + b" " + frame
