"""Settings of the remuneration document (CH-6.4) as audited administrator settings: the on-call fee per act done on
call (CH-7.5), the teleexpertise fee (CH-7.4) and the site's monthly transmission costs (CH-7.6). Each has an
organisation-wide value and, where a site's remuneration document fixes it, a value for that site, each in force
from a date of effect; nothing set, the illustrative defaults below apply (not tariffs: "valeur par défaut, à fixer
dans la convention de rémunération").

Only these three settings exist: there is no free-form setting that could become a flat rate or a productivity line
(CH-6.4, CH-7.1). A change is a new row (engine.store.fee_setting_models, append-only), audited on the global chain
(``fees.setting_changed``). A date of effect in a month whose statement is already issued is refused: the preview
would no longer match the frozen statement (engine.services.fee_statements).

Valuation (engine.services.fee_statements): a per-act amount is the value in force on the day the act's report was
released, the transmission costs of a month the value in force on its first day; the site's value, else the
organisation's, else the default. ``month_book`` reads them for a whole month in one query."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.domain.charter import enforces
from engine.domain.data_checks import paris_date
from engine.domain.fees import DEFAULT_TELEEXPERTISE_FEE_EUR
from engine.errors import Forbidden
from engine.services.context import EngineContext
from engine.store import audit
from engine.store.directory_models import SiteRow
from engine.store.fee_models import FeeStatement
from engine.store.fee_setting_models import SETTING_NAMES, FeeSetting
from engine.store.models import AuditHead
from forms.validation import forbidden_characters

ON_CALL_FEE, TELEEXPERTISE_FEE, TRANSMISSION_COSTS = NAMES = SETTING_NAMES
DEFAULTS = {ON_CALL_FEE: Decimal("40.00"), TELEEXPERTISE_FEE: DEFAULT_TELEEXPERTISE_FEE_EUR,
            TRANSMISSION_COSTS: Decimal("90.00")}
LABELS = {ON_CALL_FEE: "forfait de permanence des soins, par acte fait en garde (CH-7.5)",
          TELEEXPERTISE_FEE: "rémunération de la téléexpertise, par second avis (CH-7.4)",
          TRANSMISSION_COSTS: "frais de télétransmission, par site et par mois (CH-7.6)"}
DEFAULT_NOTE = "valeur par défaut, à fixer dans la convention de rémunération"
CHANGED_EVENT = "fees.setting_changed"
MAX_AMOUNT = Decimal("100000")
_AMOUNT = re.compile(r"^([+-]?)(\d{1,9})(?:[.,](\d{1,9}))?$")
_FR_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


class FeeSettingError(ValueError):
    """Refused with a French message; nothing was written."""


@dataclass(frozen=True)
class SettingValue:
    """A value of a setting: a recorded row, or the default (id None) when nothing is set."""

    name: str
    amount_eur: Decimal
    site_id: str | None = None
    effective_from: date | None = None
    set_by: str | None = None
    set_at: datetime | None = None
    reason: str = DEFAULT_NOTE
    id: int | None = None

    @property
    def default(self) -> bool:
        return self.id is None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "site_id": self.site_id, "amount_eur": f"{self.amount_eur:.2f}",
                "effective_from": self.effective_from.isoformat() if self.effective_from else None,
                "default": self.default, "id": self.id, "set_by": self.set_by,
                "set_at": self.set_at.isoformat() if self.set_at else None, "reason": self.reason}


def _value(row: FeeSetting) -> SettingValue:
    return SettingValue(row.name, Decimal(row.amount_eur).quantize(Decimal("0.01")), row.site_id,
                        row.effective_from, row.set_by, row.set_at, row.reason, int(row.id))


class SettingsBook:
    """The values recorded up to a day (one query), answering "what was in force for this site on this day"; the
    values it answered are kept (``applied``) for the statement's snapshot."""

    def __init__(self, rows: list[FeeSetting]) -> None:
        self._rows: dict[tuple[str, str | None], list[SettingValue]] = defaultdict(list)
        for row in sorted(rows, key=lambda r: (r.effective_from, r.id)):
            self._rows[(row.name, row.site_id)].append(_value(row))
        self._applied: dict[tuple[str, str | None, int | None], SettingValue] = {}

    def value(self, name: str, site_id: str | None, day: date) -> SettingValue:
        """The site's value in force on `day`, else the organisation's, else the default."""
        keys = ((name, site_id), (name, None)) if site_id else ((name, None),)
        found = next((v for key in keys for v in reversed(self._rows.get(key, ()))
                      if v.effective_from is not None and v.effective_from <= day), None)
        if found is None:
            found = SettingValue(name, DEFAULTS[name])
        self._applied[(name, found.site_id, found.id)] = found
        return found

    def amount(self, name: str, site_id: str | None, day: date) -> Decimal:
        return self.value(name, site_id, day).amount_eur

    def applied(self) -> list[dict[str, Any]]:
        """The values used so far, for a snapshot (default ones said so)."""
        return [v.as_dict() for v in sorted(self._applied.values(), key=lambda v: (
            v.name, v.site_id or "", v.effective_from or date.min, v.id or 0))]


