"""Prior exams from the site's PACS (CH-4.1.8, CH-4.2.2): the worker's priors tick.

    report = fetch_priors(ctx, "TELERAD")      # one tick: queue new cases, fetch the due ones
    ticker = PriorsTicker(ctx, "TELERAD")      # the same every TICK_SECONDS in a thread (DicomService)

1. Queue: every running case of a site with a PACS (integrations.dicom.pacs) is queued once in prior_fetch when
   its radiologist accepted it (accept_case completed with acceptance "accept"), and every teleexpertise at once.
   The tick finds them itself: nothing runs on the request path, and the queue survives restarts.
2. Fetch, for each due case: C-FIND (Study Root, STUDY level) on the site's PACS by the patient's site identifier
   (IPP), or by family name and birth date when the case has no IPP; the case's own studies are left out; the last
   TELERAD_PRIORS_MAX studies (default 3) are kept, those of the case's modality first, then by StudyDate. Each is
   retrieved by C-MOVE to Telerad's own AE title: the PACS sends it to Telerad's storage SCP (the PACS must know
   Telerad's AE title, host and port, and its own AE title is an allowed calling AE of the site).
3. Claim: a study received that way has no case yet (status 'receiving'); its identity traits are compared with the
   case's as for any image (integrations.dicom.matching): it is attached to the case as a prior (a case_prior row,
   notified_at set so it never sends images_received nor wakes the acquisition step), or held with its reason and
   a reconciliation task (integrations.dicom.holds). A study already another case's is only listed.
4. dicom.priors_fetched on the case's chain lists what was found and attached or held. A PACS that does not answer
   is retried later (the delay grows with the attempts), and given up after MAX_ATTEMPTS (dicom.priors_failed).
5. A teleexpertise's C-FIND answers are also kept as the candidate original studies the tele-expert chooses from,
   and the study he chose is moved and attached by the same tick (integrations.dicom.original_study).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from engine.services.context import EngineContext
from engine.services.images import CaseIdentity, case_identity, record_image_events
from engine.services.instances import case_data
from integrations.dicom.holds import open_identity_check, study_patient
from integrations.dicom.matching import AWAITING_CHECK, identity_differences, normalise
from integrations.dicom.models import STUDY
from integrations.dicom.original_study import fetch_original_studies, record_candidates
from integrations.dicom.pacs import PacsAddress, pacs_of_site
from integrations.dicom.pacs_models import CASE_PRIOR, PRIOR_FETCH, TELEEXPERTISE, case_process, cases_to_queue

log = logging.getLogger(__name__)

TICK_SECONDS = 15.0
MAX_ATTEMPTS = 10
RETRY_DELAY = timedelta(minutes=1)  # times the number of attempts, at most MAX_RETRY_DELAY
MAX_RETRY_DELAY = timedelta(hours=1)
LEASE = timedelta(minutes=30)  # a case being fetched is not taken by another worker meanwhile (nor lost by a crash)
MAX_MATCHES = 500
ACSE_TIMEOUT, DIMSE_TIMEOUT = 10.0, 300.0
SUCCESS, PENDING = 0x0000, (0xFF00, 0xFF01)
SIMILAR_MODALITIES = frozenset({"CR", "DX", "XR", "RG", "DR"})


@dataclass(frozen=True)
class PriorsSettings:
    max_studies: int = 3

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PriorsSettings:
        raw = ((os.environ if env is None else env).get("TELERAD_PRIORS_MAX") or "").strip()
        if not raw:
            return cls()
        if not raw.isdigit() or not 0 <= int(raw) <= 20:
            raise ValueError(f"TELERAD_PRIORS_MAX must be an integer between 0 and 20, got {raw!r}")
        return cls(int(raw))


class PacsUnavailable(Exception):
    """The PACS refused or did not answer (retried later)."""


@dataclass(frozen=True)
class FoundStudy:
    uid: str
    date: str | None  # YYYY-MM-DD
    modalities: str | None
    description: str | None
    accession_number: str | None


@dataclass
class PriorsReport:
    queued: list[int] = field(default_factory=list)
    fetched: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    original: dict[str, list[int]] = field(default_factory=dict)  # original_study.fetch_original_studies


def fetch_priors(ctx: EngineContext, telerad_ae: str, settings: PriorsSettings | None = None,
                 batch: int = 5) -> PriorsReport:
    """One tick: queue the newly accepted cases and teleexpertises, then fetch the priors of the due ones."""
    settings = settings or PriorsSettings()
    report = PriorsReport()
    now = ctx.clock.now()
    _queue_new_cases(ctx, now, report)
    with ctx.read() as session:
        due = session.execute(select(PRIOR_FETCH).where(PRIOR_FETCH.c.status == "pending",
                                                        PRIOR_FETCH.c.next_attempt_at <= now)
                              .order_by(PRIOR_FETCH.c.next_attempt_at).limit(batch)).all()
    for row in due:
        if not _lease(ctx, row, now):
            continue  # another worker took it
        try:
            studies = _fetch_case(ctx, row.case_id, row.site_id, telerad_ae, settings.max_studies)
        except Exception as err:
            log.warning("priors of case %s: %s", row.case_id, err, exc_info=not isinstance(err, PacsUnavailable))
            _retry_later(ctx, row, now, str(err) or type(err).__name__, report)
            continue
        _finish(ctx, row.case_id, now, studies)
        report.fetched.append(row.case_id)
    report.original = fetch_original_studies(ctx, telerad_ae, move_study)
    return report


def _queue_new_cases(ctx: EngineContext, now: datetime, report: PriorsReport) -> None:
    with ctx.read() as session:
        candidates = session.execute(cases_to_queue(50)).all()
    for case_id, site_id, process_id in candidates:
        if process_id != "teleexpertise":
            data = case_data(ctx, case_id)
            if data.get("acceptance") != "accept" or not data.get("radiologist_id"):
                continue  # declined: the next acceptance queues it
        try:
            with ctx.write() as session:
                session.execute(insert(PRIOR_FETCH).values(
                    case_id=case_id, site_id=site_id, status="pending", attempts=0, next_attempt_at=now,
                    queued_at=now))
                session.commit()
        except IntegrityError:
            continue  # queued by another worker meanwhile
        report.queued.append(case_id)


def _lease(ctx: EngineContext, row: Any, now: datetime) -> bool:
    with ctx.write() as session:
        taken = session.execute(update(PRIOR_FETCH).where(
            PRIOR_FETCH.c.case_id == row.case_id, PRIOR_FETCH.c.status == "pending",
            PRIOR_FETCH.c.next_attempt_at == row.next_attempt_at).values(next_attempt_at=now + LEASE))
        session.commit()
    return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


def _retry_later(ctx: EngineContext, row: Any, now: datetime, error: str, report: PriorsReport) -> None:
    attempts = row.attempts + 1
    failed = attempts >= MAX_ATTEMPTS
    delay = min(RETRY_DELAY * attempts, MAX_RETRY_DELAY)
    with ctx.write() as session:
        session.execute(update(PRIOR_FETCH).where(PRIOR_FETCH.c.case_id == row.case_id).values(
            attempts=attempts, last_error=error[:300], next_attempt_at=now + delay,
            status="failed" if failed else "pending", done_at=now if failed else None))
        if failed:
            record_image_events(session, row.case_id, [("dicom.priors_failed", {
                "site_id": row.site_id, "attempts": attempts, "error": error[:300]})], now)
        session.commit()
    (report.failed if failed else report.retried).append(row.case_id)


def _finish(ctx: EngineContext, case_id: int, now: datetime, studies: list[dict[str, Any]]) -> None:
    with ctx.write() as session:
        session.execute(update(PRIOR_FETCH).where(PRIOR_FETCH.c.case_id == case_id).values(
            status="done", done_at=now, last_error=None))
        record_image_events(session, case_id, [("dicom.priors_fetched", {"studies": studies})], now)
        session.commit()


def _query_keys(patient: Mapping[str, Any]) -> dict[str, str] | None:
    """The C-FIND keys for the case's patient: the IPP, else family name and birth date; None without either."""
    ipp = str(patient.get("site_patient_id") or "").strip()
    if ipp:
        return {"PatientID": ipp}
    family = normalise(patient.get("birth_name") or patient.get("used_name")).replace(" ", "*")
    birth_date = str(patient.get("birth_date") or "")[:10].replace("-", "")
    if family and len(birth_date) == 8:
        return {"PatientName": f"{family}*", "PatientBirthDate": birth_date}
    return None


