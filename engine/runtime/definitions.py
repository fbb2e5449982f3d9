"""From diagram files to validated, cached workflow specs.

A *bundle* is what one definition version needs: its main BPMN file plus every BPMN/DMN file reached
through call activities and business rule tasks. Bundles are immutable and keyed by a content hash, so
parsed specs are cached per version and never re-parsed per request.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from engine.errors import DefinitionRefused, Finding
from engine.runtime.charter_facts import install_hooks
from engine.runtime.checks import check_specs, check_xml
from engine.runtime.script_engine import OperationRegistry
from engine.runtime.xml import BPMN_NS, NOT_A_DIAGRAM, SPIFF_NS, kind_of, read_xml

NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}


@dataclass(frozen=True)
class Bundle:
    """The files of one definition version: ``files`` maps file name -> XML text."""

    process_id: str
    files: Mapping[str, str]
    content_hash: str = field(init=False)

    def __post_init__(self) -> None:
        canonical = json.dumps({"process": self.process_id, "files": dict(sorted(self.files.items()))},
                               sort_keys=True, ensure_ascii=False)
        object.__setattr__(self, "content_hash", hashlib.sha256(canonical.encode("utf-8")).hexdigest())

    def to_json(self) -> str:
        return json.dumps({"process_id": self.process_id, "files": dict(self.files)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Bundle:
        data = json.loads(text)
        return cls(data["process_id"], data["files"])


@dataclass(frozen=True)
class ParsedDefinition:
    bundle: Bundle
    spec: Any
    subprocess_specs: dict[str, Any]
    process_name: str
    lane_roles: dict[str, str] = field(default_factory=dict)  # lane name -> role
    charter_roles: dict[str, str] = field(default_factory=dict)  # task spec name -> charter role


def lane_roles(roots: Mapping[str, etree._Element]) -> dict[str, str]:
    """A lane's role is its `role` property (spiffworkflow:properties), or else its name, so that lanes can
    carry readable French names ("Médecin demandeur") while tasks route to roles ("requester")."""
    roles: dict[str, str] = {}
    for root in roots.values():
        for lane in root.iter(f"{{{BPMN_NS}}}lane"):
            name = lane.get("name") or lane.get("id") or ""
            declared = lane.find(f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}properties/"
                                 f"{{{SPIFF_NS}}}property[@name='role']")
            roles[name] = declared.get("value") if declared is not None else name
    return roles


def executable_processes(root: etree._Element) -> list[tuple[str, str]]:
    return [(p.get("id"), p.get("name") or p.get("id"))
            for p in root.iterfind(f"{{{BPMN_NS}}}process") if p.get("isExecutable") == "true"]


def bundles_from_library(files: Mapping[str, str]) -> list[Bundle]:
    """One bundle per executable top-level process (not itself called) in a library such as workflows/bpmn/."""
    roots = {name: read_xml(text, name) for name, text in files.items()}
    process_files: dict[str, str] = {}
    decision_files: dict[str, str] = {}
    for name, root in roots.items():
        if kind_of(root) == "bpmn":
            for process in root.iterfind(f"{{{BPMN_NS}}}process"):
                process_files[process.get("id")] = name
        elif kind_of(root) == "dmn":
            for decision in root.iter("{*}decision"):
                decision_files[decision.get("id")] = name
    called = {call.get("calledElement") for root in roots.values()
              for call in root.iter(f"{{{BPMN_NS}}}callActivity")}
    bundles = []
    for name, root in sorted(roots.items()):
        if kind_of(root) != "bpmn":
            continue
        for process_id, _ in executable_processes(root):
            if process_id in called:
                continue  # a called process travels inside the bundles of its callers
            needed = _dependencies(name, roots, process_files, decision_files)
            bundles.append(Bundle(process_id, {n: files[n] for n in sorted(needed)}))
    return bundles


def _dependencies(start: str, roots: Mapping[str, etree._Element], process_files: Mapping[str, str],
                  decision_files: Mapping[str, str]) -> set[str]:
    needed, pending = set(), [start]
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        needed.add(name)
        root = roots[name]
        if kind_of(root) != "bpmn":
            continue
        for call in root.iter(f"{{{BPMN_NS}}}callActivity"):
            target = process_files.get(call.get("calledElement") or "")
            if target:
                pending.append(target)
        for ref in root.iter(f"{{{SPIFF_NS}}}calledDecisionId"):
            target = decision_files.get((ref.text or "").strip())
            if target:
                pending.append(target)
    return needed


def parse_bundle(bundle: Bundle, operations: OperationRegistry) -> ParsedDefinition:
    """Parse and validate a bundle; raise DefinitionRefused listing every problem found."""
    roots = {name: read_xml(text, name) for name, text in bundle.files.items()}
    findings: list[Finding] = []
    for name, root in roots.items():
        findings.extend(check_xml(root, name))
    if findings:
        raise DefinitionRefused(findings)
    parser = SpiffBpmnParser()
    try:
        for name, root in roots.items():
            if kind_of(root) == "bpmn":
                parser.add_bpmn_xml(etree.ElementTree(root), filename=name)
            elif kind_of(root) == "dmn":
                parser.add_dmn_xml(root, filename=name)
            else:
                raise DefinitionRefused([Finding("", "xml.kind", NOT_A_DIAGRAM, name)])
        spec = parser.get_spec(bundle.process_id)
        subprocess_specs = parser.get_subprocess_specs(bundle.process_id)
    except ValidationException as err:
        raise DefinitionRefused([Finding(getattr(err, "id", "") or "", "bpmn.parse", _parse_failed(_message(err)),
                                         getattr(err, "file_name", "") or "")]) from err
    except DefinitionRefused:
        raise
    except Exception as err:  # the parser raises many kinds of errors on broken input
        raise DefinitionRefused([Finding("", "bpmn.parse",
                                         _parse_failed(f"{err.__class__.__name__}: {err}"))]) from err
    findings = check_specs([spec, *subprocess_specs.values()], operations)
    if findings:
        raise DefinitionRefused(findings)
    charter_roles = install_hooks([spec, *subprocess_specs.values()])
    return ParsedDefinition(bundle, spec, subprocess_specs, spec.description or bundle.process_id, lane_roles(roots),
                            charter_roles)


def _parse_failed(detail: str) -> str:
    """SpiffWorkflow's own parser message (in English), introduced and followed by French sentences."""
    return (f"Le diagramme n'a pas pu être analysé : {detail.rstrip('. ')}. "
            "Corrigez l'élément en cause dans le modeleur.")


def _message(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else err.__class__.__name__


class SpecCache:
    """Parsed definitions by content hash (LRU). Specs are read-only once parsed, so sharing is safe."""

    def __init__(self, operations: OperationRegistry, size: int = 64):
        self._operations = operations
        self._size = size
        self._items: OrderedDict[str, ParsedDefinition] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, bundle: Bundle) -> ParsedDefinition:
        with self._lock:
            parsed = self._items.get(bundle.content_hash)
            if parsed is not None:
                self._items.move_to_end(bundle.content_hash)
                return parsed
        parsed = parse_bundle(bundle, self._operations)
        with self._lock:
            self._items[bundle.content_hash] = parsed
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return parsed



def read_library(paths: Iterable[Any]) -> dict[str, str]:
    """Read .bpmn/.dmn files into a name -> text mapping."""
    return {path.name: path.read_text(encoding="utf-8") for path in paths}
