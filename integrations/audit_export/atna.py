"""Telerad audit events as DICOM PS3.15 Annex A.5 audit messages (the IHE ATNA format, after RFC 3881).

Each event gives one <AuditMessage>: what happened (EventIdentification, with the DICOM event id of the table
below and the Telerad action as a second event type in the "telerad" code system), who did it
(ActiveParticipant), which Telerad install reports it (AuditSourceIdentification) and about what
(ParticipantObjectIdentification: the patient, the case, the DICOM study). docs/audit.md shows the mapping.
Built with xml.etree: every value is escaped by the serializer, never formatted into the markup.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC

from engine.services.audit_outbox import PendingEvent


@dataclass(frozen=True)
class Code:
    code: str
    text: str
    system: str = "DCM"


@dataclass(frozen=True)
class EventKind:
    event: Code
    action: str  # EventActionCode: C create, R read, U update, D delete, E execute
    event_type: Code | None = None


PATIENT_RECORD = Code("110110", "Patient Record")
ORDER_RECORD = Code("110109", "Order Record")
USER_AUTHENTICATION = Code("110114", "User Authentication")
INSTANCES_TRANSFERRED = Code("110104", "DICOM Instances Transferred")
EXPORT = Code("110106", "Export")
SECURITY_ALERT = Code("110113", "Security Alert")
USER_SECURITY_ATTRIBUTES = Code("110137", "User Security Attributes Changed")
APPLICATION_ACTIVITY = Code("110100", "Application Activity")
LOGIN, LOGOUT = Code("110122", "Login"), Code("110123", "Logout")
NETWORK_CONFIGURATION = Code("110128", "Network Configuration")
SOFTWARE_CONFIGURATION = Code("110131", "Software Configuration")
RESTRICTED_FUNCTION = Code("110132", "Use of Restricted Function")

# Exact actions first, then prefixes (the first that matches), then APPLICATION_ACTIVITY.
EXACT: dict[str, EventKind] = {
    "case.viewed": EventKind(PATIENT_RECORD, "R"),
    "task.viewed": EventKind(PATIENT_RECORD, "R"),
    "attachment.read": EventKind(PATIENT_RECORD, "R"),
    "hl7.message_read": EventKind(PATIENT_RECORD, "R"),
    "hl7.outbox_page": EventKind(PATIENT_RECORD, "R"),
    "auth.login": EventKind(USER_AUTHENTICATION, "E", LOGIN),
    "auth.failed": EventKind(USER_AUTHENTICATION, "E", LOGIN),
    "auth.logout": EventKind(USER_AUTHENTICATION, "E", LOGOUT),
    "auth.session_ended": EventKind(USER_AUTHENTICATION, "E", LOGOUT),
    "instance.started": EventKind(ORDER_RECORD, "C"),
    "instance.cancelled": EventKind(ORDER_RECORD, "D"),
    "attachment.added": EventKind(ORDER_RECORD, "C"),
    "message.posted": EventKind(ORDER_RECORD, "C"),
    "dicom.study_attached": EventKind(INSTANCES_TRANSFERRED, "C"),
    "dicom.uploaded": EventKind(INSTANCES_TRANSFERRED, "C"),
    "dicom.study_held": EventKind(INSTANCES_TRANSFERRED, "C"),
    "dicom.instance_held": EventKind(INSTANCES_TRANSFERRED, "C"),
    "charter.refused": EventKind(SECURITY_ALERT, "E", RESTRICTED_FUNCTION),
    "instance.migrated": EventKind(SECURITY_ALERT, "E", SOFTWARE_CONFIGURATION),
}
PREFIXES: tuple[tuple[str, EventKind], ...] = (
    ("report.sent", EventKind(EXPORT, "R")),
    ("hl7.report_sent", EventKind(EXPORT, "R")),
    ("task.", EventKind(ORDER_RECORD, "U")),
    ("instance.", EventKind(ORDER_RECORD, "U")),
    ("case.", EventKind(ORDER_RECORD, "U")),
    ("timer.", EventKind(ORDER_RECORD, "U")),
    ("message.", EventKind(ORDER_RECORD, "U")),
    ("user.", EventKind(USER_SECURITY_ATTRIBUTES, "U")),
    ("auth.", EventKind(USER_SECURITY_ATTRIBUTES, "U")),
    ("keys.", EventKind(SECURITY_ALERT, "E", SOFTWARE_CONFIGURATION)),
    ("hl7.", EventKind(SECURITY_ALERT, "E", NETWORK_CONFIGURATION)),
    ("dicom.", EventKind(SECURITY_ALERT, "E", NETWORK_CONFIGURATION)),
    ("setting.", EventKind(SECURITY_ALERT, "E", SOFTWARE_CONFIGURATION)),
    ("definition.", EventKind(SECURITY_ALERT, "E", SOFTWARE_CONFIGURATION)),
    ("protocol.", EventKind(SECURITY_ALERT, "E", SOFTWARE_CONFIGURATION)),
    ("draft.", EventKind(SECURITY_ALERT, "E", SOFTWARE_CONFIGURATION)),
    ("form.", EventKind(SECURITY_ALERT, "E", SOFTWARE_CONFIGURATION)),
    ("oncall.", EventKind(SECURITY_ALERT, "E", SOFTWARE_CONFIGURATION)),
    ("territory.", EventKind(SECURITY_ALERT, "E", SOFTWARE_CONFIGURATION)),
    ("site.", EventKind(SECURITY_ALERT, "E", SOFTWARE_CONFIGURATION)),
    ("convention.", EventKind(SECURITY_ALERT, "E", SOFTWARE_CONFIGURATION)),
)
FAILURES = ("auth.failed", "auth.locked", "charter.refused", "message.undelivered", "instance.failed")
SUCCESS, MINOR_FAILURE = "0", "4"
# XML 1.0 cannot carry these characters, escaped or not: they are replaced.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def kind_of(action: str) -> EventKind:
    if action in EXACT:
        return EXACT[action]
    for prefix, kind in PREFIXES:
        if action.startswith(prefix):
            return kind
    return EventKind(APPLICATION_ACTIVITY, "E")


def audit_message(event: PendingEvent, source_id: str, enterprise_site: str | None = None) -> bytes:
    """The <AuditMessage> of one event, UTF-8, without an XML declaration."""
    kind = kind_of(event.action)
    root = ET.Element("AuditMessage")
    identification = _sub(root, "EventIdentification", {
        "EventActionCode": kind.action, "EventDateTime": event.at.astimezone(UTC).isoformat(),
        "EventOutcomeIndicator": MINOR_FAILURE if event.action in FAILURES else SUCCESS})
    _code(identification, "EventID", kind.event)
    if kind.event_type is not None:
        _code(identification, "EventTypeCode", kind.event_type)
    _code(identification, "EventTypeCode", Code(event.action, event.action, "telerad"))
    requestor = _sub(root, "ActiveParticipant", {"UserID": event.actor, "UserIsRequestor": "true"})
    if kind.event == INSTANCES_TRANSFERRED:
        _code(requestor, "RoleIDCode", Code("110153", "Source Role ID"))
        application = _sub(root, "ActiveParticipant", {"UserID": source_id, "UserIsRequestor": "false"})
        _code(application, "RoleIDCode", Code("110152", "Destination Role ID"))
    source = _sub(root, "AuditSourceIdentification", {"AuditSourceID": source_id,
                                                      **({"AuditEnterpriseSiteID": enterprise_site}
                                                         if enterprise_site else {})})
    _code(source, "AuditSourceTypeCode", Code("4", "Application Server Process", "DCM"))
    _participants(root, event)
    return ET.tostring(root, encoding="utf-8", xml_declaration=False)


def _participants(root: ET.Element, event: PendingEvent) -> None:
    case = event.case
    if case is not None and case.patient_ref:
        patient = _sub(root, "ParticipantObjectIdentification", {
            "ParticipantObjectID": case.patient_ref, "ParticipantObjectTypeCode": "1",
            "ParticipantObjectTypeCodeRole": "1"})
        _code(patient, "ParticipantObjectIDTypeCode", Code("2", "Patient Number", "RFC-3881"))
    if case is not None:
        record = _sub(root, "ParticipantObjectIdentification", {
            "ParticipantObjectID": str(case.case_id), "ParticipantObjectTypeCode": "2",
            "ParticipantObjectTypeCodeRole": "20"})
        _code(record, "ParticipantObjectIDTypeCode", Code("case", "Telerad case", "telerad"))
        if case.accession_number:
            _sub(record, "ParticipantObjectDetail", {
                "type": "AccessionNumber", "value": base64.b64encode(case.accession_number.encode()).decode()})
    study_uid = event.detail.get("study_uid")
    if isinstance(study_uid, str) and study_uid:
        study = _sub(root, "ParticipantObjectIdentification", {
            "ParticipantObjectID": study_uid, "ParticipantObjectTypeCode": "2",
            "ParticipantObjectTypeCodeRole": "3"})
        _code(study, "ParticipantObjectIDTypeCode", Code("110180", "Study Instance UID"))


def _sub(parent: ET.Element, tag: str, attributes: dict[str, str]) -> ET.Element:
    return ET.SubElement(parent, tag, {name: _NOT_XML.sub("\ufffd", value) for name, value in attributes.items()})


def _code(parent: ET.Element, tag: str, code: Code) -> ET.Element:
    return _sub(parent, tag, {"csd-code": code.code, "codeSystemName": code.system, "originalText": code.text})
