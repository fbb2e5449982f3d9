"""Validation of diagram files before anyone deploys them (`telerad validate`): the checks of a deployment
(XML, expressions, operations, forms, charter placement), with the shipped operations and form schemas."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from engine.ports import InMemoryDirectory, SystemClock
from engine.runtime.validation import FileReport, validate_library
from engine.services.bootstrap import default_operations
from forms import default_registry


def validate_diagram_files(files: Iterable[Path]) -> list[FileReport]:
    """Reports of the given .bpmn/.dmn files. The other diagrams of their folders are read too, so that call
    activities and decisions resolve, but only the given files are reported."""
    wanted = {path.resolve() for path in files}
    library: dict[str, str] = {}
    names: dict[Path, str] = {}
    for folder in sorted({path.parent for path in wanted}):
        for path in sorted([*folder.glob("*.bpmn"), *folder.glob("*.dmn")]):
            names[path.resolve()] = path.name
            library[path.name] = path.read_text(encoding="utf-8", errors="replace")
    registry = default_registry()
    reports = validate_library(library, default_operations(InMemoryDirectory(), SystemClock()), registry.exists,
                               registry.schema)
    shown = {names[path] for path in wanted if path in names}
    return [report for report in reports if report.file in shown]
