"""Charter facts: what the case has done, recorded by the engine itself when an element with a charter role
completes (engine.domain.charter_roles), whatever the diagram calls its variables or steps.

The record lives in the top workflow's own data (``BpmnWorkflow.data``, saved with the state), which no form,
message or operation writes: task data and forms cannot forge a fact. Each fact keeps who, when, which element,
a sequence number (to tell what happened after what) and the values of the fields that role is about.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from engine.domain.charter_roles import CALLABLE_ROLES, ENGINE_ROLES, PERSON_ROLES, ROLE_PROPERTY
from engine.domain.gates import FACTS_KEY, ROLE_FIELDS
from engine.runtime.clock import current_time

ACTOR_ATTRIBUTE = "_telerad_actor"


def role_of(spec: Any) -> str | None:
    properties = (getattr(spec, "extensions", None) or {}).get("properties", {})
    role = properties.get(ROLE_PROPERTY)
    return role if isinstance(role, str) and role else None


def install_hooks(specs: Iterable[Any]) -> dict[str, str]:
    """Wrap the completion hook of every task spec that has a charter role; return spec name -> role."""
    roles: dict[str, str] = {}
    for process_spec in specs:
        for spec in process_spec.task_specs.values():
            role = role_of(spec)
            if role is None or getattr(spec, "_telerad_role", None) == role or not fits(spec, role):
                continue
            original = spec._on_complete_hook

            def hook(my_task: Any, _original: Any = original, _role: str = role) -> None:
                _original(my_task)
                record(my_task, _role)

            spec._on_complete_hook = hook
            spec._telerad_role = role
            roles[spec.name] = role
    return roles


def fits(spec: Any, role: str) -> bool:
    """Whether this kind of element may record a fact of this role: a person's step is a user task, an engine
    step a service task or a decision table; an event or a gateway never records one (deployment refuses them
    too: engine.runtime.charter_placement)."""
    if getattr(spec, "event_definition", None) is not None:
        return False
    kind = type(spec).__name__
    if role in PERSON_ROLES:
        return bool(getattr(spec, "manual", False))
    if role in ENGINE_ROLES:
        return kind in ("ServiceTask", "BusinessRuleTask")
    if role in CALLABLE_ROLES:
        return bool(getattr(spec, "manual", False)) or kind in ("CallActivity", "SubWorkflowTask")
    return False


def record(task: Any, role: str) -> None:
    top = task.workflow.top_workflow
    facts = top.data.setdefault(FACTS_KEY, {"seq": 0, "roles": {}, "history": []})
    facts["seq"] += 1
    values = {name: _plain(task.data.get(name)) for name in ROLE_FIELDS.get(role, ()) if name in task.data}
    entry = {"role": role, "seq": facts["seq"], "at": _now(), "by": getattr(top, ACTOR_ATTRIBUTE, None),
             "task": task.task_spec.bpmn_id or task.task_spec.name, "values": values}
    facts["roles"][role] = entry
    facts["history"].append({k: entry[k] for k in ("role", "seq", "at", "by", "task")})


def facts_of(workflow: Any) -> Mapping[str, Any]:
    found = workflow.data.get(FACTS_KEY)
    return found if isinstance(found, dict) else {"seq": 0, "roles": {}, "history": []}


def withdraw(workflow: Any, roles: Iterable[str], reason: str) -> list[str]:
    """Forget facts (e.g. an identity check made on traits the RIS has since amended); returns those removed."""
    facts = workflow.data.setdefault(FACTS_KEY, {"seq": 0, "roles": {}, "history": []})
    removed = [role for role in roles if facts["roles"].pop(role, None) is not None]
    if removed:
        facts["seq"] += 1
        facts["history"].append({"role": ",".join(removed), "seq": facts["seq"], "at": _now(), "by": None,
                                 "task": None, "withdrawn": reason})
    return removed


def _now() -> str:
    moment: datetime = current_time()
    return moment.isoformat()


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)
