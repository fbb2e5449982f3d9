"""Teleexpertise (CH-4.2): who receives the expert's report."""

from __future__ import annotations

from engine.domain.charter import enforces

LOCAL_RADIOLOGIST, REQUESTER, PATIENT = "local_radiologist", "requester", "patient"


@enforces("CH-4.2.3")
def report_recipients(send_to_requester: bool, patient_requested: bool, local_radiologist_agrees: bool) -> list[str]:
    """The local radiologist always receives the report; the requester when asked; the patient only with
    the local radiologist's agreement."""
    recipients = [LOCAL_RADIOLOGIST]
    if send_to_requester:
        recipients.append(REQUESTER)
    if patient_requested and local_radiologist_agrees:
        recipients.append(PATIENT)
    return recipients
