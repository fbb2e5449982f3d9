"""The quality indicators as people read them (engine.services.indicators): French labels and the lines of the
summary shared by the dashboard (/admin/indicators), its CSV export and `telerad indicators`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import lazy_gettext as _l

URGENCY_LABELS = {"vital": _l("Urgence vitale"), "urgent": _l("Urgent"), "scheduled": _l("Programmé"),
                  "unknown": _l("Non précisé")}
# The same words as the protocol catalogue's (web.admin.protocols), with the DICOM code.
MODALITY_LABELS = {"CT": _l("Scanner (CT)"), "MR": _l("IRM (MR)"), "US": _l("Échographie (US)"),
                   "XR": _l("Radiographie (XR)"), "MG": _l("Mammographie (MG)")}
TIER_LABELS = {"first_offer": _l("Première offre (garde ou niveau 1)"), "tier_1": _l("Niveau 1 après la garde"),
               "tier_2": _l("Niveau 2 (territoires voisins)"), "tier_3": _l("Niveau 3 (département, région)"),
               "tier_4": _l("Niveau 4 (société de téléradiologie)")}
REASON_LABELS = {"insufficient_information": _l("Informations insuffisantes"),
                 "inappropriate_images": _l("Images inappropriées"),
                 "insufficient_quality": _l("Qualité des images insuffisante")}


def minutes(value: float | None) -> str:
    """A duration in minutes as people read it: "45 min", "3 h 20", "2 j 4 h"."""
    if value is None:
        return "—"
    total = int(round(value))
    if total < 60:
        return f"{total} min"
    if total < 1440:
        return f"{total // 60} h {total % 60:02d}"
    return f"{total // 1440} j {(total % 1440) // 60} h"


def seconds(value: float | None) -> str:
    return "—" if value is None else (f"{value:.0f} s" if value < 120 else minutes(value / 60))


def share(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %".replace(".", ",")


def bucket_labels(edges: list[int]) -> list[str]:
    """The turnaround histogram's classes: "< 30 min", "30 min – 1 h 00", ..., "≥ 7 j 0 h"."""
    labels = [f"< {minutes(edges[0])}"]
    labels += [f"{minutes(low)} – {minutes(high)}" for low, high in zip(edges, edges[1:], strict=False)]
    return [*labels, f"≥ {minutes(edges[-1])}"]