def settings_book(session: Session, until: date) -> SettingsBook:
    """Every value with a date of effect on or before `until` (the table is a short history): one query."""
    return SettingsBook(list(session.execute(select(FeeSetting).where(FeeSetting.effective_from <= until))
                             .scalars()))


def month_days(year: int, number: int) -> tuple[date, date]:
    """The first and last days of a month."""
    following = date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)
    return date(year, number, 1), following - timedelta(days=1)


def month_book(session: Session, year: int, number: int) -> SettingsBook:
    return settings_book(session, month_days(year, number)[1])


def lock_fee_changes(session: Session) -> None:
    """Serialize a setting change with the issue of a statement (both then append to the global audit chain, whose
    head is this lock): a statement is never frozen with a value a concurrent change has just replaced."""
    session.execute(select(AuditHead.id).where(AuditHead.id == 1).with_for_update())


def parse_amount(name: str, text: str | None) -> Decimal:
    """Euros, at most two decimals, >= 0 (the teleexpertise fee > 0); French error otherwise."""
    raw = (text or "").strip().removesuffix("€").strip().replace("\u00a0", "").replace(" ", "")
    found = _AMOUNT.match(raw)
    if found is None:
        raise FeeSettingError(f"Montant illisible : « {(text or '').strip()[:20]} » (en euros, par exemple 40.00).")
    sign, units, cents = found.groups()
    if cents and len(cents.rstrip("0")) > 2:
        raise FeeSettingError(f"Montant « {raw[:20]} » : deux décimales au plus (les centimes).")
    value = Decimal(f"{units}.{cents or '0'}").quantize(Decimal("0.01"))
    if sign == "-" and value != 0:
        raise FeeSettingError(f"Montant « {raw[:20]} » : il ne peut pas être négatif.")
    if value >= MAX_AMOUNT:
        raise FeeSettingError("Le montant d'un paramètre de rémunération est inférieur à 100 000 €.")
    if name == TELEEXPERTISE_FEE and value == 0:
        raise FeeSettingError("La rémunération de la téléexpertise est une valorisation spécifique, non nulle "
                              "(CH-7.4) : indiquez un montant supérieur à 0.")
    return value


def parse_effective(text: str | None) -> date:
    """A date of effect, YYYY-MM-DD (or DD/MM/YYYY), between 2000 and 2100."""
    raw = (text or "").strip()
    try:
        french = _FR_DATE.match(raw)
        day = date(int(french.group(3)), int(french.group(2)), int(french.group(1))) if french \
            else date.fromisoformat(raw)
    except ValueError:
        raise FeeSettingError(f"Date d'effet invalide : « {raw[:20]} » (exemple : 2026-01-01).") from None
    if not 2000 <= day.year <= 2100:
        raise FeeSettingError("La date d'effet est comprise entre 2000 et 2100.")
    return day


def check_name(name: str | None) -> str:
    if name not in SETTING_NAMES:
        known = " ; ".join(f"{n} ({LABELS[n]})" for n in SETTING_NAMES)
        raise FeeSettingError(f"Paramètre inconnu : « {(name or '')[:40]} ». La convention de rémunération ne fixe "
                              f"que : {known}. Aucun forfait ni ligne de productivité (CH-6.4, CH-7.1).")
    return name


def _is_admin(actor: Actor) -> bool:
    return actor.is_system or "administrator" in actor.roles


def issued_after(session: Session, name: str, site_id: str | None, day: date) -> str | None:
    """The latest issued month, from the month of `day` on, whose statement the change would alter (None if none):
    a site's statements and, for a per-act amount, the radiologists' with an act of that site; every statement for
    an organisation-wide value (transmission costs: the sites' only)."""
    query = select(FeeStatement.scope, FeeStatement.scope_id, FeeStatement.month, FeeStatement.snapshot).where(
        FeeStatement.month >= f"{day.year:04d}-{day.month:02d}")
    if name == TRANSMISSION_COSTS:
        query = query.where(FeeStatement.scope == "site")
    def altered(scope: str, scope_id: str, snapshot: str) -> bool:
        if site_id is None or scope == "site":
            return site_id is None or scope_id == site_id
        return any(line.get("site_id") == site_id for line in json.loads(snapshot)["lines"])

    return max((month for scope, scope_id, month, snapshot in session.execute(query)
                if altered(scope, scope_id, snapshot)), default=None)


