"""De-identified research exports (CH-8.2): a researcher's requests, an administrator's decision, the production
of the export (run off the request path by integrations.dicom.research_export, which calls the steps below) and
its single download. Every step is audited; the request row records who asked, under which protocol and
approval, who decided, which cases the export holds and when it was downloaded."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.research import (
    APPROVED,
    DOWNLOADED,
    EXPIRED,
    EXPORT_KEPT_DAYS,
    PENDING,
    READY,
    REFUSED,
    RequestSpec,
    ResearchError,
    check_spec,
    deidentified_row,
)
from engine.errors import Conflict, Forbidden, NotFound
from engine.services.case_record import display_names
from engine.services.context import EngineContext
from engine.services.directory import list_sites
from engine.store import audit
from engine.store.models import ProcessInstance
from engine.store.research_models import ResearchRequest

MAX_NOTE = 300


@dataclass(frozen=True)
class RequestView:
    id: int
    requester: str
    spec: RequestSpec
    status: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    progress_done: int
    progress_total: int
    produced_at: datetime | None
    sha256: str | None
    manifest: dict[str, Any] | None
    error: str | None
    downloaded_by: str | None
    downloaded_at: datetime | None
    names: dict[str, str]  # display names of the requester, the decider and the downloader
    attempt: int = 0  # the production's claim (engine.services.research_production)
    heartbeat_at: datetime | None = None


@dataclass(frozen=True)
class CaseSource:
    """What the export needs of one case: its pseudonymisation keys, names to scrub and values of the fields."""
    case_id: int
    patient_key: str
    names: tuple[str, ...]
    birth: date | None
    values: dict[str, Any]
    identifiers: tuple[str, ...] = ()  # IPP, INS, accession number: scrubbed from free text wherever written


def is_researcher(actor: Actor) -> bool:
    return "researcher" in actor.roles


def is_admin(actor: Actor) -> bool:
    return actor.is_system or "administrator" in actor.roles


def _view(row: ResearchRequest, names: dict[str, str] | None = None) -> RequestView:
    spec = RequestSpec(row.protocol, row.approval_ref, tuple(json.loads(row.fields)), row.images, row.retain_dates,
                       row.clean_pixels, row.period_start, row.period_end, tuple(json.loads(row.sites)))
    return RequestView(row.id, row.requester, spec, row.status, row.created_at, row.decided_by, row.decided_at,
                       row.decision_note, row.progress_done, row.progress_total, row.produced_at, row.sha256,
                       json.loads(row.manifest) if row.manifest else None, row.error, row.downloaded_by,
                       row.downloaded_at, names or {}, row.attempt or 0, row.heartbeat_at)


def _named(session: Any, rows: list[ResearchRequest]) -> list[RequestView]:
    names = display_names(session, [u for r in rows for u in (r.requester, r.decided_by, r.downloaded_by)])
    return [_view(row, names) for row in rows]


def _audit(session: Any, actor: str, action: str, detail: dict[str, Any], at: datetime) -> None:
    audit.append_global(session, [audit.AuditEntry(actor, action, None, detail)], at)


@enforces("CH-8.2")
def create_request(ctx: EngineContext, actor: Actor, spec: RequestSpec) -> int:
    """A researcher's request, pending an administrator's decision; returns its id."""
    if not is_researcher(actor):
        raise Forbidden("Seul un chercheur demande un export de recherche.")
    spec = check_spec(spec, (site[0] for site in list_sites(ctx)))
    now = ctx.clock.now()
    with ctx.write() as session:
        row = ResearchRequest(requester=actor.user_id, protocol=spec.protocol, approval_ref=spec.approval_ref,
                              fields=json.dumps(list(spec.fields)), images=spec.images,
                              retain_dates=spec.retain_dates, clean_pixels=spec.clean_pixels,
                              period_start=spec.period_start, period_end=spec.period_end,
                              sites=json.dumps(list(spec.sites)), status=PENDING, created_at=now,
                              progress_done=0, progress_total=0)
        session.add(row)
        session.flush()
        _audit(session, actor.user_id, "research.requested", {
            "request": row.id, "protocol": spec.protocol, "approval": spec.approval_ref, "fields": list(spec.fields),
            "images": spec.images, "sites": list(spec.sites), "period": [spec.period_start.isoformat(),
                                                                         spec.period_end.isoformat()]}, now)
        session.commit()
        return int(row.id)


def list_requests(ctx: EngineContext, actor: Actor) -> list[RequestView]:
    """An administrator sees every request, a researcher his own; anyone else: Forbidden."""
    query = select(ResearchRequest).order_by(ResearchRequest.id.desc())
    if not is_admin(actor):
        if not is_researcher(actor):
            raise Forbidden("Les exports de recherche sont réservés aux chercheurs et aux administrateurs.")
        query = query.where(ResearchRequest.requester == actor.user_id)
    with ctx.read() as session:
        return _named(session, list(session.execute(query).scalars()))


def get_request(ctx: EngineContext, actor: Actor, request_id: int) -> RequestView:
    with ctx.read() as session:
        row = session.get(ResearchRequest, request_id)
        if row is None or not (is_admin(actor) or (is_researcher(actor) and row.requester == actor.user_id)):
            raise NotFound("demande d'export introuvable")
        return _named(session, [row])[0]


@enforces("CH-8.2")
def decide(ctx: EngineContext, actor: Actor, request_id: int, approve: bool, note: str = "") -> None:
    """An administrator approves or refuses a pending request (audited); a refusal says why."""
    if not is_admin(actor):
        raise Forbidden("Seul un administrateur approuve ou refuse une demande d'export de recherche.")
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise ResearchError(f"Le motif ne dépasse pas {MAX_NOTE} caractères.")
    if not approve and not note:
        raise ResearchError("Indiquez le motif du refus.")
    now = ctx.clock.now()
    with ctx.write() as session:
        row = session.get(ResearchRequest, request_id, with_for_update=True)
        if row is None:
            raise NotFound("demande d'export introuvable")
        if row.status != PENDING:
            raise Conflict("Cette demande a déjà été examinée.")
        row.status, row.decided_by, row.decided_at = (APPROVED if approve else REFUSED), actor.user_id, now
        row.decision_note = note or None
        _audit(session, actor.user_id, "research.approved" if approve else "research.refused",
               {"request": request_id, "protocol": row.protocol, "approval": row.approval_ref, "note": note}, now)
        session.commit()


def case_sources(ctx: EngineContext, spec: RequestSpec) -> list[CaseSource]:
    """The cases of the request's sites started within its period, with what their export needs."""
    from engine.services.instances import case_data

    start = datetime.combine(spec.period_start, time.min, UTC)
    end = datetime.combine(spec.period_end + timedelta(days=1), time.min, UTC)
    with ctx.read() as session:
        rows = session.execute(select(ProcessInstance).where(
            ProcessInstance.site_id.in_(spec.sites), ProcessInstance.started_at >= start,
            ProcessInstance.started_at < end, ProcessInstance.patient_name.is_not(None))
            .order_by(ProcessInstance.id)).scalars().all()
    found = []
    for row in rows:
        data = case_data(ctx, row.id)
        found_patient = data.get("patient")
        patient: dict[str, Any] = found_patient if isinstance(found_patient, dict) else {}
        names = [row.patient_name or ""] + [str(patient.get(key) or "") for key in
                                            ("birth_name", "used_name", "first_names")]
        birth = _parse_date(patient.get("birth_date") or row.patient_birth_date)
        values = {"process": row.process_id, "site": row.site_id, "urgency": row.urgency, "status": row.status,
                  "sex": patient.get("sex"), "requested_at": row.started_at, "ended_at": row.ended_at}
        for key in ("modality", "requested_exam", "clinical_context", "question", "findings", "conclusion"):
            value = _find(data, key)
            values[key] = value if isinstance(value, str | int | float | bool) or value is None else str(value)
        key = f"{row.site_id}:{row.patient_ref}" if row.patient_ref else \
            f"{row.patient_name}|{row.patient_birth_date}"
        identifiers = [row.patient_ref, row.accession_number] + [patient.get(name) for name in ("ipp", "ins", "nir")]
        found.append(CaseSource(row.id, key, tuple(name for name in names if name), birth, values,
                                tuple(str(value) for value in identifiers if value)))
    return found