def summary_rows(figures: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(section, indicator, value) lines of the whole summary, in French."""
    rows: list[tuple[str, str, str]] = []

    def add(section: Any, label: Any, value: Any) -> None:
        rows.append((str(section), str(label), str(value)))

    requests = figures["requests"]
    section = _l("Demandes")
    add(section, _l("Demandes (télédiagnostic et téléexpertise)"), requests["total"])
    add(section, _l("Télédiagnostics"), requests["telediagnosis"])
    add(section, _l("Téléexpertises"), requests["teleexpertise"])
    for level, count in requests["by_urgency"].items():
        add(section, _l("Télédiagnostics — %(level)s", level=URGENCY_LABELS[level]), count)
    acceptance = figures["acceptance"]
    section = _l("Acceptation")
    add(section, _l("Dossiers proposés aux radiologues"), acceptance["offered"])
    add(section, _l("Dossiers acceptés"), acceptance["accepted"])
    add(section, _l("Délai moyen d'acceptation"), minutes(acceptance["mean_minutes"]))
    add(section, _l("Alertes « aucun radiologue disponible »"), acceptance["no_radiologist_alerts"])
    for tier, values in acceptance["by_tier"].items():
        add(section, _l("Niveau atteint : %(tier)s — dossiers", tier=TIER_LABELS.get(tier, tier)), values["cases"])
        add(section, _l("Niveau atteint : %(tier)s — délai moyen d'acceptation", tier=TIER_LABELS.get(tier, tier)),
            minutes(values["mean_minutes"]))
    turnaround = figures["turnaround"]
    section = _l("Délai de rendu")
    add(section, _l("Comptes-rendus diffusés"), turnaround["released"])
    add(section, _l("Délai moyen demande → diffusion"), minutes(turnaround["mean_minutes"]))
    add(section, _l("Délai moyen images disponibles → diffusion"), minutes(turnaround["mean_report_minutes"]))
    add(section, _l("Délai maximal demande → diffusion"), minutes(turnaround["max_minutes"]))
    add(section, _l("Alertes de compte-rendu en retard"), turnaround["overdue_alerts"])
    for level, values in turnaround["by_urgency"].items():
        if level == "unknown" and not values["requests"]:
            continue
        label = URGENCY_LABELS[level]
        add(section, _l("%(level)s — dans le délai (%(within)s sur %(released)s)", level=label,
                        within=values["within_delay"], released=values["released"]), share(values["within_share"]))
        add(section, _l("%(level)s — délai moyen demande → diffusion", level=label), minutes(values["mean_minutes"]))
    section = _l("Communication")
    add(section, _l("Découvertes urgentes (appel requis)"), figures["phone_calls"]["urgent_findings"])
    add(section, _l("Appels au demandeur tracés"), figures["phone_calls"]["calls_recorded"])
    add(section, _l("Procédures d'annonce"), figures["announcements"]["cases"])
    add(section, _l("Plans d'annonce confirmés"), figures["announcements"]["confirmed"])
    add(section, _l("Comptes-rendus intégrés au dossier"), figures["acknowledgement"]["acknowledged"])
    add(section, _l("Comptes-rendus en attente d'intégration"), figures["acknowledgement"]["pending"])
    add(section, _l("Délai moyen de prise de connaissance"), minutes(figures["acknowledgement"]["mean_minutes"]))
    refusals = figures["refusals"]
    section = _l("Refus et compléments")
    add(section, _l("Dossiers refusés (refus motivé)"), refusals["cases"])
    for reason, count in refusals["by_reason"].items():
        add(section, _l("Refus — %(reason)s", reason=REASON_LABELS.get(reason, reason)), count)
    add(section, _l("Refus suivis d'un déplacement sur site"), refusals["site_visits"])
    add(section, _l("Refus suivis de la procédure dégradée"), refusals["fallback_procedures"])
    add(section, _l("Dossiers avec demande de compléments"), figures["more_information"]["cases"])
    add(section, _l("Demandes de compléments (boucles)"), figures["more_information"]["loops"])
    expertise = figures["teleexpertise"]
    section = _l("Téléexpertise")
    add(section, _l("Avis rendus"), expertise["answered"])
    add(section, _l("Dossiers complétés à la demande du télé-expert"), expertise["completeness_loop_cases"])
    add(section, _l("Compléments demandés par les télé-experts"), expertise["completeness_loops"])
    add(section, _l("Délai moyen demande → avis"), minutes(expertise["mean_answer_minutes"]))
    add(section, _l("Avis dans le délai"), share(expertise["within_share"]))
    images = figures["image_transfer"]
    section = _l("Images et incidents techniques")
    add(section, _l("Examens reçus"), images["studies"])
    add(section, _l("Durée moyenne de transfert (première → dernière image)"), seconds(images["mean_transfer_seconds"]))
    add(section, _l("Durée maximale de transfert"), seconds(images["max_transfer_seconds"]))
    add(section, _l("Attente moyenne de stabilité (dernière image → dossier averti)"),
        seconds(images["mean_stability_seconds"]))
    incidents = figures["technical_incidents"]
    add(section, _l("Dossiers en erreur"), incidents["failed_cases"])
    add(section, _l("Difficultés techniques signalées à l'acquisition"), incidents["technical_difficulties"])
    add(section, _l("Images retenues (identité, site ou examen)"), incidents["images_held"])
    add(section, _l("Examens antérieurs ou originaux non récupérés"), incidents["priors_failed"])
    add(section, _l("Messages HL7 rejetés ou en erreur"), incidents["hl7_errors"])
    add(section, _l("Incidents déclarés (pannes informatiques ou réseau)"), incidents.get("downtime_incidents", 0))
    add(section, _l("Durée des incidents déclarés (min)"), incidents.get("downtime_minutes", 0))
    oncall = figures["oncall"]
    section = _l("Permanence des soins")
    add(section, _l("Heures hors heures ouvrables de la période"), oncall["out_of_hours_hours"])
    for territory in oncall["territories"]:
        name = territory["name"]
        add(section, _l("%(name)s — part couverte par une garde", name=name), share(territory["covered_share"]))
        add(section, _l("%(name)s — trous de garde (%(count)s)", name=name, count=territory["gaps"]),
            _l("%(hours)s h", hours=territory["uncovered_hours"]))
    return rows
