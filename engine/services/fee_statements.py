"""Monthly fee statements (CH-7, CH-6.4): per radiologist and per site, who owes whom what, by CCAM act.

Each act of a case released in the month (engine.services.case_acts) is shared by engine.domain.fees.split_fee with
the CCAM table in effect on the day of release: CT and MRI (CH-7.2), conventional radiology (CH-7.3), a
teleexpertise's specific fee (CH-7.4), the site's on-call fee for an act done on call (CH-7.5), both as the settings
of the remuneration document in force that day (engine.services.fee_settings); the site's monthly transmission
costs (the setting in force on the month's first day) are a line of the site's statement only, never of a
radiologist's (CH-7.6). Nothing else can
be paid: there is no flat-rate nor productivity line, and a correction is an adjustment tied to a case's act
(CH-6.4, CH-7.1), audited, and carried into the next statement issued.

``preview_statement`` computes (nothing stored); ``issue_statement`` freezes the month (JSON snapshot, SHA-256,
audited), then the statement is never changed (engine.store.fee_models) and its cases' acts are locked."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.fees import RADIOLOGIST, REFUSED_FEE_WORDS, FeeError, split_fee
from engine.errors import Conflict, Forbidden, NotFound
from engine.services.case_acts import case_radiologist
from engine.services.case_record import display_names
from engine.services.ccam_tables import acts_of_table, table_on
from engine.services.context import EngineContext
from engine.services.fee_settings import (
    ON_CALL_FEE,
    TELEEXPERTISE_FEE,
    TRANSMISSION_COSTS,
    SettingsBook,
    lock_fee_changes,
    month_book,
    month_days,
)
from engine.store import audit
from engine.store.directory_models import SiteRow, User, UserRole
from engine.store.fee_models import CaseAct, CcamTable, FeeAdjustment, FeeStatement
from engine.store.models import ProcessInstance, Task

PARIS = ZoneInfo("Europe/Paris")
SITE = "site"
SCOPES = (RADIOLOGIST, SITE)
SNAPSHOT_FORMAT = 2  # 2: the settings applied, by site and date of effect (engine.services.fee_settings)
_MONTH = re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$")
FLAT_RATE_REFUSAL = ("Ligne refusée : la rémunération repose exclusivement sur les actes CCAM ; aucun forfait ni "
                     "clause de productivité (CH-6.4, CH-7.1). Une correction porte sur l'acte d'un dossier.")


class FeeStatementError(ValueError):
    """Refused with a French message."""


@dataclass(frozen=True)
class Month:
    year: int
    number: int

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.number:02d}"

    def bounds(self) -> tuple[datetime, datetime]:
        after = (self.year + 1, 1) if self.number == 12 else (self.year, self.number + 1)
        return (datetime(self.year, self.number, 1, tzinfo=PARIS).astimezone(UTC),
                datetime(*after, 1, tzinfo=PARIS).astimezone(UTC))


def parse_month(text: str | None) -> Month:
    found = _MONTH.match(text or "")
    if not found or not 1 <= int(found.group(2)) <= 12 or not 2000 <= int(found.group(1)) <= 2100:
        raise FeeStatementError(f"Mois invalide : « {(text or '').strip()[:20]} ». Indiquez l'année et le mois, "
                                "par exemple 2026-11.")
    return Month(int(found.group(1)), int(found.group(2)))


@dataclass(frozen=True)
class Scope:
    kind: str
    id: str

    def __post_init__(self) -> None:
        if self.kind not in SCOPES or not self.id or len(self.id) > 128:
            raise FeeStatementError("Choisissez le radiologue ou le site du relevé.")


def may_read(actor: Actor, scope: Scope) -> bool:
    """Administrators (finance) read all; a radiologist his own statements; a site's medical lead his site's."""
    if actor.is_system or "administrator" in actor.roles:
        return True
    if scope.kind == RADIOLOGIST:
        return scope.id == actor.user_id
    return "site_lead" in actor.roles and scope.id in actor.sites


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _released_cases(session: Session, month: Month) -> list[tuple[int, datetime]]:
    """The cases first released in the month: the acknowledgement task offered (telediagnosis), the expert's answer
    given (teleexpertise); a case released again later (an addendum) stays in the month of its first release."""
    start, end = month.bounds()
    td_first = func.min(Task.created_at)
    td = (select(Task.instance_id, td_first).join(ProcessInstance, ProcessInstance.id == Task.instance_id)
          .where(Task.spec_name == "acknowledge_report", ProcessInstance.process_id == "telediagnosis")
          .group_by(Task.instance_id).having(td_first >= start, td_first < end))
    te_first = func.min(Task.ended_at)
    te = (select(Task.instance_id, te_first).where(Task.spec_name == "te_report", Task.status == "completed")
          .group_by(Task.instance_id).having(te_first >= start, te_first < end))
    found: list[Any] = [*session.execute(td).all(), *session.execute(te).all()]
    return sorted((int(case_id), moment) for case_id, moment in found if moment is not None)


def _case_lines(session: Session, case: ProcessInstance, released: datetime, radiologist: str | None,
                book: SettingsBook) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    day = released.astimezone(PARIS).date()
    table: CcamTable | None = table_on(session, day)
    acts = acts_of_table(session, table.id) if table is not None else {}
    teleexpertise = case.process_id == "teleexpertise"
    lines = []
    for row in session.execute(select(CaseAct).where(CaseAct.case_id == case.id).order_by(CaseAct.id)).scalars():
        act = acts.get(row.code)
        if act is None:
            raise FeeStatementError(f"Dossier {case.id} : l'acte {row.code} est absent de la table CCAM en vigueur "
                                    f"le {day.isoformat()}.")
        fees = {"teleexpertise_fee_eur": book.amount(TELEEXPERTISE_FEE, case.site_id, day)} if teleexpertise else {}
        try:  # the settings in force for the case's site on the day of release
            split = split_fee(act, teleexpertise=teleexpertise,
                              on_call_fee_eur=book.amount(ON_CALL_FEE, case.site_id, day) if row.on_call else 0, **fees)
        except FeeError as err:
            raise FeeStatementError(f"Dossier {case.id} : {err}") from err
        lines.append({"case_id": case.id, "act_id": row.id, "released_at": released.isoformat(),
                      "site_id": case.site_id, "radiologist": radiologist, "code": act.code, "label": act.label,
                      "family": act.family, "teleexpertise": teleexpertise, "urgency": row.urgency,
                      "on_call": row.on_call, "price_eur": _money(act.price_eur),
                      "radiologist_eur": _money(split.radiologist_eur), "site_eur": _money(split.site_eur),
                      "breakdown": [{"key": b.key, "label": b.label, "payee": b.payee,
                                     "amount_eur": _money(b.amount_eur)} for b in split.breakdown]})
    info = None if table is None else {"id": table.id, "source": table.source_name, "sample": bool(table.sample),
                                       "effective_from": table.effective_from.isoformat()}
    return lines, info


def _pending_adjustments(session: Session, scope: Scope, statement_id: int | None = None) -> list[FeeAdjustment]:
    if scope.kind == RADIOLOGIST:
        where = [FeeAdjustment.scope_id == scope.id, FeeAdjustment.statement_id.is_(None)]
    else:
        where = [FeeAdjustment.site_id == scope.id, FeeAdjustment.site_statement_id.is_(None)]
    return list(session.execute(select(FeeAdjustment).where(*where).order_by(FeeAdjustment.id)).scalars())


@enforces("CH-7.1", "CH-7.2", "CH-7.3", "CH-7.4", "CH-7.5", "CH-7.6")
def _compute(ctx: EngineContext, session: Session, scope: Scope, month: Month) -> dict[str, Any]:
    """The month's statement of `scope`: every act of the cases released in the month, shared by split_fee."""
    lines: list[dict[str, Any]] = []
    missing: list[int] = []
    tables: dict[int, dict[str, Any]] = {}
    book = month_book(session, month.year, month.number)  # the settings of the month, one query
    for case_id, released in _released_cases(session, month):
        case = session.get(ProcessInstance, case_id)
        if case is None:
            continue
        radiologist = case_radiologist(session, case_id)
        if (scope.kind == RADIOLOGIST and radiologist != scope.id) or (scope.kind == SITE and case.site_id != scope.id):
            continue
        found, table = _case_lines(session, case, released, radiologist, book)
        if table is not None:
            tables[table["id"]] = table
        lines.extend(found)
        if not found:
            missing.append(case_id)
    adjustments: list[dict[str, Any]] = [
        {"id": a.id, "case_id": a.case_id, "radiologist": a.scope_id, "amount_eur": _money(a.amount_eur),
         "reason": a.reason, "created_by": a.created_by, "created_at": a.created_at.isoformat()}
        for a in _pending_adjustments(session, scope)]
    to_radiologist = sum((Decimal(line["radiologist_eur"]) for line in lines), Decimal("0.00"))
    site_net = sum((Decimal(line["site_eur"]) for line in lines), Decimal("0.00"))
    adjusted = sum((Decimal(a["amount_eur"]) for a in adjustments), Decimal("0.00"))
    transmission = (book.amount(TRANSMISSION_COSTS, scope.id, month_days(month.year, month.number)[0])
                    if scope.kind == SITE else Decimal("0.00"))  # CH-7.6: the site's only, its month's first day
    owed: dict[tuple[str, str], Decimal] = {}  # (site, radiologist) -> what the site owes the radiologist
    for line in lines:
        key = (line["site_id"] or "", line["radiologist"] or "")
        owed[key] = owed.get(key, Decimal("0.00")) + Decimal(line["radiologist_eur"])
    for adj in adjustments:
        case = session.get(ProcessInstance, adj["case_id"])
        key = ((case.site_id if case else None) or "", adj["radiologist"])
        owed[key] = owed.get(key, Decimal("0.00")) + Decimal(adj["amount_eur"])
    names = display_names(session, [scope.id] if scope.kind == RADIOLOGIST else [k[1] for k in owed])
    sites = {row.id: row.name for row in session.execute(select(SiteRow)).scalars()}
    name = names.get(scope.id, scope.id) if scope.kind == RADIOLOGIST else sites.get(scope.id)
    if name is None:
        raise FeeStatementError("Site inconnu.")
    start, end = month.bounds()
    return {
        "format": SNAPSHOT_FORMAT, "scope": {"kind": scope.kind, "id": scope.id, "name": name},
        "month": month.label, "period": {"start": start.isoformat(), "end": end.isoformat(),
                                         "timezone": "Europe/Paris"},
        "complete": end <= ctx.clock.now(), "computed_at": ctx.clock.now().isoformat(),
        "tables": sorted(tables.values(), key=lambda t: t["effective_from"]),
        "sample_table": any(t["sample"] for t in tables.values()),
        "settings": {"transmission_costs_eur": _money(transmission), "applied": book.applied()},
        "lines": lines, "cases_without_act": missing, "adjustments": adjustments,
        "payments": [{"payer_site": site, "payer_name": sites.get(site, site), "payee": rad,
                      "payee_name": names.get(rad, rad), "amount_eur": _money(amount)}
                     for (site, rad), amount in sorted(owed.items())],
        "totals": {"acts": len(lines), "price_eur": _money(sum((Decimal(x["price_eur"]) for x in lines),
                                                               Decimal("0.00"))),
                   "radiologist_eur": _money(to_radiologist), "adjustments_eur": _money(adjusted),
                   "due_to_radiologists_eur": _money(to_radiologist + adjusted),
                   "transmission_costs_eur": _money(transmission),
                   "site_net_eur": _money(site_net - adjusted - transmission)},
    }


