"""Validate diagram files for designers: every problem with the element it points at.

Errors make a diagram undeployable: unsafe XML, BPMN schema, SpiffWorkflow parse, scripts, unsafe
expressions, unregistered service operations, user tasks without a known role or an existing form,
timer durations that cannot be resolved, incomplete diagram interchange (DI), and, for the charter families,
the charter invariants proven by path analysis (engine.runtime.charter_paths; rule ids CH-x.y). Warnings come from a
soundness check of each process: unreachable elements, elements from which no end event can be reached,
and parallel joins fed by an exclusive choice (they would wait forever).

Messages are in French, for process designers: what is wrong, then what to do.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.spiff.parser.process import VALIDATOR

from engine.domain.account_roles import LANE_ROLES
from engine.domain.escalation import DEFAULT_ESCALATION, InvalidDuration, parse_duration
from engine.errors import DefinitionRefused, Finding
from engine.runtime.charter_paths import check_charter, is_charter_process
from engine.runtime.checks import check_xml, expression_refused
from engine.runtime.definitions import bundles_from_library, lane_roles, parse_bundle
from engine.runtime.expressions import parse_expression
from engine.runtime.layout import di_findings
from engine.runtime.script_engine import OperationRegistry
from engine.runtime.xml import BPMN_NS, NOT_A_DIAGRAM, SPIFF_NS, kind_of, read_xml

ROLES = LANE_ROLES
NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}
FLOW_NODES = ("task", "userTask", "serviceTask", "manualTask", "businessRuleTask", "sendTask", "receiveTask",
              "scriptTask", "callActivity", "subProcess", "startEvent", "endEvent", "intermediateCatchEvent",
              "intermediateThrowEvent", "boundaryEvent", "exclusiveGateway", "parallelGateway", "inclusiveGateway",
              "eventBasedGateway")


@dataclass
class FileReport:
    file: str
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "errors": [_finding(f) for f in self.errors],
                "warnings": [_finding(f) for f in self.warnings]}


def _finding(f: Finding) -> dict[str, str]:
    return {"element_id": f.element_id, "rule": f.rule, "message": f.message}


def validate_library(files: Mapping[str, str], operations: OperationRegistry, form_exists: Callable[[str], bool],
                     form_schema: Callable[[str], Mapping[str, Any]] | None = None) -> list[FileReport]:
    """Validate a set of .bpmn/.dmn files together (call activities and decisions resolve among them).

    `form_schema` gives the form schemas the charter checks read value domains from; by default, the
    registry `form_exists` belongs to (a FormRegistry's bound method)."""
    if form_schema is None:
        form_schema = getattr(getattr(form_exists, "__self__", None), "schema", None)
    reports = {name: FileReport(name) for name in files}
    roots = {}
    for name, text in files.items():
        try:
            roots[name] = read_xml(text, name)
        except DefinitionRefused as err:
            reports[name].errors.extend(err.findings)
    for name, root in roots.items():
        report = reports[name]
        if kind_of(root) == "bpmn":
            report.errors.extend(_schema(root, name))
            report.errors.extend(check_xml(root, name))
            report.errors.extend(Finding(element, "di", problem, name)
                                 for element, problem in di_findings(files[name], name))
            report.errors.extend(_user_tasks(root, name, form_exists))
            report.errors.extend(_timers(root, name))
            report.warnings.extend(_soundness(root, name))
        elif kind_of(root) != "dmn":
            report.errors.append(Finding("", "xml.kind", NOT_A_DIAGRAM, name))
    _parse(files, roots, reports, operations)
    _charter(files, roots, reports, operations, form_schema)
    return list(reports.values())


def _parse(files: Mapping[str, str], roots: Mapping[str, etree._Element], reports: Mapping[str, FileReport],
           operations: OperationRegistry) -> None:
    """Parse every bundle of the readable files (scripts, expressions, operations), each on its own: a broken
    neighbour (not XML, or failing to parse) does not spare the others their checks."""
    try:
        bundles = bundles_from_library({n: files[n] for n in roots})
    except DefinitionRefused as err:
        _add(reports, err.findings, next(iter(roots), ""))
        return
    for bundle in bundles:
        try:
            parse_bundle(bundle, operations)
        except DefinitionRefused as err:
            _add(reports, err.findings, _main_file(bundle.files, bundle.process_id))


def _add(reports: Mapping[str, FileReport], findings: list[Finding], fallback: str) -> None:
    """Each finding to the report of its file (or the fallback's), once: check_xml findings are found again by
    parse_bundle, and a file shared by several bundles is parsed with each."""
    for finding in findings:
        report = reports.get(finding.file) or reports.get(fallback)
        if report is not None and finding not in report.errors:
            report.errors.append(finding)


def _charter(files: Mapping[str, str], roots: Mapping[str, etree._Element], reports: Mapping[str, FileReport],
             operations: OperationRegistry, form_schema: Callable[[str], Mapping[str, Any]] | None) -> None:
    """Charter path analysis of every charter-family bundle; findings go to the file of their element."""
    try:
        bundles = bundles_from_library({n: files[n] for n in roots})
    except DefinitionRefused:
        return
    for bundle in bundles:
        if not is_charter_process(bundle.process_id):
            continue
        charter = check_charter(bundle.files, bundle.process_id, operations, form_schema)
        for target, found in ((lambda r: r.errors, charter.errors), (lambda r: r.warnings, charter.warnings)):
            for finding in found:
                report = reports.get(finding.file) or reports[_main_file(bundle.files, bundle.process_id)]
                if finding not in target(report):
                    target(report).append(finding)


def _main_file(files: Mapping[str, str], process_id: str) -> str:
    return next((n for n, t in files.items() if f'id="{process_id}"' in t), next(iter(files)))


def _schema(root: etree._Element, name: str) -> list[Finding]:
    document = copy.deepcopy(root)
    VALIDATOR.preprocess(document)  # bpmn-js writes correlation expressions the XSD does not know
    try:
        VALIDATOR.validator.assertValid(document.getroottree())
    except etree.DocumentInvalid:
        # libxml2 names the element type and the line, not the element id
        return [Finding("", "bpmn.schema", f"Le diagramme ne respecte pas le schéma BPMN 2.0 (ligne {error.line}) : "
                                           f"{error.message.rstrip('. ')}. Corrigez cet élément ou réexportez le "
                                           "diagramme depuis un modeleur BPMN 2.0.", name)
                for error in list(VALIDATOR.validator.error_log)[:20]]
    return []


def _user_tasks(root: etree._Element, name: str, form_exists: Callable[[str], bool]) -> list[Finding]:
    findings = []
    roles = lane_roles({name: root})
    lane_of = {ref.text.strip(): lane.get("name") or lane.get("id") for lane in root.iter(f"{{{BPMN_NS}}}lane")
               for ref in lane.iterfind(f"{{{BPMN_NS}}}flowNodeRef") if ref.text}
    for task in root.iter(f"{{{BPMN_NS}}}userTask"):
        task_id = task.get("id", "")
        lane = lane_of.get(task_id)
        if lane is None:
            findings.append(Finding(task_id, "lane-role", "Cette tâche utilisateur n'est dans aucun couloir : personne "
                                                          "ne la recevrait. Placez-la dans le couloir des personnes "
                                                          "qui doivent la faire.", name))
        elif roles.get(lane, lane) not in ROLES:
            findings.append(Finding(task_id, "lane-role", f"Le couloir « {lane} » ne correspond à aucun rôle connu : "
                                                          "personne ne recevrait ses tâches. Choisissez le « Rôle des "
                                                          "personnes de ce couloir » (propriété role) parmi : "
                                                          f"{', '.join(sorted(ROLES))}.", name))
        form = task.find("bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property"
                         "[@name='formJsonSchemaFilename']", NS)
        if form is None:
            findings.append(Finding(task_id, "form", "Cette tâche utilisateur n'a pas de formulaire. Choisissez le "
                                                     "« Formulaire de la tâche » (propriété formJsonSchemaFilename).",
                                    name))
        elif not form_exists(form.get("value", "")):
            findings.append(Finding(task_id, "form", f"Le formulaire « {form.get('value')} » n'existe pas. Choisissez "
                                                     "un formulaire existant ou créez celui-ci dans les formulaires "
                                                     "du concepteur.", name))
    return findings


def _timers(root: etree._Element, name: str) -> list[Finding]:
    findings = []
    for definition in root.iter(f"{{{BPMN_NS}}}timerEventDefinition"):
        event = definition.getparent()
        for child in definition:
            text = (child.text or "").strip()
            if not text:
                continue
            problem = _timer_problem(text)
            if problem:
                findings.append(Finding(event.get("id", ""), "timer", problem, name))
    return findings


def _timer_problem(expression: str) -> str | None:
    try:
        tree = parse_expression(expression)
    except Exception as err:  # noqa: BLE001 - reported as a finding
        return expression_refused("le délai", expression, err)
    body = tree.body
    if isinstance(body, ast.Constant) and isinstance(body.value, str):
        try:
            parse_duration(body.value)
        except InvalidDuration as err:
            return (f"Le délai « {body.value} » n'est pas valide : {err}. Choisissez un « Délai d'escalade » "
                    "réglé par l'administrateur, ou écrivez une durée ISO 8601 entre guillemets, par exemple "
                    '"PT4H".')
    elif isinstance(body, ast.Subscript) and isinstance(body.value, ast.Name) and body.value.id == "escalation":
        key = body.slice
        if isinstance(key, ast.Constant) and key.value not in DEFAULT_ESCALATION:
            return (f"Le délai d'escalade « {key.value!s} » n'existe pas. Choisissez l'un des délais réglés par "
                    f"l'administrateur : {', '.join(sorted(DEFAULT_ESCALATION))}.")
    return None


def _soundness(root: etree._Element, name: str) -> list[Finding]:
    warnings = []
    for process in root.iter(f"{{{BPMN_NS}}}process"):
        nodes = {n.get("id"): n for tag in FLOW_NODES for n in process.iter(f"{{{BPMN_NS}}}{tag}")}
        successors: dict[str, set[str]] = {node_id: set() for node_id in nodes}
        predecessors: dict[str, set[str]] = {node_id: set() for node_id in nodes}
        for flow in process.iter(f"{{{BPMN_NS}}}sequenceFlow"):
            source, target = flow.get("sourceRef"), flow.get("targetRef")
            if source in successors and target in predecessors:
                successors[source].add(target)
                predecessors[target].add(source)
        for boundary in process.iter(f"{{{BPMN_NS}}}boundaryEvent"):
            host = boundary.get("attachedToRef")
            if host in successors:
                successors[host].add(boundary.get("id"))
        starts = [i for i, n in nodes.items() if etree.QName(n).localname == "startEvent"]
        ends = {i for i, n in nodes.items() if etree.QName(n).localname == "endEvent"}
        reached = _walk(starts, successors)
        for node_id in sorted(set(nodes) - reached):
            warnings.append(Finding(node_id, "soundness.unreachable", "Aucun chemin ne mène d'un événement de début "
                                                                      "à cet élément : il ne sera jamais exécuté. "
                                                                      "Reliez-le au reste du processus par un flux, "
                                                                      "ou supprimez-le.", name))
        finishing = _walk(list(ends), predecessors)
        for node_id in sorted(reached - finishing):
            warnings.append(Finding(node_id, "soundness.no-end", "Aucun chemin ne mène de cet élément à un événement "
                                                                 "de fin : un dossier arrivé ici ne se terminerait "
                                                                 "jamais. Ajoutez un flux vers la suite du processus "
                                                                 "ou vers un événement de fin.", name))
        for node_id, node in nodes.items():
            if etree.QName(node).localname == "parallelGateway" and len(predecessors[node_id]) > 1:
                feeders = {etree.QName(nodes[p]).localname for p in predecessors[node_id]}
                if "exclusiveGateway" in feeders:
                    warnings.append(Finding(node_id, "soundness.deadlock",
                                            "Cette jonction parallèle reçoit directement les branches d'un choix "
                                            "exclusif : elle attendrait indéfiniment des branches qui ne viendront "
                                            "pas. Réunissez ces branches par une passerelle exclusive.", name))
    return warnings


def _walk(starts: list[str], edges: Mapping[str, set[str]]) -> set[str]:
    seen, pending = set(), list(starts)
    while pending:
        node = pending.pop()
        if node in seen:
            continue
        seen.add(node)
        pending.extend(edges.get(node, ()))
    return seen