def _fetch_case(ctx: EngineContext, case_id: int, site_id: str, telerad_ae: str,
                max_studies: int) -> list[dict[str, Any]]:
    """Find, choose, move and claim the priors of one case; what dicom.priors_fetched reports."""
    pacs = pacs_of_site(ctx, site_id)
    identity = case_identity(ctx, case_id)
    keys = _query_keys(identity.patient)
    if pacs is None or keys is None:
        return []
    data = case_data(ctx, case_id)
    with ctx.read() as session:
        teleexpertise = session.execute(case_process(case_id)).scalar_one() == TELEEXPERTISE
        # A teleexpertise has no identity check step: its priors are compared with the request's identity alone.
        checked = identity.identity_checked or teleexpertise
        own = set(session.execute(select(STUDY.c.uid).where(STUDY.c.case_id == case_id)).scalars()) \
            - set(session.execute(select(CASE_PRIOR.c.study_uid).where(CASE_PRIOR.c.case_id == case_id)).scalars())
    if max_studies == 0 and not teleexpertise:
        return []
    answers = find_studies(pacs, keys, telerad_ae)
    if teleexpertise:  # the tele-expert chooses the original study among them (original_study)
        record_candidates(ctx, case_id, site_id, identity.patient, answers)
    accession = str(data.get("accession_number") or "").strip()
    found = [s for s in answers
             if s.uid not in own and not (accession and (s.accession_number or "").strip() == accession)]
    chosen = choose(found, str(data.get("modality") or ""), max_studies)
    reported, missing = [], []
    for study in chosen:
        status = _claim(ctx, case_id, identity, checked, study)
        if status == "requested":
            move_study(pacs, telerad_ae, study.uid)
            status = _claim(ctx, case_id, identity, checked, study)
        if status == "requested":
            missing.append(study.uid)
        reported.append({"study_uid": study.uid, "date": study.date, "modalities": study.modalities,
                         "status": status})
    if missing:
        raise PacsUnavailable(f"{len(missing)} étude(s) non reçue(s) après le C-MOVE : {', '.join(missing)}")
    return reported


