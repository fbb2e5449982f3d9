"""Conventions as administrators read and complete them (CH-3.4, CH-6.1, CH-6.2, CH-4.1.14): the list, one
convention with what it still lacks, and its content (approval dates, medical lead, pathway, duties, fallback
procedure, technical part, expiry and renewal, visit interval). Activation itself is engine.services.directory's
update_convention, which refuses it until the convention is complete (directory_conventions.activation_refusal);
the documents are engine.services.convention_documents. Each change is one transaction in the global audit chain.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.convention_content import DEFAULT_VISIT_INTERVAL_DAYS, NUMBERS, TEXTS, missing_items
from engine.domain.data_checks import paris_date
from engine.errors import Forbidden
from engine.services.context import EngineContext
from engine.services.directory import DirectoryError
from engine.services.directory_conventions import ConventionSummary, convention_from_row
from engine.services.eligibility import MEDICAL_LEAD_ROLE
from engine.store import audit
from engine.store.convention_models import convention_facts, document_kinds
from engine.store.directory_models import ConventionRadiologist, ConventionRow, User, UserRole, UserSite

MAX_TEXT = 10_000
MAX_BANDWIDTH_MBPS = 100_000
MAX_RESTORATION_HOURS = 24 * 30
MAX_VISIT_INTERVAL_DAYS = 3 * 365


@dataclass(frozen=True)
class ConventionContent:
    """What an administrator enters on the convention's page (its documents apart)."""

    cme_validated_on: date | None = None
    g4_approved_on: date | None = None
    council_approved_on: date | None = None
    medical_lead: str | None = None
    patient_pathway: str = ""
    emergency_pathway: str = ""
    emergency_duties: str = ""
    travel_duties: str = ""
    fallback_procedure: str = ""
    equipment: str = ""
    archiving: str = ""
    network_bandwidth_mbps: int | None = None
    restoration_delay_hours: int | None = None
    expires_on: date | None = None
    renewal_on: date | None = None
    visit_interval_days: int = DEFAULT_VISIT_INTERVAL_DAYS


def _require_admin(actor: Actor) -> None:
    if not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur peut modifier les conventions.")


def list_conventions(ctx: EngineContext, actor: Actor, site_id: str | None = None) -> list[ConventionSummary]:
    _require_admin(actor)
    today = paris_date(ctx.clock.now())
    with ctx.read() as session:
        query = select(ConventionRow).order_by(ConventionRow.site_id, ConventionRow.id)
        if site_id is not None:
            query = query.where(ConventionRow.site_id == site_id)
        rows = session.execute(query).scalars().all()
        members: dict[int, list[str]] = {}
        for convention_id, username in session.execute(select(ConventionRadiologist.convention_id,
                                                               ConventionRadiologist.username)).tuples():
            members.setdefault(convention_id, []).append(username)
        kinds = document_kinds(session, [row.id for row in rows])
        return [convention_from_row(row, sorted(members.get(row.id, ())), kinds[row.id], today) for row in rows]


def convention_summary(ctx: EngineContext, actor: Actor, convention_id: int) -> ConventionSummary:
    _require_admin(actor)
    with ctx.read() as session:
        row = session.get(ConventionRow, convention_id)
        if row is None:
            raise DirectoryError(f"Convention inconnue : n° {convention_id}.")
        members = session.execute(select(ConventionRadiologist.username)
                                  .where(ConventionRadiologist.convention_id == convention_id)).scalars().all()
        return convention_from_row(row, sorted(members), document_kinds(session, [row.id])[row.id],
                                   paris_date(ctx.clock.now()))


