"""What the pages show of received images: the series of a case, a series' preview file, studies to watch.

No permission check here: the web layer checks that the person may see the case (engine.services.cases
ensure_visible / case_record) before calling these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select

from engine.services.context import EngineContext
from integrations.dicom.models import DicomHeldInstance, DicomInstance, DicomSeries, DicomStudy


@dataclass(frozen=True)
class SeriesLine:
    uid: str
    study_uid: str
    modality: str | None
    description: str | None
    number: int | None
    images: int
    status: str  # the study's: attached, or held (shown on the identity check case only)


@dataclass(frozen=True)
class CaseImages:
    series: list[SeriesLine]
    held_studies: int  # studies claiming this case but held for an identity check (CH-4.1.6)
    identity_checks: tuple[int, ...] = ()  # the reconciliation cases opened for them (linked from the case)


@dataclass(frozen=True)
class StudyLine:
    uid: str
    status: str
    site_id: str | None
    case_id: int | None
    identity_case_id: int | None
    accession_number: str | None
    patient_name: str | None
    patient_birth_date: str | None
    hold_reason: str | None
    series: int
    images: int
    first_received_at: datetime
    last_received_at: datetime
    notified_at: datetime | None


def _shown_on(case_id: int) -> ColumnElement[bool]:
    """Studies whose series a case shows: its attached studies, or the held study it checks (identity case)."""
    return or_(
        (DicomStudy.case_id == case_id) & (DicomStudy.status == "attached"),
        (DicomStudy.identity_case_id == case_id) & DicomStudy.status.in_(("held", "attached", "rejected")),
    )


def case_images(ctx: EngineContext, case_id: int) -> CaseImages:
    with ctx.read() as session:
        rows = session.execute(
            select(DicomSeries.uid, DicomSeries.study_uid, DicomSeries.modality, DicomSeries.description,
                   DicomSeries.number, func.count(DicomInstance.sop_instance_uid), DicomStudy.status)
            .join(DicomStudy, DicomStudy.uid == DicomSeries.study_uid)
            .outerjoin(DicomInstance, DicomInstance.series_uid == DicomSeries.uid)
            .where(_shown_on(case_id))
            .group_by(DicomSeries.uid, DicomSeries.study_uid, DicomSeries.modality, DicomSeries.description,
                      DicomSeries.number, DicomStudy.status, DicomStudy.first_received_at)
            .order_by(DicomStudy.first_received_at, DicomSeries.number, DicomSeries.uid)).all()
        held = session.execute(select(DicomStudy.identity_case_id).where(
            DicomStudy.case_id == case_id, DicomStudy.status == "held",
            or_(DicomStudy.identity_case_id.is_(None), DicomStudy.identity_case_id != case_id))).scalars().all()
    checks = tuple(sorted({check for check in held if check is not None}))
    return CaseImages([SeriesLine(*row) for row in rows], len(held), checks)


def preview_source(ctx: EngineContext, case_id: int, series_uid: str) -> str | None:
    """SHA-256 of the middle instance of a series shown on this case, None if the case does not show it."""
    with ctx.read() as session:
        shown = session.execute(select(DicomSeries.uid).join(DicomStudy, DicomStudy.uid == DicomSeries.study_uid)
                                .where(DicomSeries.uid == series_uid, _shown_on(case_id))).first()
    return series_representative(ctx, series_uid) if shown is not None else None


def series_representative(ctx: EngineContext, series_uid: str) -> str | None:
    """SHA-256 of the series' middle instance (by instance number, then SOP Instance UID): the file its preview
    is rendered from; None when the series has no instance. No permission check: the preview job uses it."""
    with ctx.read() as session:
        count = session.execute(select(func.count()).select_from(DicomInstance)
                                .where(DicomInstance.series_uid == series_uid)).scalar_one()
        if not count:
            return None
        return session.execute(
            select(DicomInstance.sha256).where(DicomInstance.series_uid == series_uid)
            .order_by(DicomInstance.instance_number, DicomInstance.sop_instance_uid)
            .offset(int(count) // 2).limit(1)).scalar_one_or_none()


def studies_to_watch(ctx: EngineContext, limit: int = 100) -> list[StudyLine]:
    """Held studies, studies without a case, and the latest received, newest first (administrators)."""
    series = (select(DicomSeries.study_uid, func.count(func.distinct(DicomSeries.uid)).label("series"),
                     func.count(DicomInstance.sop_instance_uid).label("images"))
              .outerjoin(DicomInstance, DicomInstance.series_uid == DicomSeries.uid)
              .group_by(DicomSeries.study_uid).subquery())
    with ctx.read() as session:
        rows = session.execute(
            select(DicomStudy, series.c.series, series.c.images)
            .outerjoin(series, series.c.study_uid == DicomStudy.uid)
            .order_by((DicomStudy.status == "attached").asc(), DicomStudy.last_received_at.desc())
            .limit(limit)).all()
        return [StudyLine(s.uid, s.status, s.site_id, s.case_id, s.identity_case_id, s.accession_number,
                          s.patient_name, s.patient_birth_date, s.hold_reason, int(n or 0), int(i or 0),
                          s.first_received_at, s.last_received_at, s.notified_at) for s, n, i in rows]


@dataclass(frozen=True)
class HeldInstanceLine:
    sop_instance_uid: str
    study_uid: str
    case_id: int | None
    site_id: str | None
    calling_ae: str | None
    source: str
    reason: str
    received_at: datetime


def held_instances(ctx: EngineContext, limit: int = 100) -> list[HeldInstanceLine]:
    """Instances kept out of the study they name (another site, another patient, another case), newest first
    (administrators: reconciliation with the sites)."""
    with ctx.read() as session:
        rows = session.execute(select(DicomHeldInstance).order_by(DicomHeldInstance.received_at.desc())
                               .limit(limit)).scalars().all()
        return [HeldInstanceLine(r.sop_instance_uid, r.study_uid, r.case_id, r.site_id, r.calling_ae, r.source,
                                 r.reason, r.received_at) for r in rows]
