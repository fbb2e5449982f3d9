"""Query/Retrieve SCP (issue 18, CH-4.1.11): C-FIND, C-GET and C-MOVE for the radiologists' viewing stations.

- Study Root and Patient Root information models; levels PATIENT (Patient Root), STUDY, SERIES and IMAGE.
- The association's actor is the calling station's owner (integrations.dicom.workstations): only studies
  attached to a case (status 'attached') whose case he may see answer (engine.services.case_visibility, in SQL),
  and held instances never do (they are not in the index).
- C-GET sends the matching instances back on the association (the requestor proposes the SCP role for their
  storage classes); C-MOVE sends them to the destination AE title only when it is a registered station whose
  owner may see them too: an unknown destination, or one whose owner may see none of them, gets 0xA801.
- Audit: every retrieval (C-GET, C-MOVE) is one event per case on the case's chain before its sub-operations
  (dicom.qr_get / dicom.qr_move: calling AE, destination, studies, number of instances); a C-FIND is one
  dicom.qr_find event per case per association, the first time the case's studies answer a query.
- The files are sent as stored (no transcoding): an instance whose transfer syntax the peer did not accept counts
  as a failed sub-operation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import build_context
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)
from sqlalchemy import select

from engine.domain.actors import Actor
from engine.services.case_visibility import may_see_case_column
from engine.services.context import EngineContext
from engine.services.images import record_image_events
from integrations.dicom.models import INSTANCE, SERIES, STUDY
from integrations.dicom.qr_query import (
    MAX_MATCHES,
    MAX_SUBOPERATIONS,
    NOT_AUTHORISED,
    OUT_OF_RESOURCES,
    PENDING,
    QueryError,
    find_query,
    find_response,
    level_of,
    matching_conditions,
    modalities_of,
    model_of,
    row_values,
    visible_conditions,
)
from integrations.dicom.storage import path_of
from integrations.dicom.workstations import owner_actor, workstation_by_title

log = logging.getLogger(__name__)

QR_SOP_CLASSES = (
    PatientRootQueryRetrieveInformationModelFind, PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove, StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet, StudyRootQueryRetrieveInformationModelMove,
)
@dataclass(frozen=True)
class FindAnswer:
    responses: list[Dataset]
    case_studies: dict[int, list[str]]  # case id -> study UIDs answered (for the audit)


def find(ctx: EngineContext, actor: Actor, identifier: Dataset, model: str, retrieve_ae: str) -> FindAnswer:
    level = level_of(identifier, model)
    with ctx.read() as session:
        rows = session.execute(find_query(actor, identifier, level)).all()
    uids = sorted({row._mapping["study_uid"] for row in rows}) if level != "PATIENT" else []
    modalities = modalities_of(ctx, uids) if level == "STUDY" and "ModalitiesInStudy" in identifier else {}
    responses = [find_response(identifier, level, row_values(row, level, modalities), retrieve_ae) for row in rows]
    cases: dict[int, list[str]] = {}
    if level == "PATIENT":
        with ctx.read() as session:
            patient_rows = session.execute(select(STUDY.c.case_id, STUDY.c.uid).where(
                *visible_conditions(actor), *matching_conditions(identifier, level)).limit(MAX_MATCHES)).all()
        for case_id, study_uid in patient_rows:
            cases.setdefault(int(case_id), []).append(study_uid)
    else:
        for row in rows:
            study_uids = cases.setdefault(int(row._mapping["case_id"]), [])
            if row._mapping["study_uid"] not in study_uids:
                study_uids.append(row._mapping["study_uid"])
    return FindAnswer(responses, cases)


# --- C-GET / C-MOVE -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Match:
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax: str
    sha256: str
    study_uid: str
    case_id: int


UNIQUE_KEYS = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID",
               "IMAGE": "SOPInstanceUID"}


def matches(ctx: EngineContext, actor: Actor, identifier: Dataset, model: str, *,
            also_visible_to: Actor | None = None) -> list[Match]:
    """The instances a retrieval identifier names that the actor (and `also_visible_to`) may see."""
    level = level_of(identifier, model)
    if not str(identifier.get(UNIQUE_KEYS[level]) or "").strip():
        raise QueryError(f"clé unique {UNIQUE_KEYS[level]} absente pour le niveau {level}")
    conditions = [*visible_conditions(actor), *matching_conditions(identifier, level)]
    if also_visible_to is not None:
        conditions.append(may_see_case_column(also_visible_to, STUDY.c.case_id))
    query = select(INSTANCE.c.sop_instance_uid, INSTANCE.c.sop_class_uid, INSTANCE.c.transfer_syntax,
                   INSTANCE.c.sha256, STUDY.c.uid, STUDY.c.case_id) \
        .select_from(STUDY.join(SERIES, SERIES.c.study_uid == STUDY.c.uid)
                     .join(INSTANCE, INSTANCE.c.series_uid == SERIES.c.uid)) \
        .where(*conditions).order_by(STUDY.c.uid, SERIES.c.number, INSTANCE.c.instance_number) \
        .limit(MAX_SUBOPERATIONS + 1)
    with ctx.read() as session:
        rows = session.execute(query).all()
    if len(rows) > MAX_SUBOPERATIONS:
        raise QueryError("plus de 65535 instances demandées en une fois", OUT_OF_RESOURCES)
    return [Match(r[0], r[1], r[2], r[3], r[4], int(r[5])) for r in rows]


def record_access(ctx: EngineContext, actor: Actor, action: str, details: dict[int, dict[str, Any]]) -> None:
    """One event per case (case id -> its detail) on the case's chain, all in one transaction."""
    if not details:
        return
    now = ctx.clock.now()
    with ctx.write() as session:
        for case_id in sorted(details):
            record_image_events(session, case_id, [(action, details[case_id])], now, actor=actor.user_id)
        session.commit()


