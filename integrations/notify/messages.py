"""The French text of a notification: what happened, the case number, its urgency, the site and a link to the
case. Never the patient, the clinical question nor any finding (docs/notifications.md): email and SMS gateways
are not places for health data, and whoever follows the link goes through the login and the case's access check.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.services.notification_contacts import (
    ANNOUNCEMENT_PLAN,
    CONVENTION_EXPIRY,
    EVENT_TITLES,
    IDENTITY_HOLD,
    NEXT_TIER,
    NO_RADIOLOGIST,
    OFFER,
    REPORT_OVERDUE,
    REPORT_RELEASED,
    SITE_SILENT,
    SITE_VISIT_OVERDUE,
    URGENT_OFFER,
)
from engine.services.notification_outbox import OutboxRow
from engine.services.notifications import ON_CALL_KEY

URGENCY_LABELS = {"vital": "urgence vitale", "urgent": "urgent", "scheduled": "programmé"}
WHAT = {
    URGENT_OFFER: "Un dossier vous est proposé : acceptez-le ou déclinez-le dans Telerad.",
    OFFER: "Un dossier programmé vous est proposé : acceptez-le ou déclinez-le dans Telerad.",
    NEXT_TIER: "Un dossier n'a pas été accepté au niveau précédent : il vous est maintenant proposé.",
    NO_RADIOLOGIST: "Aucun radiologue n'a accepté le dossier : organisez sa prise en charge.",
    REPORT_OVERDUE: "Le compte-rendu du dossier a dépassé son échéance.",
    ANNOUNCEMENT_PLAN: "Un plan d'annonce attend votre confirmation.",
    REPORT_RELEASED: "Le compte-rendu du dossier est disponible : prenez-en connaissance.",
    IDENTITY_HOLD: "Des images reçues ne correspondent pas à l'identité du dossier : elles sont retenues "
                   "jusqu'à votre vérification.",
    SITE_VISIT_OVERDUE: "La visite périodique d'un site (installations, connaissance des protocoles) est en retard : "
                        "planifiez-la, puis enregistrez-la dans Telerad.",
    SITE_SILENT: "Aucun message (demande HL7 ou examen DICOM) n'est arrivé de ce site depuis plus longtemps que "
                 "d'habitude : vérifiez la liaison et, en cas de panne, déclarez un incident dans Telerad.",
    CONVENTION_EXPIRY: "Une convention de téléradiologie de ce site arrive à son renouvellement ou à son échéance : "
                       "une convention échue n'ouvre plus le routage des dossiers. Renouvelez-la dans Telerad.",
}
ON_CALL_LINE = "Vous le recevez en tant que radiologue de garde du territoire de ce site."
FOOTER = ("Ce message ne contient aucune donnée de santé : connectez-vous à Telerad pour voir le dossier.\n"
          "Message automatique, ne pas répondre.")


@dataclass(frozen=True)
class Message:
    subject: str
    body: str  # the email
    short: str  # the SMS or pager text (160 characters at most)
    link: str
    title: str


def case_link(public_url: str, case_id: int | None) -> str:
    if case_id is None:
        return public_url or "/"
    return f"{public_url}/cases/{case_id}"


def compose(row: OutboxRow, site_name: str | None, public_url: str) -> Message:
    reminder = ":reminder:" in row.event_key
    on_call = row.event_key.endswith(ON_CALL_KEY)
    title = EVENT_TITLES.get(row.event, "Notification Telerad")
    if reminder:
        title = f"Rappel : {title.lower()}"
    if on_call:
        title = f"Garde : {title[0].lower()}{title[1:]}"
    urgency = URGENCY_LABELS.get(row.urgency or "", "")
    number = f"dossier n° {row.case_id}" if row.case_id is not None else "Telerad"
    link = case_link(public_url, row.case_id) if row.event != SITE_VISIT_OVERDUE else f"{public_url}/site-visits"
    if row.event == CONVENTION_EXPIRY:
        link = f"{public_url}/admin/directory#conventions"
    where = f" — {site_name}" if site_name else ""
    subject = f"[Telerad] {title}{f' ({urgency})' if urgency else ''} — {number}"
    lines = [
        "Bonjour,", "",
        WHAT.get(row.event, title),
        *([ON_CALL_LINE] if on_call else []),
        f"{number.capitalize()}{where}{f', {urgency}' if urgency else ''}.",
        f"Ouvrir le dossier : {link}", "",
        FOOTER,
    ]
    short = f"Telerad : {title}{f' ({urgency})' if urgency else ''}, {number}{where}. {link}"
    return Message(subject, "\n".join(lines) + "\n", short[:160], link, title)