def choose(found: list[FoundStudy], modality: str, limit: int) -> list[FoundStudy]:
    """The `limit` most relevant studies: those of the case's modality first, then the newest."""
    wanted = {modality.upper()} | (SIMILAR_MODALITIES if modality.upper() in SIMILAR_MODALITIES else set())

    def relevant(study: FoundStudy) -> bool:
        return bool(wanted & set((study.modalities or "").upper().split("\\")))

    ranked = sorted(found, key=lambda s: s.date or "", reverse=True)
    return sorted(ranked, key=lambda s: not relevant(s))[:limit]


def _claim(ctx: EngineContext, case_id: int, identity: CaseIdentity, checked: bool, study: FoundStudy) -> str:
    """Record the study as a prior of the case, and attach or hold it if it was received: its prior status. Before
    the case's identity check it is held (AWAITING_CHECK) and the stability tick decides at the check, as for any
    image (integrations.dicom.holds.reevaluate_held)."""
    now = ctx.clock.now()
    held_reason = None
    with ctx.write() as session:
        prior = session.execute(select(CASE_PRIOR.c.status).where(
            CASE_PRIOR.c.case_id == case_id, CASE_PRIOR.c.study_uid == study.uid)).scalar_one_or_none()
        if prior is None:
            session.execute(insert(CASE_PRIOR).values(
                case_id=case_id, study_uid=study.uid, study_date=study.date, modality=(study.modalities or None),
                description=(study.description or "")[:200] or None, status="requested", requested_at=now))
        elif prior != "requested":
            session.commit()
            return str(prior)
        received = session.execute(select(STUDY).where(STUDY.c.uid == study.uid)).first()
        if received is None:
            session.commit()
            return "requested"
        if received.case_id is not None or received.status != "receiving" or received.site_id != identity.site_id:
            status = "attached" if received.case_id == case_id and received.status == "attached" else "elsewhere"
        else:
            differences = identity_differences(study_patient(received), identity.patient) if checked else []
            status = "held" if differences or not checked else "attached"
            held_reason = ("identité différente : " + ", ".join(differences))[:300] if differences else None
            session.execute(update(STUDY).where(STUDY.c.uid == study.uid, STUDY.c.status == "receiving",
                                                STUDY.c.case_id.is_(None)).values(
                case_id=case_id, status=status, hold_reason=held_reason or (None if checked else AWAITING_CHECK),
                notified_at=now))
            record_image_events(session, case_id, [(f"dicom.study_{status}", {
                "study_uid": study.uid, "accession_number": received.accession_number, "prior": True,
                "reason": held_reason or (None if checked else AWAITING_CHECK)})], now)
        session.execute(update(CASE_PRIOR).where(CASE_PRIOR.c.case_id == case_id,
                                                 CASE_PRIOR.c.study_uid == study.uid).values(
            status=status, fetched_at=now))
        session.commit()
    if held_reason is not None:
        open_identity_check(ctx, study.uid)
    return status


