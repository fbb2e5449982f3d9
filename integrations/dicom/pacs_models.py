"""Prior exams from the sites' PACS (issue 18): each site's PACS, the cases whose priors are to be fetched, and
the prior studies of each case.

- site_pacs: the PACS of a site (AE title, host, port; its DICOMweb URL is kept for later, C-FIND/C-MOVE is used).
- prior_fetch: one row per case whose priors are to be fetched (the queue of the worker's priors tick): written by
  the tick itself when it finds an accepted case or a teleexpertise of a site with a PACS, so nothing runs on the
  request path and nothing is lost across restarts; retried with a growing delay while the PACS does not answer.
- case_prior: the studies fetched for a case as its priors. A prior study is a dicom_study row with the case's
  case_id (so the case's readers see it, DICOMweb included) and a row here: that row is what makes it a prior,
  never the case's current exam (it never sends images_received).
- case_pacs_study: for a teleexpertise, every study of the patient the C-FIND found on the requesting site's PACS
  (at most MAX_CANDIDATES): the choices of the tele-expert's "original study" (engine.services.pacs_studies reads
  them by site and patient key).
- original_study_fetch: the original study the tele-expert chose at te_check, to be moved from the site's PACS and
  attached to the case as its examined study (integrations.dicom.original_study); one row per case, also when
  nothing was chosen (so a completed check is read once).

On the engine's metadata like integrations.dicom.models (the one exception to "adapters import engine.services
only"): they migrate with Alembic and commit in the same transaction as the case's audit events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, Select, String, exists, func, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models import Base, ProcessInstance, Task, UTCDateTime, table_of

ACCEPTANCE_TASK = "accept_case"
TELEEXPERTISE = "teleexpertise"
EXPERTISE_REQUEST_TASK = "te_request"  # the teleexpertise's request: the patient's identity is known from then on

# prior_fetch.status: to do (or to retry at next_attempt_at) / finished / given up after MAX_ATTEMPTS
FETCH_STATUSES = ("pending", "done", "failed")
# case_prior.status: C-MOVE asked, study not yet claimed / a prior of the case / held (identity differs) /
# already another case's study (not moved again)
PRIOR_STATUSES = ("requested", "attached", "held", "elsewhere")
EXPERT_CHECK_TASK = "te_check"  # the tele-expert's check of the request, where he chooses the original study
# original_study_fetch.status: nothing chosen / to move (or to retry at next_attempt_at) / finished / given up
ORIGINAL_STATUSES = ("none", "pending", "done", "failed")


class SitePacs(Base):
    """The PACS of a site, queried for the prior exams of its patients."""

    __tablename__ = "site_pacs"

    site_id: Mapped[str] = mapped_column(ForeignKey("site.id"), primary_key=True)
    ae_title: Mapped[str] = mapped_column(String(16))
    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer)
    dicomweb_url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(128))


class PriorFetch(Base):
    """A case whose prior exams are to be (or were) fetched from its site's PACS."""

    __tablename__ = "prior_fetch"
    __table_args__ = (Index("ix_prior_fetch_due", "status", "next_attempt_at"),)

    case_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(300))
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CasePrior(Base):
    """A study of the site's PACS fetched as a prior exam of a case (as the PACS described it in its C-FIND)."""

    __tablename__ = "case_prior"

    case_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), primary_key=True)
    study_uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    study_date: Mapped[str | None] = mapped_column(String(10))  # YYYY-MM-DD
    modality: Mapped[str | None] = mapped_column(String(64))  # ModalitiesInStudy, backslash-separated
    description: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CasePacsStudy(Base):
    """A study of the patient of a teleexpertise found on the requesting site's PACS (as its C-FIND described it)."""

    __tablename__ = "case_pacs_study"
    __table_args__ = (Index("ix_case_pacs_study_patient", "site_id", "patient_key"),)

    case_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), primary_key=True)
    study_uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(64))
    patient_key: Mapped[str] = mapped_column(String(200))  # engine.services.pacs_studies.patient_key
    study_date: Mapped[str | None] = mapped_column(String(10))  # YYYY-MM-DD
    modalities: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(String(200))
    accession_number: Mapped[str | None] = mapped_column(String(64))
    found_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OriginalStudyFetch(Base):
    """The original study a tele-expert chose for a teleexpertise, and its retrieval from the site's PACS."""

    __tablename__ = "original_study_fetch"
    __table_args__ = (Index("ix_original_study_fetch_due", "status", "next_attempt_at"),)

    case_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(64))
    study_uid: Mapped[str | None] = mapped_column(String(64))  # None: the check was completed without a choice
    status: Mapped[str] = mapped_column(String(16))  # ORIGINAL_STATUSES
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(300))
    check_ended_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the te_check completion last read
    requested_by: Mapped[str | None] = mapped_column(String(128))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16))  # attached, held, elsewhere


SITE_PACS = table_of(SitePacs)
PRIOR_FETCH = table_of(PriorFetch)
CASE_PRIOR = table_of(CasePrior)
CASE_PACS_STUDY = table_of(CasePacsStudy)
ORIGINAL_STUDY_FETCH = table_of(OriginalStudyFetch)


def cases_to_queue(limit: int) -> Select[Any]:
    """(case id, site id, process id) of the running cases of a site with a PACS not queued yet: teleexpertises
    whose request was written, and cases whose acceptance task was completed and is not offered again (the caller
    checks it was accepted)."""
    requested = exists().where(Task.instance_id == ProcessInstance.id, Task.spec_name == EXPERTISE_REQUEST_TASK,
                               Task.status == "completed")
    accepted = exists().where(Task.instance_id == ProcessInstance.id, Task.spec_name == ACCEPTANCE_TASK,
                              Task.status == "completed")
    offered = exists().where(Task.instance_id == ProcessInstance.id, Task.spec_name == ACCEPTANCE_TASK,
                             Task.status == "open")
    return (select(ProcessInstance.id, ProcessInstance.site_id, ProcessInstance.process_id)
            .join(SitePacs, SitePacs.site_id == ProcessInstance.site_id)
            .where(ProcessInstance.status == "running", ~exists().where(PriorFetch.case_id == ProcessInstance.id),
                   or_((ProcessInstance.process_id == TELEEXPERTISE) & requested, accepted & ~offered))
            .order_by(ProcessInstance.id).limit(limit))


def case_process(case_id: int) -> Select[Any]:
    """The process id of a case (telediagnosis, teleexpertise...)."""
    return select(ProcessInstance.process_id).where(ProcessInstance.id == case_id)


def checks_to_read(limit: int) -> Select[Any]:
    """(case id, site id, when its last te_check ended) of the running teleexpertises of a site with a PACS
    whose tele-expert's check was completed since it was last read (original_study_fetch.check_ended_at)."""
    last = (select(Task.instance_id.label("case_id"), func.max(Task.ended_at).label("ended_at"))
            .where(Task.spec_name == EXPERT_CHECK_TASK, Task.status == "completed")
            .group_by(Task.instance_id).subquery())
    return (select(ProcessInstance.id, ProcessInstance.site_id, last.c.ended_at)
            .join(last, last.c.case_id == ProcessInstance.id)
            .join(SitePacs, SitePacs.site_id == ProcessInstance.site_id)
            .outerjoin(OriginalStudyFetch, OriginalStudyFetch.case_id == ProcessInstance.id)
            .where(ProcessInstance.status == "running", ProcessInstance.process_id == TELEEXPERTISE,
                   or_(OriginalStudyFetch.case_id.is_(None), OriginalStudyFetch.check_ended_at < last.c.ended_at))
            .order_by(ProcessInstance.id).limit(limit))
