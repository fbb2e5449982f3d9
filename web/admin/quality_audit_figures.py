"""The indicators of a quality audit report (the JSON of engine.services.indicators, as frozen in the report) read
out in French, section by section, for the report page and its printed copy. A figure the snapshot lacks (a report
issued before that figure existed) is shown as "—"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _

from web.shared.labels import coded

Row = tuple[str, str]


def _get(data: Any, *path: str) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, Mapping) else None
    return data


def _number(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "—"
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    if isinstance(value, float):
        return f"{value:,.1f}".replace(",", "\u202f").replace(".", ",")
    return str(value)


def _minutes(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    if value >= 120:
        return _("%(hours)s h", hours=_number(round(value / 60, 1)))
    return _("%(minutes)s min", minutes=_number(round(float(value), 1)))


def _share(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return f"{_number(round(float(value) * 100, 1))} %"


def _seconds(value: Any) -> str:
    return _minutes(value / 60) if isinstance(value, int | float) and not isinstance(value, bool) else "—"


def sections(figures: Mapping[str, Any]) -> list[tuple[str, list[Row]]]:
    """(French section title, [(French label, value as text)]) for the report's indicators."""
    g = figures
    result: list[tuple[str, list[Row]]] = [
        (_("Activité"), [
            (_("Demandes"), _number(_get(g, "requests", "total"))),
            (_("dont téléinterprétations"), _number(_get(g, "requests", "telediagnosis"))),
            (_("dont téléexpertises"), _number(_get(g, "requests", "teleexpertise"))),
            *[(_("Demandes « %(level)s »", level=coded(level, "urgency")), _number(count))
              for level, count in (_get(g, "requests", "by_urgency") or {}).items()],
        ]),
        (_("Acceptation par les radiologues"), [
            (_("Dossiers proposés"), _number(_get(g, "acceptance", "offered"))),
            (_("Dossiers acceptés"), _number(_get(g, "acceptance", "accepted"))),
            (_("Délai moyen d'acceptation"), _minutes(_get(g, "acceptance", "mean_minutes"))),
            (_("Alertes « aucun radiologue disponible »"), _number(_get(g, "acceptance", "no_radiologist_alerts"))),
            *[(_("Niveau %(tier)s atteint : dossiers, délai moyen d'acceptation", tier=tier),
               f"{_number(_get(value, 'cases'))} · {_minutes(_get(value, 'mean_minutes'))}")
              for tier, value in sorted((_get(g, "acceptance", "by_tier") or {}).items())],
        ]),
        (_("Délai de compte-rendu"), [
            (_("Comptes-rendus diffusés"), _number(_get(g, "turnaround", "released"))),
            (_("Délai moyen de la demande à la diffusion"), _minutes(_get(g, "turnaround", "mean_minutes"))),
            (_("Délai le plus long"), _minutes(_get(g, "turnaround", "max_minutes"))),
            (_("Retards signalés"), _number(_get(g, "turnaround", "overdue_alerts"))),
            *[(_("« %(level)s » dans le délai de %(due)s", level=coded(level, "urgency"),
                 due=_minutes(_get(g, "due_minutes", level))),
               f"{_share(_get(value, 'within_share'))} ({_number(_get(value, 'within_delay'))}/"
               f"{_number(_get(value, 'released'))})")
              for level, value in (_get(g, "turnaround", "by_urgency") or {}).items()],
        ]),
        (_("Urgences, refus et annonces"), [
            (_("Constatations urgentes"), _number(_get(g, "phone_calls", "urgent_findings"))),
            (_("Appels téléphoniques tracés"), _number(_get(g, "phone_calls", "calls_recorded"))),
            (_("Refus motivés"), _number(_get(g, "refusals", "cases"))),
            *[(_("Refus : %(reason)s", reason=coded(reason, "refusal_reason")), _number(count))
              for reason, count in (_get(g, "refusals", "by_reason") or {}).items()],
            (_("Déplacements sur site après refus"), _number(_get(g, "refusals", "site_visits"))),
            (_("Procédures dégradées appliquées"), _number(_get(g, "refusals", "fallback_procedures"))),
            (_("Demandes de compléments d'information"), _number(_get(g, "more_information", "cases"))),
            (_("Procédures d'annonce"), _number(_get(g, "announcements", "cases"))),
            (_("Comptes-rendus pris en connaissance"), _number(_get(g, "acknowledgement", "acknowledged"))),
            (_("Comptes-rendus en attente de prise de connaissance"), _number(_get(g, "acknowledgement", "pending"))),
            (_("Délai moyen de prise de connaissance"), _minutes(_get(g, "acknowledgement", "mean_minutes"))),
        ]),
        (_("Téléexpertise"), [
            (_("Demandes"), _number(_get(g, "teleexpertise", "requests"))),
            (_("Avis rendus"), _number(_get(g, "teleexpertise", "answered"))),
            (_("Dossiers complétés à la demande de l'expert"), _number(_get(g, "teleexpertise",
                                                                             "completeness_loop_cases"))),
            (_("Délai moyen de l'avis"), _minutes(_get(g, "teleexpertise", "mean_answer_minutes"))),
            (_("Avis dans le délai"), _share(_get(g, "teleexpertise", "within_share"))),
        ]),
        (_("Technique et transmission"), [
            (_("Examens reçus"), _number(_get(g, "image_transfer", "studies"))),
            (_("Durée moyenne de transfert des images"), _seconds(_get(g, "image_transfer", "mean_transfer_seconds"))),
            (_("Durée maximale de transfert"), _seconds(_get(g, "image_transfer", "max_transfer_seconds"))),
            (_("Dossiers en échec technique"), _number(_get(g, "technical_incidents", "failed_cases"))),
            (_("Difficultés techniques signalées"), _number(_get(g, "technical_incidents",
                                                                  "technical_difficulties"))),
            (_("Images retenues"), _number(_get(g, "technical_incidents", "images_held"))),
        ]),
        (_("Permanence des soins"), [
            (_("Heures hors ouverture de la période"), _number(_get(g, "oncall", "out_of_hours_hours"))),
            *[(_("%(name)s : part couverte par une garde", name=_get(t, "name") or _get(t, "territory_id")),
               f"{_share(_get(t, 'covered_share'))} ({_number(_get(t, 'gaps'))} {_('trous')})")
              for t in (_get(g, "oncall", "territories") or []) if isinstance(t, Mapping)],
        ]),
    ]
    return result
