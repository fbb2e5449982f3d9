"""Moving a running case to another version of its process, only when that is safe.

The rule: a case may move when nothing it has done or is doing would be removed or changed. For every
task of the case (top workflow and the workflows of its call activities and sub-processes) that is
COMPLETED or active (READY, WAITING, STARTED, ERROR), the task spec of the same name must exist in the
new version, in the same (sub)process, with the same class and the same meaning. Meaning is SpiffWorkflow's
own serialization of the task spec, without what does not change what the task does:

- labels and help texts: ``bpmn_name`` (the element's ``name``), ``documentation`` and the
  ``instructionsForEndUser`` extension, and a timer's name (SpiffWorkflow takes it from the label);
- ``inputs`` and ``outputs``: the flows around the task. A new task after the current one, or before it, is
  fine; the flows a case already took are history. Joins that are active are the exception (a parallel
  join counts its incoming flows), so their inputs are compared;
- for completed tasks only, the gateway conditions (``cond_task_specs``, ``default_task_spec``): the choice
  was made. An active task's conditions are compared.

A lane is compared through the role it maps to (``spiffworkflow:properties`` ``role``), so renaming a lane
without changing its role is not a change. An active task must also keep the same boundary events: a timer
added to a task already open would never be armed for this case, and one removed or changed is itself a
waiting task that fails the rule.

Tasks that have not run are not compared: predicted and future tasks are dropped and predicted again from
the new version, cancelled tasks whose element no longer exists are dropped (their record stays in the task
index and the audit trail). Task ids, task data and timers' due times are kept, so open tasks keep their id,
claim and due time. Finally the state is actually restored against the new version and predicted; any
failure there is a blocker too. A different process id is always a blocker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.task import TaskState

from engine.errors import Conflict
from engine.runtime.definitions import ParsedDefinition
from engine.runtime.live import LiveWorkflow

if TYPE_CHECKING:
    from engine.runtime import Runtime

ACTIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR
CHECKED = TaskState.COMPLETED | ACTIVE
NOT_RUN = TaskState.PREDICTED_MASK | TaskState.FUTURE
_REGISTRY = BpmnWorkflowSerializer.configure(SPIFF_CONFIG)
_IGNORED = ("name", "bpmn_name", "documentation", "inputs", "outputs")
_CHOICE = ("cond_task_specs", "default_task_spec", "choice")
_LABELS = {
    "lane": "couloir (rôle)", "extensions": "propriétés (formulaire, opération...)",
    "event_definition": "événement (minuteur, message...)", "cond_task_specs": "conditions",
    "default_task_spec": "flux par défaut", "inputs": "flux entrants", "spec": "processus appelé",
    "cancel_activity": "interruption", "manual": "nature de la tâche", "prescript": "script",
    "postscript": "script", "data_input_associations": "données", "data_output_associations": "données",
    "io_specification": "entrées/sorties", "attached": "événements attachés",
}
_KINDS = {
    "UserTask": "tâche utilisateur", "ManualTask": "tâche manuelle", "ServiceTask": "tâche de service",
    "BusinessRuleTask": "tâche de règle métier", "ScriptTask": "tâche de script", "SendTask": "tâche d'envoi",
    "ReceiveTask": "tâche de réception", "NoneTask": "tâche", "CallActivity": "activité d'appel",
    "SubWorkflowTask": "sous-processus", "TransactionSubprocess": "transaction",
    "ExclusiveGateway": "passerelle exclusive", "ParallelGateway": "passerelle parallèle",
    "InclusiveGateway": "passerelle inclusive", "EventBasedGateway": "passerelle basée sur les événements",
    "StartEvent": "événement de début", "EndEvent": "événement de fin", "BoundaryEvent": "événement attaché",
    "IntermediateCatchEvent": "événement intermédiaire (attente)",
    "IntermediateThrowEvent": "événement intermédiaire (envoi)",
}


@dataclass(frozen=True)
class Blocker:
    """Why a case cannot move: the diagram element concerned and a French explanation."""

    element_id: str
    message: str


class MigrationBlocked(Conflict):
    def __init__(self, blockers: list[Blocker]):
        self.blockers = blockers
        super().__init__("; ".join(f"{b.element_id}: {b.message}" for b in blockers[:5]))


def migration_blockers(state: str, old: ParsedDefinition, new: ParsedDefinition, runtime: Runtime) -> list[Blocker]:
    """Why a case whose workflow state is ``state`` (on ``old``) cannot move to ``new``; empty when it can."""
    return _migrate(state, old, new, runtime)[0]


def migrate_workflow(state: str, old: ParsedDefinition, new: ParsedDefinition, runtime: Runtime) -> LiveWorkflow:
    """The case's workflow restored on ``new``; raise MigrationBlocked when it may not move."""
    blockers, live = _migrate(state, old, new, runtime)
    if live is None:
        raise MigrationBlocked(blockers)
    return live