def scope_choices(ctx: EngineContext, actor: Actor) -> list[tuple[Scope, str]]:
    """The radiologists and sites whose statements the actor may read, with their names."""
    admin = actor.is_system or "administrator" in actor.roles
    with ctx.read() as session:
        choices: list[tuple[Scope, str]] = []
        if admin:
            rows = session.execute(select(User.username, User.display_name).join(
                UserRole, UserRole.username == User.username).where(UserRole.role.in_(("radiologist", "tele_expert")))
                .distinct().order_by(User.display_name)).all()
            choices += [(Scope(RADIOLOGIST, username), name) for username, name in rows]
        elif actor.roles & {"radiologist", "tele_expert"}:
            name = display_names(session, [actor.user_id]).get(actor.user_id, actor.user_id)
            choices.append((Scope(RADIOLOGIST, actor.user_id), name))
        sites = session.execute(select(SiteRow.id, SiteRow.name).order_by(SiteRow.name)).all()
        choices += [(Scope(SITE, site_id), name) for site_id, name in sites
                    if admin or ("site_lead" in actor.roles and site_id in actor.sites)]
    return choices


def month_radiologists(ctx: EngineContext, month: Month) -> list[str]:
    """The radiologists of the cases released in the month (one statement each)."""
    with ctx.read() as session:
        found = {case_radiologist(session, case_id) for case_id, _ in _released_cases(session, month)}
    return sorted(name for name in found if name)