def _association(pacs: PacsAddress, telerad_ae: str, context: str) -> Any:
    ae = AE(ae_title=telerad_ae)
    ae.acse_timeout, ae.dimse_timeout, ae.network_timeout = ACSE_TIMEOUT, DIMSE_TIMEOUT, DIMSE_TIMEOUT
    ae.add_requested_context(context)
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title)
    if not assoc.is_established:
        raise PacsUnavailable(f"PACS {pacs.ae_title} ({pacs.host}:{pacs.port}) injoignable ou association refusée")
    return assoc


def _text(dataset: Dataset, keyword: str) -> str | None:
    value = dataset.get(keyword)
    if value is None or value == "":
        return None
    if keyword == "ModalitiesInStudy" and not isinstance(value, str):
        return "\\".join(str(v) for v in value)
    return str(value).strip() or None


def _date(value: str | None) -> str | None:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if value and len(value) >= 8 and value[:8].isdigit() else None


def find_studies(pacs: PacsAddress, keys: Mapping[str, str], telerad_ae: str = "TELERAD") -> list[FoundStudy]:
    """C-FIND (Study Root, STUDY level) on the PACS; PacsUnavailable when it cannot be asked or fails."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    for keyword in ("StudyInstanceUID", "StudyDate", "StudyDescription", "ModalitiesInStudy", "AccessionNumber",
                    "PatientID", "PatientName", "PatientBirthDate"):
        setattr(query, keyword, keys.get(keyword, ""))
    assoc = _association(pacs, telerad_ae, StudyRootQueryRetrieveInformationModelFind)
    found: list[FoundStudy] = []
    try:
        for status, identifier in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
            code = getattr(status, "Status", None)
            if code is None or (code not in PENDING and code != SUCCESS):
                raise PacsUnavailable(f"C-FIND refusé par le PACS {pacs.ae_title} (statut {code})")
            if code in PENDING and identifier is not None and len(found) < MAX_MATCHES:
                uid = _text(identifier, "StudyInstanceUID")
                if uid:
                    found.append(FoundStudy(uid, _date(_text(identifier, "StudyDate")),
                                            _text(identifier, "ModalitiesInStudy"),
                                            _text(identifier, "StudyDescription"),
                                            _text(identifier, "AccessionNumber")))
    finally:
        assoc.release()
    return found


def move_study(pacs: PacsAddress, telerad_ae: str, study_uid: str) -> None:
    """C-MOVE one study to Telerad's AE title; PacsUnavailable when the PACS refuses or fails."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    assoc = _association(pacs, telerad_ae, StudyRootQueryRetrieveInformationModelMove)
    final = None
    try:
        for status, _identifier in assoc.send_c_move(query, telerad_ae, StudyRootQueryRetrieveInformationModelMove):
            final = getattr(status, "Status", None)
    finally:
        assoc.release()
    if final != SUCCESS:
        raise PacsUnavailable(f"C-MOVE de l'étude {study_uid} refusé ou incomplet (statut {final})")


class PriorsTicker:
    """fetch_priors every TICK_SECONDS in a thread of the DICOM service (which receives the moved studies)."""

    def __init__(self, ctx: EngineContext, telerad_ae: str, settings: PriorsSettings | None = None,
                 tick_seconds: float = TICK_SECONDS):
        self.ctx, self.telerad_ae = ctx, telerad_ae
        self.settings = settings or PriorsSettings.from_env()
        self.tick_seconds = tick_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="dicom-priors", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            try:
                report = fetch_priors(self.ctx, self.telerad_ae, self.settings)
                if report.fetched or report.retried or report.failed or any(report.original.values()):
                    log.info("prior exams: %d cases fetched, %d to retry, %d given up; original studies: %s",
                             len(report.fetched), len(report.retried), len(report.failed),
                             {outcome: len(cases) for outcome, cases in report.original.items()})
            except Exception:
                log.exception("prior exams tick failed; next one in %s s", self.tick_seconds)
