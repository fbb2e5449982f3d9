"""What the process designer accepts in a draft, on top of the validation of each diagram: how many files, how
large, how they are named, that the draft still defines its process, and which process an imported file defines.

Problems are reported as findings (a draft is stored with its report); only an imported file that cannot
start a draft at all is refused outright (DefinitionRefused).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from engine.errors import DefinitionRefused, Finding
from engine.runtime import bundles_from_library
from engine.runtime.definitions import executable_processes
from engine.runtime.validation import FileReport, validate_library
from engine.runtime.xml import read_xml
from engine.services.context import EngineContext

MAX_FILES = 20
MAX_TOTAL_BYTES = 2_000_000
FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}\.(bpmn|dmn)$")
PROCESS_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")


def draft_reports(ctx: EngineContext, process_id: str, files: Mapping[str, str]) -> list[FileReport]:
    """The findings of a draft of `process_id`: those of `validate_files`, and the process no longer defined."""
    reports = validate_files(ctx, files)
    _main_process_problem(files, process_id, reports)
    return reports


def validate_files(ctx: EngineContext, files: Mapping[str, str]) -> list[FileReport]:
    """Every finding of every file, plus the limits and naming rules of the designer."""
    problems = _file_problems(files)
    if problems:
        return problems
    return validate_library(files, ctx.runtime.operations, ctx.forms.exists, ctx.forms.schema)


def defined_process(text: str, file_name: str) -> str:
    """The executable process an imported file defines (the first one); DefinitionRefused when there is none."""
    if not FILE_NAME.fullmatch(file_name):
        raise DefinitionRefused([Finding("", "files.name", "Nom de fichier refusé (extension .bpmn ou .dmn).",
                                         file_name)])
    root = read_xml(text, file_name)  # DefinitionRefused with the XML problem
    try:
        ids = [b.process_id for b in bundles_from_library({file_name: text})]
    except DefinitionRefused:
        ids = []
    ids = ids or [pid for pid, _name in executable_processes(root)]
    if not ids or not PROCESS_ID.fullmatch(ids[0]):
        raise DefinitionRefused([Finding("", "process.missing",
                                         "Le fichier ne définit aucun processus exécutable (isExecutable=\"true\").",
                                         file_name)])
    return ids[0]


def _file_problems(files: Mapping[str, str]) -> list[FileReport]:
    if not files:
        return [FileReport("-", [Finding("", "files.empty", "Aucun fichier de diagramme.")])]
    reports = []
    if len(files) > MAX_FILES:
        reports.append(FileReport("-", [Finding("", "files.count", f"Au plus {MAX_FILES} fichiers par processus.")]))
    total = sum(len(text.encode("utf-8")) for text in files.values())
    if total > MAX_TOTAL_BYTES:
        reports.append(FileReport("-", [Finding("", "files.size",
                                                f"Les fichiers dépassent {MAX_TOTAL_BYTES // 1_000_000} Mo.")]))
    for name in files:
        if not FILE_NAME.fullmatch(name):
            reports.append(FileReport(name, [Finding("", "files.name",
                                                     "Nom de fichier refusé (lettres, chiffres, _ . - ; "
                                                     "extension .bpmn ou .dmn).")]))
    return reports


def _main_process_problem(files: Mapping[str, str], process_id: str, reports: list[FileReport]) -> None:
    """The draft of a process must still define that process as an executable, top-level one."""
    if any(r.errors for r in reports):
        return
    try:
        ids = [b.process_id for b in bundles_from_library(files)]
    except DefinitionRefused:
        return
    if process_id not in ids:
        reports.append(FileReport("-", [Finding(process_id, "process.missing",
                                                f"Le processus exécutable « {process_id} » n'est plus défini "
                                                "dans ces fichiers.")]))