def preview_statement(ctx: EngineContext, actor: Actor, scope: Scope, month: Month) -> dict[str, Any]:
    if not may_read(actor, scope):
        raise Forbidden("Vous ne pouvez consulter que vos propres relevés.")
    with ctx.read() as session:
        return _compute(ctx, session, scope, month)


def issue_statement(ctx: EngineContext, actor: Actor, scope: Scope, month: Month) -> int:
    """Freeze the month's statement (administrators only), audited; pending adjustments are carried into it."""
    if not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur émet un relevé d'honoraires.")
    now = ctx.clock.now()
    if month.bounds()[1] > now:
        raise FeeStatementError(f"Le mois {month.label} n'est pas terminé : son relevé s'émet après sa fin.")
    try:
        with ctx.write() as session:
            lock_fee_changes(session)  # no setting change between the computation and the freeze
            if session.execute(select(FeeStatement.id).where(
                    FeeStatement.scope == scope.kind, FeeStatement.scope_id == scope.id,
                    FeeStatement.month == month.label)).first() is not None:
                raise Conflict(f"Le relevé de {month.label} est déjà émis : il ne change plus ; une correction "
                               "passe par un ajustement reporté sur le relevé suivant.")
            snapshot = _compute(ctx, session, scope, month)
            frozen = {**snapshot, "issued_by": actor.user_id, "issued_at": now.isoformat()}
            text = json.dumps(frozen, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
            digest = hashlib.sha256(text.encode()).hexdigest()
            row = FeeStatement(scope=scope.kind, scope_id=scope.id, month=month.label, snapshot=text, sha256=digest,
                               issued_by=actor.user_id, issued_at=now)
            session.add(row)
            session.flush()
            for adjustment in _pending_adjustments(session, scope):
                if adjustment.id in {a["id"] for a in snapshot["adjustments"]}:
                    if scope.kind == RADIOLOGIST:
                        adjustment.statement_id = row.id
                    else:
                        adjustment.site_statement_id = row.id
            audit.append_global(session, [audit.AuditEntry(actor.user_id, "fees.statement_issued", None, {
                "statement": row.id, "scope": scope.kind, "scope_id": scope.id, "month": month.label,
                "sha256": digest, "due_eur": snapshot["totals"]["due_to_radiologists_eur"]})], now)
            session.commit()
            return int(row.id)
    except IntegrityError:
        raise Conflict("Ce relevé vient d'être émis par quelqu'un d'autre : rechargez la page.") from None


@dataclass(frozen=True)
class IssuedStatement:
    id: int
    scope: Scope
    month: str
    issued_by: str
    issued_at: Any
    sha256: str
    snapshot: dict[str, Any]
    snapshot_text: str


def get_statement(ctx: EngineContext, actor: Actor, statement_id: int) -> IssuedStatement:
    with ctx.read() as session:
        row = session.get(FeeStatement, statement_id)
        if row is None:
            raise NotFound("Relevé introuvable.")
        scope = Scope(row.scope, row.scope_id)
        if not may_read(actor, scope):
            raise Forbidden("Vous ne pouvez consulter que vos propres relevés.")
        return IssuedStatement(row.id, scope, row.month, row.issued_by, row.issued_at, row.sha256,
                               json.loads(row.snapshot), row.snapshot)


def list_statements(ctx: EngineContext, actor: Actor) -> list[IssuedStatement]:
    with ctx.read() as session:
        query = select(FeeStatement).order_by(FeeStatement.month.desc(), FeeStatement.id.desc())
        if not (actor.is_system or "administrator" in actor.roles):
            mine = [(FeeStatement.scope == RADIOLOGIST) & (FeeStatement.scope_id == actor.user_id)]
            if "site_lead" in actor.roles:
                mine.append((FeeStatement.scope == SITE) & FeeStatement.scope_id.in_(actor.sites or {""}))
            query = query.where(or_(*mine))
        return [IssuedStatement(r.id, Scope(r.scope, r.scope_id), r.month, r.issued_by, r.issued_at, r.sha256,
                                json.loads(r.snapshot), r.snapshot) for r in session.execute(query).scalars()]


@enforces("CH-6.4", "CH-7.1", "CH-7.5", "CH-7.6")
def add_adjustment(ctx: EngineContext, actor: Actor, case_id: int | None, amount: str, reason: str,
                   kind: str = "correction") -> int:
    """An audited correction of a case's acts (administrators only), carried into the next statement of the case's
    radiologist and site. A flat-rate or productivity line, or one tied to no case, is refused (CH-6.4, CH-7.1)."""
    if not (actor.is_system or "administrator" in actor.roles):
        raise Forbidden("Seul un administrateur saisit une correction.")
    words = f"{kind} {reason}".lower()
    _refuse_charges(words, amount)
    if (kind or "").strip().lower() != "correction" or any(w in words for w in REFUSED_FEE_WORDS) or not case_id:
        raise FeeStatementError(FLAT_RATE_REFUSAL)
    reason = (reason or "").strip()
    if not reason or len(reason) > 1000:
        raise FeeStatementError("Indiquez le motif de la correction (1000 caractères au plus).")
    try:
        value = Decimal((amount or "").strip().replace(",", "."))
    except InvalidOperation:
        raise FeeStatementError(f"Montant illisible : « {(amount or '')[:20]} » (exemple : -12.50).") from None
    if not value.is_finite() or value == 0 or abs(value) >= Decimal("100000"):
        raise FeeStatementError("Le montant d'une correction est non nul et inférieur à 100 000 €.")
    now = ctx.clock.now()
    with ctx.write() as session:
        case = session.get(ProcessInstance, case_id)
        if case is None or session.execute(select(CaseAct.id).where(CaseAct.case_id == case_id)).first() is None:
            raise FeeStatementError("Une correction porte sur un dossier ayant au moins un acte CCAM : "
                                    + FLAT_RATE_REFUSAL)
        radiologist = case_radiologist(session, case_id) or ""
        row = FeeAdjustment(scope=RADIOLOGIST, scope_id=radiologist, amount_eur=value.quantize(Decimal("0.01")),
                            reason=reason, case_id=case_id, site_id=case.site_id, created_by=actor.user_id,
                            created_at=now)
        session.add(row)
        session.flush()
        audit.append_global(session, [audit.AuditEntry(actor.user_id, "fees.adjustment_added", case_id, {
            "adjustment": row.id, "radiologist": radiologist, "amount_eur": _money(row.amount_eur),
            "reason": reason})], now)
        session.commit()
        return int(row.id)


TRANSMISSION_WORDS = ("télétransmission", "teletransmission", "transmission", "abonnement", "liaison")
ON_CALL_WORDS = ("permanence", "garde", "astreinte")


def _refuse_charges(words: str, amount: str) -> None:
    """A correction never bills the site's transmission costs to a radiologist (CH-7.6) nor takes back his on-call
    fee (CH-7.5): such a negative line is refused."""
    if not (amount or "").strip().startswith("-"):
        return
    if any(w in words for w in TRANSMISSION_WORDS):
        raise FeeStatementError("Correction refusée : les frais de télétransmission (mise en place de la liaison, "
                                "abonnement) sont à la charge du site demandeur, jamais du radiologue (CH-7.6).")
    if any(w in words for w in ON_CALL_WORDS):
        raise FeeStatementError("Correction refusée : le forfait de permanence des soins du site revient en entier "
                                "au radiologue de garde (CH-7.5).")