@enforces("CH-3.4", "CH-6.1", "CH-6.2", "CH-4.1.14")
def update_convention_content(ctx: EngineContext, actor: Actor, convention_id: int,
                              content: ConventionContent) -> bool:
    """Record the convention's content; False when nothing changed. An active convention stays complete: a change
    that would take something it needs away is refused (deactivate it first)."""
    _require_admin(actor)
    today = paris_date(ctx.clock.now())
    wanted = _checked(content, today)
    with ctx.write() as session:
        row = session.execute(select(ConventionRow).where(ConventionRow.id == convention_id)
                              .with_for_update()).scalar_one_or_none()
        if row is None:
            raise DirectoryError(f"Convention inconnue : n° {convention_id}.")
        if wanted["medical_lead"] is not None and wanted["medical_lead"] != row.medical_lead:
            _check_medical_lead(session, row.site_id, wanted["medical_lead"])
        changes = {name: value for name, value in wanted.items() if getattr(row, name) != value}
        if not changes:
            return False
        for name, value in changes.items():
            setattr(row, name, value)
        missing = missing_items(convention_facts(row, document_kinds(session, [row.id])[row.id]), today)
        active = row.cme_validated and row.approved_by_g4 and row.approved_by_council
        if active and missing and not row.legacy_incomplete:
            raise DirectoryError("La convention est active et doit rester complète : il manquerait "
                                 + "; ".join(missing) + ". Désactivez-la d'abord si elle doit changer ainsi.")
        if not missing:
            row.legacy_incomplete = False
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "convention.content_changed", None, {
            "convention": convention_id, "site": row.site_id, "fields": sorted(changes),
            "complete": not missing})], ctx.clock.now())
        session.commit()
    return True


def _checked(content: ConventionContent, today: date) -> dict[str, Any]:
    """The content to store, stripped; DirectoryError (French) for a value out of bounds."""
    values = asdict(content)
    for name, label in TEXTS.items():
        values[name] = (values[name] or "").strip() or None
        if values[name] is not None and len(values[name]) > MAX_TEXT:
            raise DirectoryError(f"Le texte de {label} dépasse {MAX_TEXT} caractères.")
    values["medical_lead"] = (values["medical_lead"] or "").strip() or None
    for name, top in (("network_bandwidth_mbps", MAX_BANDWIDTH_MBPS),
                      ("restoration_delay_hours", MAX_RESTORATION_HOURS)):
        if values[name] is not None and not 0 < values[name] <= top:
            raise DirectoryError(f"Valeur invalide pour {NUMBERS[name]} : un nombre entre 1 et {top}.")
    if not 0 < values["visit_interval_days"] <= MAX_VISIT_INTERVAL_DAYS:
        raise DirectoryError("L'intervalle des visites sur site doit être compris entre 1 et "
                             f"{MAX_VISIT_INTERVAL_DAYS} jours.")
    for name, label in (("cme_validated_on", "la validation par la CME"), ("g4_approved_on", "l'approbation du G4"),
                        ("council_approved_on", "l'approbation du conseil de l'Ordre")):
        if values[name] is not None and values[name] > today:
            raise DirectoryError(f"La date de {label} ne peut pas être dans le futur.")
    if values["expires_on"] is not None and values["renewal_on"] is not None \
            and values["renewal_on"] > values["expires_on"]:
        raise DirectoryError("La date de renouvellement doit précéder la date d'échéance de la convention.")
    return values


def _check_medical_lead(session: Session, site_id: str, username: str) -> None:
    """CH-6.1: the person responsible for the medical organisation is an active site lead of this site."""
    found = session.execute(
        select(User.username).join(UserRole, UserRole.username == User.username)
        .join(UserSite, UserSite.username == User.username)
        .where(User.username == username, User.active.is_(True), UserRole.role == MEDICAL_LEAD_ROLE,
               UserSite.site_id == site_id)).scalar_one_or_none()
    if found is None:
        raise DirectoryError(f"« {username} » n'est pas un médecin responsable actif de ce site : choisissez un "
                             "compte qui a le rôle « Médecin responsable du site » sur ce site.")


def site_lead_choices(ctx: EngineContext, actor: Actor, site_id: str) -> list[tuple[str, str]]:
    """(username, display name) of the active medical leads of the site, who may be named on its convention."""
    _require_admin(actor)
    with ctx.read() as session:
        return [(u, n) for u, n in session.execute(
            select(User.username, User.display_name).join(UserRole, UserRole.username == User.username)
            .join(UserSite, UserSite.username == User.username)
            .where(User.active.is_(True), UserRole.role == MEDICAL_LEAD_ROLE, UserSite.site_id == site_id)
            .order_by(User.display_name)).tuples()]
