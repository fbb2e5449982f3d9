"""What a convention must hold before it may be active (CH-3.4, CH-6.1, CH-6.2, CH-6.4), and when it routes cases.

A convention is active only once validated by the site's medical committee (CME) and approved by the regional G4
and the departmental Medical Council, each with its date and its document (CH-3.4); it describes the patient
pathway including emergencies, the site's medical lead, the radiologists' emergency and travel duties and the
fallback procedure a refusal applies (CH-6.1, CH-4.1.14); its technical part names the equipment, the network
bandwidth, the restoration delay and the archiving (CH-6.2); its remuneration document is on file with the
approver's declaration that it holds no productivity and no exclusivity clause (CH-6.4). It has an expiry date and
a renewal date, and stops routing cases after its expiry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from engine.domain.charter import enforces

APPROVALS = ("cme", "g4", "council")  # the approval documents, in the order of the procedure (CH-3.4)
REMUNERATION = "remuneration"
DOCUMENT_KINDS = (*APPROVALS, REMUNERATION)
DOCUMENT_LABELS = {
    "cme": "la validation par la commission médicale d'établissement (CME)",
    "g4": "l'approbation du G4 régional",
    "council": "l'approbation du conseil départemental de l'Ordre des médecins",
    REMUNERATION: "le document de rémunération",
}
# Each text of the convention, with what the refusal says when it is missing.
TEXTS = {
    "patient_pathway": "le parcours du patient",
    "emergency_pathway": "le parcours des urgences",
    "emergency_duties": "les obligations des radiologues en urgence",
    "travel_duties": "les obligations de déplacement des radiologues",
    "fallback_procedure": "la procédure dégradée appliquée en cas de refus",
    "equipment": "l'équipement (convention technique)",
    "archiving": "l'archivage (convention technique)",
}
NUMBERS = {
    "network_bandwidth_mbps": "le débit réseau (convention technique)",
    "restoration_delay_hours": "le délai de rétablissement (convention technique)",
}
DEFAULT_VISIT_INTERVAL_DAYS = 365  # the radiologists' visits to the site (CH-5.6), read by the site visits
RENEWAL_REMINDER_BEFORE = timedelta(days=30)  # a reminder this long before expiry, besides the renewal date


@dataclass(frozen=True)
class ConventionFacts:
    """What a convention holds, as the completeness check needs it."""

    texts: dict[str, str | None]
    numbers: dict[str, int | None]
    medical_lead: str | None
    approved_on: dict[str, date | None]  # kind (cme, g4, council) -> date of the approval
    documents: frozenset[str]  # the kinds of document on file
    remuneration_declared: bool  # CH-6.4: no productivity clause, no exclusivity clause
    expires_on: date | None
    renewal_on: date | None


@enforces("CH-3.4", "CH-6.1", "CH-6.2", "CH-6.4")
def missing_items(facts: ConventionFacts, today: date) -> list[str]:
    """What the convention still lacks to be active, in French, in the order of the form; empty when complete."""
    missing = []
    for kind in APPROVALS:
        if facts.approved_on.get(kind) is None:
            missing.append(f"la date de {DOCUMENT_LABELS[kind]}")
        if kind not in facts.documents:
            missing.append(f"le document de {DOCUMENT_LABELS[kind]}")
    if facts.medical_lead is None:
        missing.append("le médecin responsable de l'organisation médicale du site")
    missing += [label for name, label in TEXTS.items() if not (facts.texts.get(name) or "").strip()]
    missing += [label for name, label in NUMBERS.items() if not facts.numbers.get(name)]
    if REMUNERATION not in facts.documents:
        missing.append(DOCUMENT_LABELS[REMUNERATION])
    if not facts.remuneration_declared:
        missing.append("la déclaration que la rémunération ne contient ni clause de productivité ni clause "
                       "d'exclusivité")
    if facts.expires_on is None:
        missing.append("la date d'échéance")
    elif facts.expires_on < today:
        missing.append(f"une date d'échéance à venir (échue le {facts.expires_on:%d/%m/%Y})")
    if facts.renewal_on is None:
        missing.append("la date de renouvellement")
    return missing


@enforces("CH-3.4")
def expired(expires_on: date | None, today: date) -> bool:
    """A convention is valid up to its expiry date included; the day after, it no longer routes cases."""
    return expires_on is not None and expires_on < today


def refusal_text(missing: list[str]) -> str:
    return ("La convention ne peut pas être activée : il manque " + "; ".join(missing) + ".") if missing else ""
