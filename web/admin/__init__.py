"""Administration: accounts and the routing directory, escalation delays and waiting timers, on-call, HL7 and
DICOM links, the protocol catalogue, the charter conformance matrix, the notification outbox, the quality audits."""

from web.admin import (
    charter_packs,
    conformance,
    convention_documents,
    dicom,
    directory,
    escalation,
    fees,
    fees_ccam,
    fees_settings,
    hl7,
    incidents,
    indicators,
    link_health,
    notifications,
    oncall,
    protocols,
    quality_audits,
    users,
)

BLUEPRINTS = (
    charter_packs.bp, users.bp, directory.bp, escalation.bp, oncall.bp, hl7.bp, dicom.bp, conformance.bp, protocols.bp,
    notifications.bp, indicators.bp, quality_audits.bp, convention_documents.bp, incidents.bp, fees.bp,
    link_health.bp, fees_settings.bp, fees_ccam.bp)
