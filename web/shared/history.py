"""The case history as people read it: one French sentence per event of the case's audit chain, with who acted by
name (a person's display name; the system, the image reception or a hospital's interface by what they are),
never an event code, a timer id or a login name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from web.shared.labels import role_label, setting_label

ACTIONS = {
    "instance.started": _l("Dossier créé"), "task.claimed": _l("Tâche prise"),
    "task.unclaimed": _l("Tâche libérée"), "task.completed": _l("Étape terminée"),
    "message.delivered": _l("Message reçu"), "timer.fired": _l("Délai écoulé"),
    "instance.completed": _l("Dossier clos"), "case.viewed": _l("Dossier consulté"),
    "message.posted": _l("Message ajouté"), "attachment.added": _l("Pièce jointe ajoutée"),
    "timer.rearmed": _l("Délai réarmé"), "instance.cancelled": _l("Dossier annulé"),
    "case.amended": _l("Dossier mis à jour"), "dicom.study_attached": _l("Images rattachées"),
    "dicom.study_held": _l("Images retenues"), "dicom.study_rejected": _l("Images rejetées"),
    "dicom.uploaded": _l("Images déposées"), "attachment.read": _l("Pièce jointe consultée"),
    "instance.failed": _l("Erreur"), "task.viewed": _l("Tâche consultée"),
    "charter.refused": _l("Refusé au titre de la charte"),
    "case.rerouted": _l("Dossier proposé à nouveau aux radiologues"),
    "dicom.instance_held": _l("Image retenue hors de son examen"),
    "instance.migrated": _l("Dossier passé à une nouvelle version de la procédure"),
    "report.signed": _l("Compte-rendu signé électroniquement"), "report.addendum": _l("Addendum au compte-rendu"),
    "dicom.priors_fetched": _l("Examens antérieurs récupérés du PACS de l'établissement"),
    "dicom.priors_failed": _l("Examens antérieurs non récupérés (PACS injoignable)"),
    "dicom.original_study_requested": _l("Examen original demandé au PACS de l'établissement"),
    "dicom.original_study_fetched": _l("Examen original récupéré"),
    "dicom.original_study_failed": _l("Examen original non récupéré"),
    "dicom.qr_find": _l("Examens recherchés depuis une station de visualisation"),
    "dicom.qr_get": _l("Images récupérées par une station de visualisation"),
    "dicom.qr_move": _l("Images envoyées à une station de visualisation"),
    "dicomweb.accessed": _l("Images consultées (DICOMweb)"),
    "viewer.launched": _l("Images ouvertes dans Weasis"),
    "routing.radiologist_skipped": _l("Radiologue écarté de l'offre (charte)"),
    "routing.radiologist_warned": _l("Radiologue proposé malgré la charte (avertissement)"),
}
# Actors that are not people (engine.domain.actors, the adapters' actors).
MACHINE_ACTORS = {
    "system": _l("Telerad (automatique)"), "dicom": _l("Réception des images"),
    "cli": _l("Administration (ligne de commande)"), "anonymous": _l("Personne non identifiée"),
}
RECIPIENTS = {"patient": _l("Patient")}
_REASON_ACTIONS = ("case.rerouted", "dicom.instance_held", "dicom.study_held")


def actor_label(user_id: str | None, name: str | None = None) -> str:
    """Who acted: the person's name, or what the acting system is."""
    if name and name != user_id:
        return name
    if not user_id:
        return "—"
    if user_id in MACHINE_ACTORS:
        return str(MACHINE_ACTORS[user_id])
    if user_id.startswith("hl7:"):
        return _("Système de l'hôpital (%(application)s)", application=user_id[4:].split("@")[0])
    return name or user_id


def recipient_label(recipient: str) -> str:
    """A recipient of a report: a role (the local radiologist, the requester) or the patient."""
    return str(RECIPIENTS[recipient]) if recipient in RECIPIENTS else role_label(recipient)


def history_text(entry: Mapping[str, Any]) -> str:
    """The sentence of one history entry (a completed step's summary already names who did it)."""
    if entry.get("summary"):
        return str(entry["summary"])
    action = str(entry.get("action") or "")
    detail: Mapping[str, Any] = entry.get("detail") or {}
    text = str(ACTIONS.get(action, _("Événement du dossier")))
    what = _detail_text(action, detail)
    if what:
        text = f"{text} : {what}"
    return f"{text} ({actor_label(entry.get('actor'), entry.get('actor_name'))})"


def _detail_text(action: str, detail: Mapping[str, Any]) -> str:
    if action in ("timer.fired", "timer.rearmed") and detail.get("setting"):
        return setting_label(detail["setting"])
    if action == "charter.refused":
        return " ; ".join(str(refusal.get("reason")) for refusal in detail.get("refusals", [])
                          if isinstance(refusal, Mapping) and refusal.get("reason"))
    if action in ("routing.radiologist_skipped", "routing.radiologist_warned"):
        return _screen_text(detail)
    if action in _REASON_ACTIONS and detail.get("reason"):
        return str(detail["reason"])
    if detail.get("title"):
        return str(detail["title"])
    return ""


def _screen_text(detail: Mapping[str, Any]) -> str:
    """Why the charter pack screened a radiologist out of an offer (engine.services.charter_routing)."""
    name = str(detail.get("radiologist_name") or detail.get("radiologist") or "—")
    pack = str(detail.get("pack") or "")
    if detail.get("reason") == "exclusive":
        return _("%(name)s n'a déclaré aucune activité locale : téléradiologue exclusif, non accepté par la charte "
                 "%(pack)s", name=name, pack=pack)
    # Without his share itself: everyone who may see the case reads this line, while a radiologist's share is shown
    # only to him and to administrators (CH-3.5, /account/teleradiology).
    return _("la part de téléradiologie de %(name)s sur 12 mois dépasse le plafond de %(cap)s %% de la charte "
             "%(pack)s", name=name, cap=detail.get("cap") or "—", pack=pack)


def register_history_filters(app: Flask) -> None:
    app.jinja_env.filters["history_text"] = history_text
    app.jinja_env.filters["actor"] = actor_label
    app.jinja_env.filters["recipient"] = recipient_label