def _by_case(found: list[Match]) -> dict[int, list[str]]:
    cases: dict[int, list[str]] = {}
    for match in found:
        cases.setdefault(match.case_id, []).append(match.study_uid)
    return cases


def _count_by_case(found: list[Match]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for match in found:
        counts[match.case_id] = counts.get(match.case_id, 0) + 1
    return counts


def move_contexts(found: list[Match]) -> list[Any]:
    """The presentation contexts proposed to a C-MOVE destination: each SOP class with the stored transfer
    syntaxes, then the uncompressed ones (at most 128 contexts)."""
    syntaxes: dict[str, list[str]] = {}
    for match in found:
        listed = syntaxes.setdefault(match.sop_class_uid, [])
        if match.transfer_syntax not in listed:
            listed.append(match.transfer_syntax)
    contexts = []
    for sop_class, listed in list(syntaxes.items())[:128]:
        for fallback in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            if fallback not in listed:
                listed.append(fallback)
        contexts.append(build_context(sop_class, listed))
    return contexts


class QueryRetrieveHandlers:
    """The C-FIND, C-GET and C-MOVE event handlers of the SCP, for associations whose calling AE title is a
    registered station (event.assoc.telerad_actor, set by the SCP when it accepted the association)."""

    def __init__(self, ctx: EngineContext, ae_title: str, storage: Path):
        self.ctx = ctx
        self.ae_title = ae_title
        self.storage = storage

    @staticmethod
    def _actor(event: Any) -> Actor | None:
        return getattr(event.assoc, "telerad_actor", None)

    def on_find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        actor = self._actor(event)
        if actor is None:
            yield NOT_AUTHORISED, None
            return
        try:
            answer = find(self.ctx, actor, event.identifier, model_of(event.request.AffectedSOPClassUID),
                          self.ae_title)
        except QueryError as err:
            log.warning("C-FIND from %s refused: %s", event.assoc.telerad_calling_ae, err)
            yield err.status, None
            return
        seen: set[int] = event.assoc.__dict__.setdefault("telerad_found_cases", set())
        new_cases = {case_id: uids for case_id, uids in answer.case_studies.items() if case_id not in seen}
        calling = event.assoc.telerad_calling_ae
        record_access(self.ctx, actor, "dicom.qr_find", {
            case_id: {"calling_ae": calling, "study_uids": sorted(set(uids))} for case_id, uids in new_cases.items()})
        seen.update(new_cases)
        for response in answer.responses:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield PENDING, response

    def on_get(self, event: Any) -> Iterator[Any]:
        # pynetdicom takes the number of sub-operations first: a refusal is one sub-operation that fails with it.
        actor = self._actor(event)
        if actor is None:
            yield 1
            yield NOT_AUTHORISED, None
            return
        try:
            found = matches(self.ctx, actor, event.identifier, model_of(event.request.AffectedSOPClassUID))
        except QueryError as err:
            log.warning("C-GET from %s refused: %s", event.assoc.telerad_calling_ae, err)
            yield 1
            yield err.status, None
            return
        calling = event.assoc.telerad_calling_ae
        self._audit(actor, "dicom.qr_get", found, {"calling_ae": calling, "destination": calling})
        yield len(found)
        yield from self._suboperations(event, found)

    def on_move(self, event: Any) -> Iterator[Any]:
        actor = self._actor(event)
        if actor is None:  # a modality: pynetdicom takes the destination first, refused as unknown (0xA801)
            yield None, None
            return
        destination_title = str(event.move_destination or "").strip()
        station = workstation_by_title(self.ctx, destination_title)
        receiver = owner_actor(self.ctx, station) if station is not None else None
        calling = event.assoc.telerad_calling_ae
        try:
            model = model_of(event.request.AffectedSOPClassUID)
            wanted = matches(self.ctx, actor, event.identifier, model)
            found = matches(self.ctx, actor, event.identifier, model, also_visible_to=receiver) \
                if receiver is not None else []
        except QueryError as err:  # before the destination: pynetdicom answers 0xC514, unable to process
            log.warning("C-MOVE from %s refused: %s", calling, err)
            raise
        if station is None or receiver is None or (wanted and not found):
            log.warning("C-MOVE from %s to %r refused: %s", calling, destination_title,
                        "not a registered station" if station is None or receiver is None
                        else "its owner may not see these images")
            yield None, None  # 0xA801 move destination unknown
            return
        self._audit(actor, "dicom.qr_move", found, {"calling_ae": calling, "destination": station.ae_title,
                                                     "destination_owner": station.owner})
        yield station.host, station.port, {"contexts": move_contexts(found)} if found else {}
        yield len(found)
        yield from self._suboperations(event, found)

    def _audit(self, actor: Actor, action: str, found: list[Match], detail: dict[str, Any]) -> None:
        counts = _count_by_case(found)
        record_access(self.ctx, actor, action, {
            case_id: {**detail, "study_uids": sorted(set(study_uids)), "instances": counts[case_id]}
            for case_id, study_uids in _by_case(found).items()})

    def _suboperations(self, event: Any, found: list[Match]) -> Iterator[tuple[int, Dataset | None]]:
        for match in found:
            if event.is_cancelled:
                cancelled = Dataset()
                cancelled.FailedSOPInstanceUIDList = []
                yield 0xFE00, cancelled
                return
            try:
                dataset = dcmread(path_of(self.storage, match.sha256))
            except (OSError, ValueError) as err:
                log.error("instance %s could not be read for a retrieval: %s", match.sop_instance_uid, err)
                missing = Dataset()  # no SOP Class: the C-STORE cannot be sent, a failed sub-operation is counted
                missing.SOPInstanceUID = match.sop_instance_uid
                yield PENDING, missing
                continue
            yield PENDING, dataset
