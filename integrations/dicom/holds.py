"""Held images (CH-4.1.6, CH-8.1): studies waiting for the case's identity check or for the technologist's
reconciliation, and single instances kept out of a study they claim to belong to.

- A study received before its case's identity check is held; at the check (the next stability tick) or with its
  next instance, `reevaluate_held` compares its traits with the case's: it is attached, or stays held and a
  reconciliation task (process image_identity_check) is opened for the technologists of the case's site.
- An instance naming a known study but sent by another site, carrying another patient's traits, or uploaded to
  another case than the study's, is stored but never indexed into that study: `hold_instance` keeps it in
  dicom_held_instance with its reason.

Every attach and hold is an event of the case's audit chain (engine.services.images).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from engine.domain.actors import Actor
from engine.services.case_lookup import case_urgency
from engine.services.context import EngineContext
from engine.services.images import case_identity, record_image_events
from engine.services.instances import cancel_instance, case_data, start_instance
from integrations.dicom.matching import DicomPatient, decide
from integrations.dicom.models import HELD, STUDY
from integrations.dicom.storage import ParsedInstance, StoredFile

log = logging.getLogger(__name__)

IDENTITY_PROCESS = "image_identity_check"


def study_patient(study: Any) -> DicomPatient:
    return DicomPatient(study.patient_id, study.patient_name, study.patient_birth_date, study.patient_sex)


def reevaluate_held(ctx: EngineContext, study_uid: str, now: datetime) -> str | None:
    """Decide again on a study held without a reconciliation task (its case's identity was not checked yet, or
    opening the task failed): returns 'attached' or 'held' when it moved on, None when it still waits."""
    with ctx.read() as session:
        study = session.execute(select(STUDY).where(STUDY.c.uid == study_uid)).first()
    if study is None or study.status != "held" or study.identity_case_id is not None or study.case_id is None:
        return None
    decision = decide(ctx, study.site_id, study.accession_number, study_uid, study_patient(study), study.case_id)
    if decision.awaiting_check or decision.status == "receiving":
        return None
    if decision.status == "attached":
        with ctx.write() as session:
            changed = session.execute(update(STUDY).where(
                STUDY.c.uid == study_uid, STUDY.c.status == "held", STUDY.c.identity_case_id.is_(None))
                .values(status="attached", hold_reason=None)).rowcount == 1  # type: ignore[attr-defined]
            if changed:
                record_image_events(session, study.case_id, [("dicom.study_attached", {
                    "study_uid": study_uid, "accession_number": study.accession_number,
                    "after": "identity_check"})], now)
            session.commit()
        return "attached" if changed else None
    if decision.reason != study.hold_reason:  # now a mismatch: say so on the case, then ask the technologist
        with ctx.write() as session:
            changed = session.execute(update(STUDY).where(
                STUDY.c.uid == study_uid, STUDY.c.status == "held", STUDY.c.identity_case_id.is_(None))
                .values(hold_reason=decision.reason)).rowcount == 1  # type: ignore[attr-defined]
            if changed:
                record_image_events(session, study.case_id, [("dicom.study_held", {
                    "study_uid": study_uid, "accession_number": study.accession_number,
                    "reason": decision.reason})], now)
            session.commit()
    return "held" if open_identity_check(ctx, study_uid) is not None else None


def hold_instance(ctx: EngineContext, parsed: ParsedInstance, stored: StoredFile, site_id: str | None,
                  source: str, calling_ae: str | None, reason: str, case_id: int | None) -> bool:
    """Keep an instance out of the study it names, with the reason, traced on the study's case (or the global
    chain); False when the same instance was already held."""
    now = ctx.clock.now()
    try:
        with ctx.write() as session:
            session.execute(insert(HELD).values(
                sop_instance_uid=parsed.sop_instance_uid, study_uid=parsed.study_uid, series_uid=parsed.series_uid,
                sop_class_uid=parsed.sop_class_uid, sha256=stored.sha256, size=stored.size,
                transfer_syntax=parsed.transfer_syntax, case_id=case_id, site_id=site_id, source=source,
                calling_ae=calling_ae, patient_id=parsed.patient_id, patient_name=parsed.patient_name,
                patient_birth_date=parsed.patient_birth_date, patient_sex=parsed.patient_sex, reason=reason[:300],
                received_at=now))
            record_image_events(session, case_id, [("dicom.instance_held", {
                "study_uid": parsed.study_uid, "sop_instance_uid": parsed.sop_instance_uid, "site_id": site_id,
                "calling_ae": calling_ae, "source": source, "reason": reason})], now)
            session.commit()
    except IntegrityError:
        return False
    log.warning("DICOM instance %s held out of study %s (AE %s, site %s): %s", parsed.sop_instance_uid,
                parsed.study_uid, calling_ae, site_id, reason)
    return True


def open_identity_check(ctx: EngineContext, study_uid: str) -> int | None:
    """Give a held study to the technologists of the case's site for reconciliation (CH-4.1.6); idempotent."""
    with ctx.read() as session:
        study = session.execute(select(STUDY).where(STUDY.c.uid == study_uid)).first()
    if study is None or study.status != "held" or study.identity_case_id is not None or study.case_id is None:
        return None
    try:
        case = case_identity(ctx, study.case_id)
        actor = Actor("dicom", frozenset({"technologist"}), frozenset({case.site_id} if case.site_id else set()))
        # The check carries the blocked case's patient and urgency: it shows that patient in its banner and sorts
        # with that case in the inboxes (an urgent case waits for it).
        urgency = case_urgency(ctx, study.case_id)
        status = _identity_status(case_data(ctx, study.case_id))
        identity_case = start_instance(ctx, actor, IDENTITY_PROCESS, {
            "case_id": study.case_id, "study_uid": study_uid, "hold_reason": study.hold_reason,
            "dicom_patient": study_patient(study).as_dict(), "case_patient": case.patient,
            "patient": {**case.patient, **({"identity_status": status} if status else {})},
            "summary": f"Images à rapprocher du dossier n° {study.case_id}",
            **({"urgency": urgency} if urgency else {})}, site_id=case.site_id)
    except Exception:
        log.exception("identity check for held study %s could not be opened; retried by the next tick", study_uid)
        return None
    with ctx.write() as session:
        result = session.execute(update(STUDY).where(STUDY.c.uid == study_uid, STUDY.c.identity_case_id.is_(None))
                                 .values(identity_case_id=identity_case))
        session.commit()
    if result.rowcount != 1:  # type: ignore[attr-defined]  # opened twice at the same moment: keep one
        cancel_instance(ctx, Actor("dicom"), identity_case, "doublon de vérification d'identité")
        return None
    log.info("study %s held (%s): identity check case %s", study_uid, study.hold_reason, identity_case)
    return identity_case


def _identity_status(data: dict[str, Any]) -> str | None:
    """The blocked case's identity status as its banner shows it (the technologist's check, else the request's)."""
    patient = data.get("patient") if isinstance(data.get("patient"), dict) else {}
    status = data.get("identity_status") or (patient or {}).get("identity_status")
    return status if isinstance(status, str) else None
