"""Refusals. Trace refused attempts: a change a charter gate refused is not written, but the attempt is, on the
case's audit chain (or the global one for a case that does not exist yet), in a transaction of its own. And the
radiologist's motivated refusal of a case (CH-4.1.14): the fallback procedure of the site's convention, shown on
the refusal's steps (the radiologist who refuses, the requester who applies it)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.data_checks import paris_date
from engine.errors import CharterRefused
from engine.services.context import EngineContext
from engine.services.persistence import append_case_events, lock_instance
from engine.store import audit
from engine.store.convention_models import document_kinds, routes_cases
from engine.store.directory_models import ConventionRow

log = logging.getLogger(__name__)


def record_refusal(ctx: EngineContext, instance_id: int | None, actor: Actor, err: CharterRefused,
                   step: str | None = None) -> None:
    """Trace a refused attempt in its own transaction (the refused change itself was not written)."""
    detail = {"refusals": [{"rule": rule, "reason": reason} for rule, reason in err.refusals], "step": step}
    entry = audit.AuditEntry(actor.user_id, "charter.refused", instance_id, detail)
    try:
        with ctx.write() as session:
            if instance_id is None:
                audit.append_global(session, [entry], ctx.clock.now())
            else:
                append_case_events(session, lock_instance(session, instance_id), [entry], ctx.clock.now())
            session.commit()
    except Exception:  # noqa: BLE001 - the refusal itself must reach the user even if tracing it failed
        log.exception("could not record a charter refusal on case %s", instance_id)


# The forms of the refusal diagram's steps where the convention's fallback procedure is shown.
FALLBACK_FORMS = frozenset({"rf_reason.schema.json", "rf_fallback.schema.json"})


@dataclass(frozen=True)
class FallbackProcedure:
    convention_id: int
    text: str


@enforces("CH-4.1.14")
def fallback_procedures(ctx: EngineContext, site_id: str | None, form_key: str | None) -> list[FallbackProcedure]:
    """The fallback procedures of the site's conventions in force today, for a step of a refusal (empty for any
    other step). Organisational text, no patient data: the caller shows it on a task the actor may open."""
    if form_key not in FALLBACK_FORMS or not site_id:
        return []
    today = paris_date(ctx.clock.now())
    with ctx.read() as session:
        rows = session.execute(select(ConventionRow).where(ConventionRow.site_id == site_id)
                               .order_by(ConventionRow.id)).scalars().all()
        kinds = document_kinds(session, [row.id for row in rows])
        return [FallbackProcedure(row.id, row.fallback_procedure) for row in rows
                if row.fallback_procedure and routes_cases(row, kinds[row.id], today)]
