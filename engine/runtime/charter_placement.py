"""Where charter roles may stand (engine.domain.charter_roles): a role is only as trustworthy as the element that
carries it. A person's step is a user task whose form declares that role, in the lane of those who may take it;
an engine step is a service task calling one of its operations; nothing else (events, gateways) carries a role.
A form declaring a role cannot be used by an element that does not carry it, and only the charter's families
start with a request. Checked on every process of a deployment, charter family or not."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lxml import etree

from engine.domain.charter_roles import (
    CALLABLE_ROLES,
    ENGINE_ROLES,
    FAMILY_REQUIRED_ROLES,
    FORM_ROLE_KEY,
    PERSON_ROLES,
    RADIOLOGIST_STEPS,
    ROLES,
    label,
    rule_of,
)
from engine.errors import Finding
from engine.runtime.charter_graph import role_of
from engine.runtime.definitions import lane_roles
from engine.runtime.xml import BPMN_NS, SPIFF_NS

_PROPS = f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}properties/{{{SPIFF_NS}}}property"


def _property(element: etree._Element, name: str) -> str | None:
    found = element.find(f"{_PROPS}[@name='{name}']")
    return found.get("value") if found is not None else None


def _kind(element: etree._Element) -> str:
    return etree.QName(element).localname


def _operation(element: etree._Element) -> str | None:
    found = element.find(f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}serviceTaskOperator")
    return found.get("id") if found is not None else None


def _lanes_of(process: etree._Element, lanes: Mapping[str, str]) -> dict[str, str]:
    """element id -> role of the lane it is in."""
    found: dict[str, str] = {}
    for lane in process.iter(f"{{{BPMN_NS}}}lane"):
        role = lanes.get(lane.get("name") or lane.get("id") or "", "")
        for ref in lane.findall(f"{{{BPMN_NS}}}flowNodeRef"):
            found[(ref.text or "").strip()] = role
    return found


def placement_findings(roots: Mapping[str, etree._Element],
                       form_schema: Callable[[str], Mapping[str, Any]] | None) -> list[Finding]:
    findings: list[Finding] = []
    lanes = lane_roles(roots)
    for file, root in roots.items():
        for process in root.iter(f"{{{BPMN_NS}}}process"):
            family = process.get("id") or ""
            in_lane = _lanes_of(process, lanes)
            for element in process.iter():
                if not isinstance(element.tag, str) or element.get("id") is None:
                    continue
                role, form = role_of(element), _property(element, "formJsonSchemaFilename")
                form_role = _form_role(form, form_schema) if _kind(element) == "userTask" and form else None

                def refuse(rule: str, message: str, element: etree._Element = element, file: str = file) -> None:
                    findings.append(Finding(element.get("id") or "", rule, message, file))

                if form_role and form_role != role:
                    refuse(rule_of(form_role, family), f"Le formulaire « {form} » est celui de l'étape « "
                           f"{label(form_role)} » : l'élément qui l'utilise doit porter ce rôle de charte "
                           f"(charterRole = {form_role}), pour que la charte s'y applique.")
                if role is None or role not in ROLES:
                    continue  # no role; an unknown role is reported by the path analysis
                _check_role(element, role, form_role, form, family, in_lane.get(element.get("id") or ""), refuse)
    return findings


def _check_role(element: etree._Element, role: str, form_role: str | None, form: str | None, family: str,
                lane: str | None, refuse: Callable[[str, str], None]) -> None:
    kind, rule, name = _kind(element), rule_of(role, family), label(role)
    if role == "request" and family not in FAMILY_REQUIRED_ROLES:
        refuse("CH-1.1", "Seuls le télédiagnostic et la téléexpertise commencent par une demande (charte, CH-1.1) : "
                         "ce processus ne peut pas porter le rôle « demande ».")
    if role in PERSON_ROLES:
        if kind != "userTask":
            refuse(rule, f"L'étape « {name} » est faite par une personne : seul un formulaire de tâche utilisateur "
                         "peut porter ce rôle (pas un événement, une passerelle ou une tâche de service).")
        elif form_role != role:
            refuse(rule, f"L'étape « {name} » doit utiliser un formulaire prévu pour elle (« x-charter-role » : "
                         f"{role}), dont les réponses sont vérifiées par la charte ; « {form or 'aucun'} » "
                         "ne l'est pas.")
        elif role in RADIOLOGIST_STEPS and lane != "radiologist":
            refuse(rule, f"L'étape « {name} » revient au radiologue : placez-la dans un couloir de radiologue.")
    elif role in ENGINE_ROLES:
        operations = ENGINE_ROLES[role]
        decision = role == "radioprotection" and kind == "businessRuleTask"
        if not decision and (kind != "serviceTask" or (operations and _operation(element) not in operations)):
            refuse(rule, f"L'étape « {name} » est faite par Telerad : seule une tâche de service appelant "
                         f"{', '.join(operations) or 'une opération de Telerad'} peut porter ce rôle.")
    elif role in CALLABLE_ROLES and kind not in ("userTask", "callActivity"):
        refuse(rule, f"L'étape « {name} » est un formulaire de tâche utilisateur ou l'appel du processus qui le "
                     "contient.")
    elif role in CALLABLE_ROLES and kind == "userTask" and form_role != role:
        refuse(rule, f"L'étape « {name} » doit utiliser le formulaire prévu pour elle (« x-charter-role » : {role}).")


def _form_role(form: str, form_schema: Callable[[str], Mapping[str, Any]] | None) -> str | None:
    if form_schema is None:
        return None
    try:
        schema = form_schema(form)
    except Exception:  # noqa: BLE001 - an unknown form has its own finding
        return None
    value = schema.get(FORM_ROLE_KEY) if isinstance(schema, Mapping) else None
    return value if isinstance(value, str) else None
