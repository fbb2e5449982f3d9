"""French labels for coded values shown on pages (the forms' x-labels, roles), as Jinja filters."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from flask import Flask
from flask_babel import lazy_gettext as _l

from engine.domain.account_roles import ACCOUNT_ROLES
from forms import default_registry

ROLE_LABELS = {
    "requester": _l("Médecin demandeur"), "technologist": _l("Manipulateur"), "radiologist": _l("Radiologue"),
    "local_radiologist": _l("Radiologue de proximité"), "tele_expert": _l("Télé-expert"),
    "site_lead": _l("Médecin responsable du site"), "process_designer": _l("Concepteur de processus"),
    "administrator": _l("Administrateur"), "auditor": _l("Auditeur"), "researcher": _l("Chercheur"),
}
assert set(ROLE_LABELS) == set(ACCOUNT_ROLES)

SETTING_LABELS = {
    "accept_oncall": _l("Acceptation — radiologue de garde"),
    "accept_tier1": _l("Acceptation — niveau 1 (territoire)"),
    "accept_tier2": _l("Acceptation — niveau 2 (territoires voisins)"),
    "accept_tier3": _l("Acceptation — niveau 3 (département, région)"),
    "accept_tier4": _l("Acceptation — niveau 4 (société externe)"),
    "report_vital": _l("Compte-rendu — urgence vitale"),
    "report_urgent": _l("Compte-rendu — urgent"),
    "report_scheduled": _l("Compte-rendu — programmé"),
    "teleexpertise_answer": _l("Avis du télé-expert"),
    "reminder": _l("Rappel"),
    "no_radiologist_alert": _l("Aucun radiologue disponible — rappel aux responsables"),
    "step_vital": _l("Autres étapes — urgence vitale"),
    "step_urgent": _l("Autres étapes — urgent"),
    "step_scheduled": _l("Autres étapes — programmé"),
    "teleexpertise_step": _l("Étapes de la téléexpertise"),
    "identity_reconciliation": _l("Rapprochement d'identité des images"),
}


def setting_label(name: str | None) -> str:
    """The French name of a setting; a name this page does not know is shown as it is."""
    if not name:
        return "—"
    return str(SETTING_LABELS.get(name, name))


@functools.lru_cache(maxsize=1)
def _code_labels() -> dict[str, dict[str, str]]:
    """field name -> value -> label, from every form schema."""
    registry = default_registry()
    labels: dict[str, dict[str, str]] = {}

    def walk(properties: dict[str, Any]) -> None:
        for name, prop in properties.items():
            if isinstance(prop.get("x-labels"), dict):
                labels.setdefault(name, {}).update(prop["x-labels"])
            if isinstance(prop.get("properties"), dict):
                walk(prop["properties"])

    for key in registry.keys():  # noqa: SIM118 - FormRegistry.keys() lists the schema files
        walk(registry.schema(key).get("properties", {}))
    return labels


def coded(value: Any, field: str) -> Any:
    """The French label of a coded value (e.g. protocol "ct_head_plain"), or the value itself."""
    if not isinstance(value, str):
        return value
    if field == "protocol":
        found = _protocol(value)
        if found is not None:
            return found
    return _code_labels().get(field, {}).get(value, value)


def _protocol(protocol_id: str) -> str | None:
    """Protocols come from the administrators' catalogue, not from a form's labels."""
    from flask import current_app, has_app_context

    from engine.services.protocols import protocol_catalogue
    from web.extensions import telerad

    if not has_app_context():
        return None
    found = protocol_catalogue(telerad(current_app).ctx).get(protocol_id)
    return found.label if found is not None else None


def site_name(site_id: str | None) -> str:
    """The name of a site (CH de Brest), never its id; the directory is read once per request."""
    return _directory_names()[0].get(site_id or "", site_id or "—")


def territory_name(territory_id: str | None) -> str:
    return _directory_names()[1].get(territory_id or "", territory_id or "—")


def _directory_names() -> tuple[dict[str, str], dict[str, str]]:
    from flask import current_app, g

    from engine.services.directory import list_sites, list_territories
    from web.extensions import telerad

    if "directory_names" not in g:
        ctx = telerad(current_app).ctx
        g.directory_names = ({site[0]: site[1] for site in list_sites(ctx)},
                             {territory[0]: territory[1] for territory in list_territories(ctx)})
    names: tuple[dict[str, str], dict[str, str]] = g.directory_names
    return names


def role_label(role: str | None) -> str:
    return str(ROLE_LABELS.get(role or "", role or "—"))


def iso_to_datetime(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def register_label_filters(app: Flask) -> None:
    app.jinja_env.filters["coded"] = coded
    app.jinja_env.filters["role"] = role_label
    app.jinja_env.filters["site_name"] = site_name
    app.jinja_env.filters["territory_name"] = territory_name
    app.jinja_env.filters["isodate"] = iso_to_datetime

