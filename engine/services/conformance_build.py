"""Builds the conformance call graph: parses the product packages (conformance_graph), links every scope
(conformance_linker) and the attributes page templates use."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from engine.services.conformance_graph import (
    PRODUCT_PACKAGES,
    TEMPLATES,
    CodeGraph,
    Module,
    collect_module,
    collect_operations,
)
from engine.services.conformance_linker import link_scope

TEMPLATE_ATTRIBUTE = re.compile(r"\.([A-Za-z_]\w*)")


def build_graph(root: Path) -> CodeGraph:
    graph = CodeGraph()
    for package in PRODUCT_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            except SyntaxError:
                continue
            graph.modules[name] = Module(name, tree, is_package)
    for module in graph.modules.values():
        collect_module(graph, module)
    skipped = collect_operations(graph)
    for scope in list(graph.scopes.values()):
        link_scope(graph, scope, skipped)
    _link_templates(graph, root / "web" / "templates")
    return graph


def _link_templates(graph: CodeGraph, templates: Path) -> None:
    """Methods and properties that page templates use (``obj.name``) run when the web application renders a
    page: by name, from the application factory."""
    if "web.app.create_app" not in graph.scopes or not templates.is_dir():
        return
    names: set[str] = set()
    for path in templates.rglob("*.html"):
        names.update(TEMPLATE_ATTRIBUTE.findall(path.read_text(encoding="utf-8")))
    graph.edges.setdefault(TEMPLATES, set()).update(
        method for name in names for method in graph.by_name.get(name, ()))
    graph.edges.setdefault("web.app.create_app", set()).add(TEMPLATES)