def case_rows(sources: Iterable[CaseSource], spec: RequestSpec, secret: bytes) -> list[dict[str, Any]]:
    return [deidentified_row(source.values, patient_key=source.patient_key, case_key=str(source.case_id),
                             names=source.names, birth=source.birth, fields=spec.fields, secret=secret,
                             retain_dates=spec.retain_dates, identifiers=source.identifiers)
            for source in sources]


def _find(data: dict[str, Any], key: str) -> Any:
    if key in data:
        return data[key]
    for value in data.values():
        if isinstance(value, dict) and key in value:
            return value[key]
    return None


def _parse_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


@enforces("CH-8.2")
def take_download(ctx: EngineContext, actor: Actor, request_id: int) -> str:
    """The export's file name, given ONCE: to its requester (or the command line, run by an administrator on the
    server). The download is recorded and audited in the same transaction; the caller sends then deletes the file."""
    now = ctx.clock.now()
    with ctx.write() as session:
        row = session.get(ResearchRequest, request_id, with_for_update=True)
        if row is None or not (row.requester == actor.user_id or actor.user_id == "cli"):
            raise NotFound("demande d'export introuvable")
        if row.status == DOWNLOADED:
            raise Conflict("Cet export a déjà été téléchargé : il ne se télécharge qu'une fois.")
        if row.status == EXPIRED:
            raise Conflict(f"Cet export n'a pas été téléchargé dans les {EXPORT_KEPT_DAYS} jours : il a été "
                           "supprimé.")
        if row.status != READY or not row.file_name:
            raise Conflict("Cet export n'est pas prêt : la demande doit être approuvée puis l'export produit.")
        row.status, row.downloaded_by, row.downloaded_at = DOWNLOADED, actor.user_id, now
        _audit(session, actor.user_id, "research.downloaded", {"request": request_id, "sha256": row.sha256}, now)
        session.commit()
        return row.file_name


def expire_exports(ctx: EngineContext) -> list[str]:
    """Exports produced more than EXPORT_KEPT_DAYS days ago and never downloaded: marked expired (audited); their
    file names are returned for the caller to delete."""
    now = ctx.clock.now()
    with ctx.write() as session:
        rows = session.execute(select(ResearchRequest).where(
            ResearchRequest.status == READY,
            ResearchRequest.produced_at < now - timedelta(days=EXPORT_KEPT_DAYS)).with_for_update()).scalars().all()
        names = []
        for row in rows:
            row.status = EXPIRED
            names.append(row.file_name or "")
            _audit(session, "system", "research.expired", {"request": row.id}, now)
        session.commit()
        return [name for name in names if name]
