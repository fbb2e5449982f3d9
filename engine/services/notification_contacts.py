"""How each person is reached outside the browser: email, phone and, per event, the channels (email, webhook for
SMS or pager gateways). Everyone edits only their own; the defaults are those a night on call needs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.actors import Actor
from engine.errors import Forbidden, TeleradError
from engine.services.audit import record_global_event
from engine.services.context import EngineContext
from engine.store.directory_models import NotificationContact, User

EMAIL, WEBHOOK = "email", "webhook"
CHANNELS = (EMAIL, WEBHOOK)
URGENT_OFFER, OFFER, NEXT_TIER = "urgent_offer", "offer", "offer_next_tier"
NO_RADIOLOGIST, REPORT_OVERDUE = "no_radiologist", "report_overdue"
ANNOUNCEMENT_PLAN, REPORT_RELEASED, IDENTITY_HOLD = "announcement_plan", "report_released", "identity_hold"
SITE_VISIT_OVERDUE = "site_visit_overdue"  # CH-5.6: engine.services.site_visits.notify_overdue_visits
CONVENTION_EXPIRY = "convention_expiry"  # engine.services.convention_reminders (renewal, expiry)
SITE_SILENT = "site_silent"  # CH-5.5: engine.services.link_health.notify_silent_sites
EVENTS = (URGENT_OFFER, NEXT_TIER, NO_RADIOLOGIST, REPORT_OVERDUE, ANNOUNCEMENT_PLAN, REPORT_RELEASED,
          IDENTITY_HOLD, OFFER, SITE_VISIT_OVERDUE, CONVENTION_EXPIRY, SITE_SILENT)
# Everything urgent reaches the phone too (the webhook's SMS or pager gateway); the rest waits in the mailbox;
# an offer of a scheduled case to a whole territory wakes nobody.
DEFAULT_PREFERENCES: Mapping[str, tuple[str, ...]] = {
    URGENT_OFFER: (EMAIL, WEBHOOK), NEXT_TIER: (EMAIL, WEBHOOK), NO_RADIOLOGIST: (EMAIL, WEBHOOK),
    REPORT_OVERDUE: (EMAIL,), ANNOUNCEMENT_PLAN: (EMAIL,), REPORT_RELEASED: (EMAIL,), IDENTITY_HOLD: (EMAIL,),
    OFFER: (), SITE_VISIT_OVERDUE: (EMAIL,), CONVENTION_EXPIRY: (EMAIL,), SITE_SILENT: (EMAIL, WEBHOOK),
}
EVENT_TITLES = {
    URGENT_OFFER: "Dossier urgent proposé", NEXT_TIER: "Dossier proposé au niveau suivant",
    NO_RADIOLOGIST: "Aucun radiologue disponible", REPORT_OVERDUE: "Compte-rendu en retard",
    ANNOUNCEMENT_PLAN: "Plan d'annonce à confirmer", REPORT_RELEASED: "Compte-rendu disponible",
    IDENTITY_HOLD: "Images retenues (identité à vérifier)", OFFER: "Dossier programmé proposé",
    SITE_VISIT_OVERDUE: "Visite de site en retard", CONVENTION_EXPIRY: "Convention à renouveler",
    SITE_SILENT: "Site silencieux (liaison à vérifier)",
}
_EMAIL = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")
_PHONE = re.compile(r"^\+?[1-9][0-9]{5,14}$")


class InvalidContact(TeleradError):
    """A contact refused; `errors` maps each field to its French message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class Contact:
    username: str
    email: str | None = None
    phone: str | None = None
    preferences: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_PREFERENCES))

    def channels(self, event: str) -> tuple[str, ...]:
        return tuple(self.preferences.get(event, DEFAULT_PREFERENCES.get(event, ())))

    def address(self, channel: str) -> str | None:
        return self.email if channel == EMAIL else self.phone if channel == WEBHOOK else None


def normalise_phone(raw: str) -> str:
    """E.164 with the leading '+', spaces, dots, dashes and brackets removed; a French 0X number becomes +33X."""
    digits = re.sub(r"[\s.\-()]", "", raw)
    if re.fullmatch(r"0[1-9][0-9]{8}", digits):
        digits = "+33" + digits[1:]
    return digits


def parse_preferences(raw: str | None) -> dict[str, tuple[str, ...]]:
    preferences = dict(DEFAULT_PREFERENCES)
    if raw:
        stored = json.loads(raw)
        for event, channels in stored.items():
            if event in DEFAULT_PREFERENCES:
                preferences[event] = tuple(c for c in channels if c in CHANNELS)
    return preferences


def contact_of(row: NotificationContact | None, username: str) -> Contact:
    if row is None:
        return Contact(username)
    return Contact(username, row.email, row.phone, parse_preferences(row.preferences))


def contacts_of(session: Session, usernames: Iterable[str]) -> dict[str, Contact]:
    """The contacts of the active accounts among `usernames` (defaults for those who set nothing)."""
    names = sorted(set(usernames))
    if not names:
        return {}
    active = set(session.execute(select(User.username).where(User.username.in_(names), User.active)).scalars())
    rows = {row.username: row for row in session.execute(
        select(NotificationContact).where(NotificationContact.username.in_(sorted(active)))).scalars()}
    return {name: contact_of(rows.get(name), name) for name in names if name in active}


def get_contact(ctx: EngineContext, actor: Actor, username: str | None = None) -> Contact:
    username = username or actor.user_id
    _require_self(actor, username)
    with ctx.read() as session:
        return contact_of(session.get(NotificationContact, username), username)


def update_contact(ctx: EngineContext, actor: Actor, username: str, email: str, phone: str,
                   preferences: Mapping[str, Iterable[str]]) -> Contact:
    """Store a person's contact and preferences (their own only; the system for the demo data). One transaction,
    audited (what changed, not the addresses)."""
    _require_self(actor, username)
    email, phone = email.strip(), normalise_phone(phone.strip())
    errors = {}
    if email and not _EMAIL.match(email):
        errors["email"] = "Adresse électronique invalide (exemple : prenom.nom@hopital.fr)."
    if phone and not _PHONE.match(phone):
        errors["phone"] = "Numéro de téléphone invalide : format international attendu (exemple : +33612345678)."
    unknown = sorted(set(preferences) - set(EVENTS)) + sorted(
        {c for channels in preferences.values() for c in channels} - set(CHANNELS))
    if unknown:
        errors["preferences"] = "Préférence inconnue : " + ", ".join(unknown) + "."
    if errors:
        raise InvalidContact(errors)
    chosen = {event: [c for c in CHANNELS if c in set(preferences.get(event, ()))] for event in EVENTS}
    now = ctx.clock.now()
    with ctx.write() as session:
        if session.get(User, username) is None:
            raise InvalidContact({"username": f"Compte inconnu : {username}."})
        row = session.get(NotificationContact, username)
        if row is None:
            row = NotificationContact(username=username)
            session.add(row)
        row.email, row.phone = email or None, phone or None
        row.preferences, row.updated_at = json.dumps(chosen, sort_keys=True), now
        record_global_event(session, actor.user_id, "notification.contact_changed", {
            "user": username, "email_set": bool(email), "phone_set": bool(phone)}, now)
        session.commit()
        return contact_of(row, username)


def _require_self(actor: Actor, username: str) -> None:
    if actor.user_id != username and not actor.is_system:
        raise Forbidden("Chacun ne règle que ses propres notifications.")
