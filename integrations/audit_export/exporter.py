"""The periodic audit export: sign and append the chain heads to the sink, then send to the syslog server the
audit events (as ATNA messages) and the sink lines it has not received yet.

Runs in the worker's scheduler and in `telerad audit export-heads`; never inside a request. Each stream keeps
its position in the audit_export table (engine.services.audit_outbox) and moves it only after a successful send,
so a syslog server that is down, or refuses our certificate, loses nothing: the next due run sends the backlog
(at most `batch` events a run), with a growing delay between failed attempts.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from engine.services.audit_heads import export_heads
from engine.services.audit_outbox import advance, pending_events, read_cursor, record_failure
from engine.services.context import EngineContext
from integrations.audit_export.atna import audit_message
from integrations.audit_export.settings import AuditExportSettings
from integrations.audit_export.syslog import ATNA_MSGID, HEADS_MSGID, SyslogError, rfc5424, send_frames

ATNA_EXPORT = "atna"
HEADS_SYSLOG_EXPORT = "heads-syslog"

log = logging.getLogger(__name__)


@dataclass
class ExportReport:
    heads_lines: list[str] = field(default_factory=list)
    events_sent: int = 0
    heads_sent: int = 0
    errors: list[str] = field(default_factory=list)


def run_audit_export(ctx: EngineContext, settings: AuditExportSettings, *, force_heads: bool = False) -> ExportReport:
    report = ExportReport(heads_lines=export_heads(ctx, settings.heads_file, force=force_heads))
    if settings.syslog is None:
        return report
    for stream in (_send_events, _send_heads):
        try:
            stream(ctx, settings, report)
        except SyslogError as error:
            report.errors.append(str(error))
    return report


def _send_events(ctx: EngineContext, settings: AuditExportSettings, report: ExportReport) -> None:
    assert settings.syslog is not None
    cursor = read_cursor(ctx, ATNA_EXPORT)
    if not cursor.due(ctx.clock.now()):
        return
    events = pending_events(ctx, cursor, settings.batch)
    if not events:
        return
    frames = [rfc5424(audit_message(event, settings.source_id, settings.enterprise_site),
                      hostname=settings.source_id, msgid=ATNA_MSGID, at=event.at, procid=str(os.getpid()))
              for event in events]
    try:
        send_frames(settings.syslog, frames)
    except SyslogError as error:
        failed = record_failure(ctx, cursor, str(error))
        log.error("audit export to syslog failed (attempt %s, next at %s): %s", failed.attempts,
                  failed.next_attempt_at, error)
        raise
    advance(ctx, cursor, events[-1].id)
    report.events_sent = len(events)


def _send_heads(ctx: EngineContext, settings: AuditExportSettings, report: ExportReport) -> None:
    assert settings.syslog is not None
    cursor = read_cursor(ctx, HEADS_SYSLOG_EXPORT)
    if not cursor.due(ctx.clock.now()):
        return
    try:
        with settings.heads_file.open("rb") as handle:
            lines = [line.rstrip(b"\n") for line in handle if line.strip()]
    except FileNotFoundError:
        return
    waiting = lines[cursor.position:cursor.position + settings.batch]
    if not waiting:
        return
    now = ctx.clock.now()
    frames = [rfc5424(line, hostname=settings.source_id, msgid=HEADS_MSGID, at=now, procid=str(os.getpid()))
              for line in waiting]
    try:
        send_frames(settings.syslog, frames)
    except SyslogError as error:
        failed = record_failure(ctx, cursor, str(error))
        log.error("audit heads to syslog failed (attempt %s, next at %s): %s", failed.attempts,
                  failed.next_attempt_at, error)
        raise
    advance(ctx, cursor, cursor.position + len(waiting))
    report.heads_sent = len(waiting)
