"""Safe XML reading for diagrams: no DTD, no entities, no network, bounded size."""

from __future__ import annotations

from lxml import etree

from engine.errors import DefinitionRefused, Finding

MAX_DIAGRAM_BYTES = 5 * 1024 * 1024

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DMN_NAMESPACES = (
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
)
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NOT_A_DIAGRAM = ("Ce fichier n'est ni un diagramme BPMN ni une table de décision DMN. Exportez-le au format "
                 "BPMN 2.0 (.bpmn) ou DMN (.dmn) depuis votre modeleur.")


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False, remove_comments=True, remove_pis=True,
    )


def read_xml(text: str | bytes, filename: str) -> etree._Element:
    """Parse diagram text, refusing DTDs and entities (billion laughs, XXE) and oversized files."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if len(raw) > MAX_DIAGRAM_BYTES:
        raise DefinitionRefused([Finding("", "xml.size", f"Le fichier dépasse la taille maximale de "
                                         f"{MAX_DIAGRAM_BYTES // (1024 * 1024)} Mo ({MAX_DIAGRAM_BYTES} octets). "
                                         "Allégez le diagramme, par exemple en déplaçant une partie dans un "
                                         "sous-processus appelé (activité d'appel).", filename)])
    try:
        root = etree.fromstring(raw, parser=_parser())
    except etree.XMLSyntaxError as err:
        raise DefinitionRefused([Finding("", "xml.syntax", f"Le fichier n'est pas un XML bien formé : {err}. "
                                         "Corrigez-le à l'endroit indiqué ou réexportez-le depuis le modeleur.",
                                         filename)]) from err
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise DefinitionRefused([Finding("", "xml.dtd", "Les déclarations DOCTYPE et d'entités (<!DOCTYPE …>, "
                                         "<!ENTITY …>) sont interdites pour des raisons de sécurité. Supprimez-les "
                                         "du fichier : un diagramme BPMN ou DMN n'en a pas besoin.", filename)])
    return root


def kind_of(root: etree._Element) -> str:
    namespace = etree.QName(root).namespace
    if namespace == BPMN_NS:
        return "bpmn"
    if namespace in DMN_NAMESPACES:
        return "dmn"
    return "unknown"