@enforces("CH-6.4", "CH-7.4")
def set_setting(ctx: EngineContext, actor: Actor, name: str, amount: str, effective_from: date, reason: str,
                site_id: str | None = None) -> int:
    """Record a value of one of the three settings (administrators only), for the organisation or a site, from
    `effective_from`; audited in the same transaction. FeeSettingError (French) and nothing written otherwise."""
    if not _is_admin(actor):
        raise Forbidden("Seul un administrateur fixe les paramètres de rémunération.")
    name = check_name(name)
    value = parse_amount(name, amount)
    reason = (reason or "").strip()
    if not reason or len(reason) > 1000:
        raise FeeSettingError("Indiquez le motif du changement (par exemple la référence de la convention de "
                              "rémunération ; 1000 caractères au plus).")
    if forbidden_characters(reason) or any(ord(c) < 32 and c not in "\t\n\r" for c in reason):
        raise FeeSettingError("Le motif contient un caractère non autorisé (caractère de contrôle).")
    if not 2000 <= effective_from.year <= 2100:
        raise FeeSettingError("La date d'effet est comprise entre 2000 et 2100.")
    site_id = (site_id or "").strip() or None
    now = ctx.clock.now()
    with ctx.write() as session:
        lock_fee_changes(session)
        if site_id is not None and session.get(SiteRow, site_id) is None:
            raise FeeSettingError(f"Site inconnu : « {site_id[:64]} ».")
        issued = issued_after(session, name, site_id, effective_from)
        if issued is not None:
            year, number = (int(part) for part in issued.split("-"))
            after = month_days(year, number)[1] + timedelta(days=1)
            raise FeeSettingError(
                f"Date d'effet refusée : le relevé de {issued} est déjà émis"
                + (" pour ce site ou l'un de ses radiologues" if site_id else "")
                + f" ; un changement en vigueur le {effective_from.isoformat()} en modifierait le calcul, alors "
                "qu'un relevé émis ne change plus. Choisissez une date d'effet à partir du "
                f"{after.isoformat()} ; une correction d'un relevé émis passe par un ajustement.")
        previous = settings_book(session, effective_from).value(name, site_id, effective_from)
        row = FeeSetting(name=name, site_id=site_id, amount_eur=value, effective_from=effective_from,
                         set_by=actor.user_id, set_at=now, reason=reason)
        session.add(row)
        session.flush()
        audit.append_global(session, [audit.AuditEntry(actor.user_id, CHANGED_EVENT, None, {
            "setting": row.id, "name": name, "site": site_id, "amount_eur": f"{value:.2f}",
            "effective_from": effective_from.isoformat(), "reason": reason,
            "previous_eur": f"{previous.amount_eur:.2f}", "previous_default": previous.default})], now)
        session.commit()
        return int(row.id)


@dataclass(frozen=True)
class SiteValues:
    site_id: str
    site_name: str
    values: list[SettingValue]  # the three in force today: the site's where set, else the organisation's


@dataclass(frozen=True)
class SettingsOverview:
    today: date
    organisation: list[SettingValue]
    sites: list[SiteValues]
    history: list[SettingValue]  # newest date of effect first, values set for a later date included
    site_names: dict[str, str]
    can_edit: bool

    def as_dict(self) -> dict[str, Any]:
        return {"today": self.today.isoformat(), "organisation": [v.as_dict() for v in self.organisation],
                "sites": [{"site_id": s.site_id, "site_name": s.site_name, "values": [v.as_dict() for v in s.values]}
                          for s in self.sites], "history": [v.as_dict() for v in self.history]}


def settings_overview(ctx: EngineContext, actor: Actor) -> SettingsOverview:
    """The values in force today and the history: all of them for an administrator; for a site's medical lead, the
    organisation's and his sites' (read only). Others: Forbidden."""
    admin = _is_admin(actor)
    if not admin and "site_lead" not in actor.roles:
        raise Forbidden("Les paramètres de rémunération se consultent par un administrateur ou le médecin "
                        "responsable d'un site.")
    today = paris_date(ctx.clock.now())
    with ctx.read() as session:
        rows = list(session.execute(select(FeeSetting).order_by(FeeSetting.effective_from.desc(),
                                                                FeeSetting.id.desc())).scalars())
        names = {site_id: name for site_id, name in session.execute(select(SiteRow.id, SiteRow.name)
                                                                    .order_by(SiteRow.name))}
    visible = [r for r in rows if admin or r.site_id is None or r.site_id in actor.sites]
    book = SettingsBook([r for r in visible if r.effective_from <= today])
    shown = sorted({r.site_id for r in visible if r.site_id} if admin else set(actor.sites) & set(names),
                   key=lambda s: names.get(s, s))
    return SettingsOverview(
        today, [book.value(n, None, today) for n in SETTING_NAMES],
        [SiteValues(s, names.get(s, s), [book.value(n, s, today) for n in SETTING_NAMES]) for s in shown],
        [_value(r) for r in visible], names if admin else {s: names[s] for s in shown}, admin)
