"""The PACS of each site, queried for the patients' prior exams (integrations.dicom.priors): administrators only,
every change on the global audit chain.

The PACS sends the prior studies to Telerad by C-MOVE (Telerad's storage SCP is the move destination), so its AE
title must also be an allowed calling AE title of the same site: declaring the PACS allows it when it is not yet
(in the same transaction), and refuses a title already allowed for another site. Removing the PACS leaves the
calling AE title allowed (the PACS may also send current exams).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import delete, select

from engine.domain.actors import Actor
from engine.errors import Forbidden, NotFound
from engine.services.audit import record_global_event
from engine.services.context import EngineContext
from engine.services.site_lookup import site_exists, with_site_name
from integrations.dicom.callers import CallerError, clean_ae_title
from integrations.dicom.models import DicomCallingAE, DicomStudy
from integrations.dicom.pacs_models import CasePrior, SitePacs

HOST_MAX = 253
URL_MAX = 500


@dataclass(frozen=True)
class PacsLine:
    site_id: str
    site_name: str
    ae_title: str
    host: str
    port: int
    dicomweb_url: str | None
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class PacsAddress:
    """What the priors tick needs to reach a site's PACS."""

    site_id: str
    ae_title: str
    host: str
    port: int


def _require_administrator(actor: Actor) -> None:
    if not actor.is_system and "administrator" not in actor.roles:
        raise Forbidden("Réservé aux administrateurs.")


def _clean(host: str, port: int | str, dicomweb_url: str | None) -> tuple[str, int, str | None]:
    host = (host or "").strip()
    if not host or len(host) > HOST_MAX or any(c.isspace() or c in "/\\@" for c in host):
        raise CallerError("Hôte du PACS invalide : un nom d'hôte ou une adresse IP.")
    try:
        number = int(str(port).strip())
    except ValueError:
        raise CallerError("Port du PACS invalide : un nombre entre 1 et 65535.") from None
    if not 1 <= number <= 65535:
        raise CallerError("Port du PACS invalide : un nombre entre 1 et 65535.")
    url = (dicomweb_url or "").strip() or None
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > URL_MAX:
            raise CallerError("Adresse DICOMweb invalide : une URL http(s) de 500 caractères au plus.")
    return host, number, url


def list_pacs(ctx: EngineContext) -> list[PacsLine]:
    with ctx.read() as session:
        rows = session.execute(with_site_name(select(SitePacs), SitePacs.site_id).order_by(SitePacs.site_id)).all()
        return [PacsLine(r.site_id, name, r.ae_title, r.host, r.port, r.dicomweb_url, r.updated_at, r.updated_by)
                for r, name in rows]


def pacs_of_site(ctx: EngineContext, site_id: str) -> PacsAddress | None:
    with ctx.read() as session:
        row = session.get(SitePacs, site_id)
        return PacsAddress(row.site_id, row.ae_title, row.host, row.port) if row is not None else None


def set_pacs(ctx: EngineContext, actor: Actor, site_id: str, ae_title: str, host: str, port: int | str,
             dicomweb_url: str | None = None) -> None:
    """Declare (or replace) the PACS of a site; its AE title becomes an allowed calling AE title of the site."""
    _require_administrator(actor)
    title = clean_ae_title(ae_title)
    host, number, url = _clean(host, port, dicomweb_url)
    now = ctx.clock.now()
    with ctx.write() as session:
        if not site_exists(session, site_id):
            raise CallerError("Site inconnu.")
        caller_site = session.execute(select(DicomCallingAE.site_id).where(DicomCallingAE.ae_title == title)
                                      ).scalar_one_or_none()
        if caller_site is not None and caller_site != site_id:
            raise CallerError(f"Le titre AE {title} est autorisé pour un autre site ({caller_site}) : un titre AE "
                              "appartient à un seul site.")
        if caller_site is None:
            session.add(DicomCallingAE(site_id=site_id, ae_title=title, created_at=now, created_by=actor.user_id))
        row = session.get(SitePacs, site_id)
        if row is None:
            session.add(SitePacs(site_id=site_id, ae_title=title, host=host, port=number, dicomweb_url=url,
                                 created_at=now, created_by=actor.user_id, updated_at=now, updated_by=actor.user_id))
        else:
            row.ae_title, row.host, row.port, row.dicomweb_url = title, host, number, url
            row.updated_at, row.updated_by = now, actor.user_id
        record_global_event(session, actor.user_id, "dicom.pacs_set", {
            "site_id": site_id, "ae_title": title, "host": host, "port": number, "dicomweb_url": url,
            "caller_added": caller_site is None}, now)
        session.commit()


def remove_pacs(ctx: EngineContext, actor: Actor, site_id: str) -> None:
    _require_administrator(actor)
    now = ctx.clock.now()
    with ctx.write() as session:
        row = session.get(SitePacs, site_id)
        if row is None:
            raise NotFound("aucun PACS déclaré pour ce site")
        detail = {"site_id": site_id, "ae_title": row.ae_title, "host": row.host, "port": row.port}
        session.execute(delete(SitePacs).where(SitePacs.site_id == site_id))
        record_global_event(session, actor.user_id, "dicom.pacs_removed", detail, now)
        session.commit()


@dataclass(frozen=True)
class PriorLine:
    """A prior exam of a case as the case page lists it (no permission check: the page checked the case)."""

    study_uid: str
    date: str | None  # YYYY-MM-DD
    modality: str | None
    description: str | None
    status: str  # requested, attached, held, rejected (by the technologist), elsewhere (another case's study)


def case_priors(ctx: EngineContext, case_id: int) -> list[PriorLine]:
    """The prior exams fetched for a case, newest first, with their study's status now (a held prior is attached
    or rejected later, at the identity check or by the technologist's reconciliation)."""
    with ctx.read() as session:
        rows = session.execute(select(CasePrior.study_uid, CasePrior.study_date, CasePrior.modality,
                                      CasePrior.description, CasePrior.status, DicomStudy.case_id, DicomStudy.status)
                               .outerjoin(DicomStudy, DicomStudy.uid == CasePrior.study_uid)
                               .where(CasePrior.case_id == case_id)
                               .order_by(CasePrior.study_date.desc(), CasePrior.study_uid)).all()
    return [PriorLine(uid, date, modality, description, study_status if study_case == case_id and study_status
                      and status != "elsewhere" else status)
            for uid, date, modality, description, status, study_case, study_status in rows]
