"""The product's entry points, found in the source (ast): where a user, a peer system or a diagram can start
running code. Each entry is a node of the call graph with French labels, e.g. ``route POST /tasks/<task_id>``,
``commande telerad demo``, ``opération telerad.candidate_pool ← telediagnosis.bpmn#candidate_pool``.

- web routes: functions decorated with ``@bp.get/post/put/patch/delete/route(...)`` of a module-level
  ``Blueprint(...)`` in the web package (its ``url_prefix`` included), and the other blueprint hooks
  (context processors, error handlers); the application factory ``web.app.create_app`` and ``web/wsgi.py``;
- ``telerad`` commands: click commands and groups of the web package, with their full command path;
- listeners and scheduled jobs: every function and method of the modules in ``LISTENER_MODULES``
  (callbacks are often private methods, so all of them count);
- service operations, only those that a diagram of the analysed set calls (serviceTaskOperator).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

from engine.services.conformance_graph import CodeGraph, module_body

LISTENER_MODULES: dict[str, str] = {
    "web.ops.listeners": "services d'écoute",
    "web.ops.scheduler": "planificateur des échéances",
    "integrations.hl7.service": "service HL7 (MLLP)",
    "integrations.hl7.inbound": "réception HL7 (MLLP)",
    "integrations.hl7.outbox": "envoi HL7 des comptes-rendus",
    "integrations.dicom.service": "service DICOM",
    "integrations.dicom.scp": "réception DICOM (C-STORE)",
}
_HTTP = {"get": "GET", "post": "POST", "put": "PUT", "patch": "PATCH", "delete": "DELETE"}
_CLICK_SUFFIXES = ("_command", "_cmd", "_group", "_grp")


def entry_points(graph: CodeGraph, operation_calls: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Call graph node -> French labels of the entry points it is; operation_calls: operation -> diagram elements."""
    entries: dict[str, list[str]] = {}
    for key, labels in [*_web_entries(graph), *_cli_entries(graph), *_listener_entries(graph),
                        *operation_entries(graph, operation_calls)]:
        entries.setdefault(key, []).extend(labels)
    return entries


def operation_entries(graph: CodeGraph, operation_calls: Mapping[str, list[str]]) -> list[tuple[str, list[str]]]:
    return [(graph.operations[name], [f"opération {name} ← {element}" for element in sorted(elements)])
            for name, elements in sorted(operation_calls.items()) if name in graph.operations]


def _web_modules(graph: CodeGraph) -> list[str]:
    return sorted(name for name in graph.modules if name == "web" or name.startswith("web."))


def _web_entries(graph: CodeGraph) -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    if "web.app" in graph.modules and "web.app.create_app" in graph.scopes:
        found.append(("web.app.create_app", ["démarrage de l'application web"]))
    if "web.wsgi" in graph.modules:
        found.append((module_body("web.wsgi"), ["démarrage de l'application web (wsgi)"]))
    for module_name in _web_modules(graph):
        module = graph.modules[module_name]
        blueprints = _blueprints(module.tree)
        if not blueprints:
            continue
        for statement in module.tree.body:
            if not isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            labels = []
            for decorator in statement.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                func = call.func if call else decorator
                if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                        and func.value.id in blueprints):
                    continue
                prefix = blueprints[func.value.id]
                if func.attr in _HTTP or func.attr == "route":
                    labels.append(f"route {'/'.join(_methods(func.attr, call))} {prefix}{_first_string(call)}")
                else:
                    labels.append(f"traitement web ({func.attr}) {module_name}.{statement.name}")
            if labels:
                found.append((f"{module_name}.{statement.name}", labels))
    return found


def _blueprints(tree: ast.Module) -> dict[str, str]:
    """Module-level ``name = Blueprint(...)`` -> its url_prefix."""
    found: dict[str, str] = {}
    for statement in tree.body:
        if (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Call)
                and _name_of(statement.value.func) == "Blueprint"):
            prefix = next((k.value.value for k in statement.value.keywords if k.arg == "url_prefix"
                           and isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)), "")
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = prefix.rstrip("/")
    return found


def _methods(attr: str, call: ast.Call | None) -> list[str]:
    if attr in _HTTP:
        return [_HTTP[attr]]
    for keyword in call.keywords if call else []:
        if keyword.arg == "methods" and isinstance(keyword.value, ast.List | ast.Tuple):
            return [e.value.upper() for e in keyword.value.elts if isinstance(e, ast.Constant)
                    and isinstance(e.value, str)] or ["GET"]
    return ["GET"]


def _first_string(call: ast.Call | None) -> str:
    if call and call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return ""


def _name_of(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _cli_entries(graph: CodeGraph) -> list[tuple[str, list[str]]]:
    """Click commands and groups: variable -> (key, command name, parent variable or None)."""
    commands: dict[str, tuple[str, str, str | None]] = {}
    attached: dict[str, str] = {}  # group variable -> parent variable, from parent.add_command(group)
    for module_name in _web_modules(graph):
        module = graph.modules[module_name]
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Call) and _name_of(node.func) == "add_command" and node.args:
                child, adder = node.args[0], node.func
                if isinstance(child, ast.Name) and isinstance(adder, ast.Attribute) \
                        and isinstance(adder.value, ast.Name):
                    attached[child.id] = adder.value.id
        for statement in module.tree.body:
            if not isinstance(statement, ast.FunctionDef):
                continue
            for decorator in statement.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                func = call.func if call else decorator
                if not (isinstance(func, ast.Attribute) and func.attr in ("command", "group")
                        and isinstance(func.value, ast.Name)):
                    continue
                parent: str | None = None if func.value.id == "click" else func.value.id
                name = _first_string(call) or next(
                    (k.value.value for k in (call.keywords if call else []) if k.arg == "name"
                     and isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)), "")
                commands[statement.name] = (f"{module_name}.{statement.name}", name or _click_name(statement.name),
                                            parent)
    found = []
    for variable, (key, _name, _parent) in sorted(commands.items()):
        path: list[str] = []
        current: str | None = variable
        seen: set[str] = set()
        while current is not None and current in commands and current not in seen:
            seen.add(current)
            _key, name, declared = commands[current]
            above = declared or attached.get(current)
            if above is None:
                break  # the root group: the `telerad` program itself
            path.insert(0, name)
            current = above
        found.append((key, [f"commande {' '.join(['telerad', *path])}"]))
    return found


def _click_name(function_name: str) -> str:
    """click's default command name (8.2+): suffixes _command, _cmd, _group, _grp dropped, _ as -."""
    name = function_name.lower()
    for suffix in _CLICK_SUFFIXES:
        if name.endswith(suffix) and name != suffix:
            name = name[: -len(suffix)]
            break
    return name.replace("_", "-")


def _listener_entries(graph: CodeGraph) -> list[tuple[str, list[str]]]:
    found = []
    for module_name, label in LISTENER_MODULES.items():
        prefix = f"{module_name}."
        for key, scope in graph.scopes.items():
            if scope.module == module_name and key.startswith(prefix) and scope.parent is None:
                found.append((key, [f"{label} : {key[len(prefix):]}"]))
    return found