def _migrate(state: str, old: ParsedDefinition, new: ParsedDefinition,
             runtime: Runtime) -> tuple[list[Blocker], LiveWorkflow | None]:
    if old.bundle.process_id != new.bundle.process_id:
        return [Blocker(new.bundle.process_id, f"La nouvelle version est celle d'un autre processus "
                                               f"({new.bundle.process_id}) que celui du dossier "
                                               f"({old.bundle.process_id}).")], None
    try:
        dct = json.loads(state)
        pruned, dropped = _disposable(dct, new)
        blockers = _check(dct, old, new, pruned, dropped)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        return [_unrestorable(new, err)], None
    if blockers:
        return blockers, None
    try:
        live = _restore(dct, new, runtime, pruned, dropped)
        live.snapshot()
        runtime.dump(live)
    except Exception as err:  # whatever SpiffWorkflow raises, the case stays where it is
        return [_unrestorable(new, err)], None
    return [], live


def _unrestorable(new: ParsedDefinition, err: Exception) -> Blocker:
    return Blocker(new.bundle.process_id, "L'état du dossier ne peut pas être rechargé sur la nouvelle version "
                                          f"({err.__class__.__name__}: {err}).")


def _workflows(dct: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """(subprocess key or None for the top workflow, serialized workflow)."""
    return [(None, dct), *dct.get("subprocesses", {}).items()]


def _specs(definition: ParsedDefinition, key: str | None, workflow: dict[str, Any]) -> Any:
    return definition.spec if key is None else definition.subprocess_specs.get(workflow["spec"])


def _disposable(dct: dict[str, Any], new: ParsedDefinition) -> tuple[set[str], set[str]]:
    """Task ids to drop before restoring (not run yet, or cancelled and gone) and subprocesses to drop with
    the call activity that owned them."""
    pruned: set[str] = set()
    for key, workflow in _workflows(dct):
        spec = _specs(new, key, workflow)
        tasks = workflow["tasks"]
        for task_id, task in tasks.items():
            gone = spec is None or task["task_spec"] not in spec.task_specs
            if task["state"] & NOT_RUN or (task["state"] & TaskState.CANCELLED and gone):
                _mark_subtree(tasks, task_id, pruned)
    dropped: set[str] = set()
    subprocesses = dct.get("subprocesses", {})
    changed = True
    while changed:  # a dropped call activity takes its subprocess along, which may own others
        changed = False
        for key, workflow in subprocesses.items():
            if key not in dropped and key in pruned:
                dropped.add(key)
                pruned.update(workflow["tasks"])
                changed = True
    return pruned, dropped


def _mark_subtree(tasks: dict[str, Any], task_id: str, marked: set[str]) -> None:
    pending = [task_id]
    while pending:
        current = pending.pop()
        if current in marked or current not in tasks:
            continue
        marked.add(current)
        pending.extend(tasks[current]["children"])


def _check(dct: dict[str, Any], old: ParsedDefinition, new: ParsedDefinition, pruned: set[str],
           dropped: set[str]) -> list[Blocker]:
    blockers: list[Blocker] = []
    internal: list[Blocker] = []
    for key, workflow in _workflows(dct):
        if key in dropped:
            continue
        old_spec, new_spec = _specs(old, key, workflow), _specs(new, key, workflow)
        # Each task spec once, the strictest way: active if any of its tasks is active.
        states: dict[str, int] = {}
        for task_id, task in workflow["tasks"].items():
            if task_id not in pruned and task["state"] & CHECKED:
                states[task["task_spec"]] = states.get(task["task_spec"], 0) | task["state"]
        if not states:
            continue
        if new_spec is None:
            name = workflow["spec"]
            blockers.append(Blocker(name, f"Le sous-processus « {name} » dans lequel se trouve le dossier "
                                          "n'existe plus dans la nouvelle version."))
            continue
        for spec_name, state in states.items():
            before = old_spec.task_specs[spec_name]
            blocker = _compare(before, new_spec.task_specs.get(spec_name), old, new, active=bool(state & ACTIVE))
            if blocker is not None:
                (blockers if before.bpmn_id else internal).append(blocker)
    # SpiffWorkflow's own steps (boundary event split and join, end join...) are reported only when no
    # element of the diagram explains the change already.
    blocked = {b.element_id for b in blockers}
    blockers.extend(b for b in dict.fromkeys(internal) if b.element_id not in blocked)
    return list(dict.fromkeys(blockers))


def _compare(before: Any, after: Any, old: ParsedDefinition, new: ParsedDefinition, active: bool) -> Blocker | None:
    where = "en cours" if active else "déjà faite"
    if not before.bpmn_id:  # one of SpiffWorkflow's own steps, named after the element it serves
        element = before.name.split(".")[0] if "." in before.name else before._wf_spec.name
        if after is None or type(before) is not type(after) or \
                _meaning(before, old, active) != _meaning(after, new, active):
            return Blocker(element, f"Ce qui entoure l'élément « {element} » (événements attachés, fin du "
                                    f"processus) a changé alors que le dossier y est passé.")
        return None
    element = before.bpmn_id
    label = f"« {before.bpmn_name} » ({element})" if before.bpmn_name else f"« {element} »"
    if after is None:
        return Blocker(element, f"L'étape {label}, {where} dans ce dossier, n'existe plus dans la nouvelle version.")
    if type(before) is not type(after):
        return Blocker(element, f"L'étape {label}, {where} dans ce dossier, a changé de nature "
                                f"({_kind(before)} → {_kind(after)}).")
    first, second = _meaning(before, old, active), _meaning(after, new, active)
    changed = sorted({_LABELS.get(k, k) for k in first.keys() | second.keys() if first.get(k) != second.get(k)})
    if changed:
        return Blocker(element, f"L'étape {label}, {where} dans ce dossier, a été modifiée dans la nouvelle "
                                f"version : {', '.join(changed)}.")
    return None


def _kind(task_spec: Any) -> str:
    name = type(task_spec).__name__
    return _KINDS.get(name, name)


def _meaning(task_spec: Any, definition: ParsedDefinition, active: bool) -> dict[str, Any]:
    """What a task spec does, for comparison (see the module docstring for what is left out)."""
    dct = {k: v for k, v in _REGISTRY.convert(task_spec).items() if k not in _IGNORED}
    if dct.get("lane"):
        dct["lane"] = definition.lane_roles.get(dct["lane"], dct["lane"])
    if isinstance(dct.get("extensions"), dict):
        dct["extensions"] = {k: v for k, v in dct["extensions"].items() if k != "instructionsForEndUser"}
    event = dct.get("event_definition")
    if isinstance(event, dict) and "Timer" in str(event.get("typename", "")):
        dct["event_definition"] = {k: v for k, v in event.items() if k != "name"}
    if active:
        if isinstance(task_spec, Join):
            dct["inputs"] = sorted(spec.name for spec in task_spec.inputs)
        dct["attached"] = _attached_events(task_spec)
    else:
        for key in _CHOICE:
            dct.pop(key, None)
    return dct


def _attached_events(task_spec: Any) -> list[str]:
    """Boundary events attached to a task (SpiffWorkflow puts task and events under one split)."""
    split = task_spec._wf_spec.task_specs.get(f"{task_spec.name}.BoundaryEventSplit")
    if split is None or task_spec not in split.outputs:
        return []
    return sorted(spec.name for spec in split.outputs if spec is not task_spec)


def _restore(dct: dict[str, Any], new: ParsedDefinition, runtime: Runtime, pruned: set[str],
             dropped: set[str]) -> LiveWorkflow:
    subprocesses = dct.get("subprocesses", {})
    for key in dropped:
        del subprocesses[key]
    for _, workflow in _workflows(dct):
        tasks = workflow["tasks"]
        for task_id in pruned & tasks.keys():
            del tasks[task_id]
        for task in tasks.values():
            kept = [child for child in task["children"] if child not in pruned]
            if len(kept) != len(task["children"]) and task["state"] & TaskState.FINISHED_MASK \
                    and not task["state"] & TaskState.CANCELLED:
                # A finished task whose next step had not started yet: it cannot be predicted again.
                raise ValueError(f"task {task['task_spec']} is finished but its next steps never started")
            task["children"] = kept
        if workflow.get("last_task") in pruned:
            workflow["last_task"] = None
    workflow = runtime.codec.loads(json.dumps(dct, ensure_ascii=False), new, runtime.script_engine)
    for part in [workflow, *workflow.subprocesses.values()]:
        for task in part.get_tasks(state=TaskState.NOT_FINISHED_MASK, skip_subprocesses=True):
            task.task_spec._predict(task, mask=TaskState.NOT_FINISHED_MASK)  # the steps ahead, from `new`
    return LiveWorkflow(workflow, new)
