"""CNAM-like CCAM workbooks for the tests of the CNAM reader (engine.services.ccam_ameli): written with openpyxl as
the ameli.fr file is laid out (title rows, a header row, chapter and note rows, acts of every kind), since the real
file cannot be downloaded in the tests. The expected figures are computed by hand in the tests."""

from __future__ import annotations

import io
import zipfile
from xml.sax.saxutils import escape

import openpyxl

HEADER = ["Code", "Texte", "Activité", "Phase", "Tarif(en euro) secteur 1/adhérents OPTAM/OPTAM-CO",
          "Tarif (en euro) hors secteur 1/non adhérents OPTAM/OPTAM-CO", "Rembt. ss Cdtions", "Accord Préalable",
          "Exo. TM", "Regroupement"]
TITLES = [["CCAM - Classification Commune des Actes Médicaux"], ["Version 80.00 applicable au 01/01/2026"], []]
ROWS = [
    ["01", "SYSTÈME NERVEUX CENTRAL, PÉRIPHÉRIQUE ET AUTONOME"],
    ["01.01.01.01", "Électroencéphalographie [EEG]"],
    ["AAQP007", "Électroencéphalographie de 20 minutes", 1, 0, 61.46, 61.46, "", "", 2, "ATM"],
    ["", "Facturation : ne peut pas être facturé avec ..."],
    ["ACQK001", "Scanographie du crâne et de son contenu, sans injection de produit de contraste", 1, 0, 25.54, 25.54,
     "", "", 2, "ADI"],
    ["ACQH003", "Scanographie du crâne et de son contenu, avec injection de produit de contraste", "1", "0", "25,54",
     "25,54", "", "", 2, "ADI"],
    ["ACQH003", "Scanographie du crâne et de son contenu, avec injection de produit de contraste", 4, 0, 40.0, 40.0],
    ["ACQN001", "Remnographie [IRM] du crâne et de son contenu, sans injection de produit de contraste", 1, 0, 69,
     69, "", "", 2, "ADI"],
    [],
    ["ZBQK002", "Radiographie du thorax", 1, 0, 21.28, 21.28, "", "", 2, "ADI"],
    ["QEQK004", "Mammographie bilatérale de dépistage", None, None, 66.42, 66.42],
    ["QEQK001", "Mammographie unilatérale", 1, 0, "Non pris en charge", "Non pris en charge"],
    ["ZCQK002", "Radiographie de l'abdomen sans préparation", 1, 1, 21.28, 21.28],
    ["ZCQM001", "Échographie transcutanée de l'abdomen", 1, 0, 56.7, 56.7],
]


def workbook(rows=None, header=None, titles=None) -> bytes:
    """An .xlsx laid out as the CNAM's CCAM file (ROWS below HEADER below TITLES by default)."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "CCAM"
    for row in [*(TITLES if titles is None else titles), HEADER if header is None else header,
                *(ROWS if rows is None else rows)]:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _ods_cell(value) -> str:
    if value is None or value == "":
        return "<table:table-cell/>"
    if isinstance(value, int | float):
        return f'<table:table-cell office:value-type="float" office:value="{value}"><text:p>{value}</text:p>' \
               "</table:table-cell>"
    return f'<table:table-cell office:value-type="string"><text:p>{escape(str(value))}</text:p></table:table-cell>'


def ods(rows=None) -> bytes:
    """The same as an OpenDocument spreadsheet (.ods), written by hand: the smallest file calamine reads."""
    body = "".join("<table:table-row>" + "".join(_ods_cell(v) for v in row or [""]) + "</table:table-row>"
                   for row in [*TITLES, HEADER, *(ROWS if rows is None else rows)])
    content = ('<?xml version="1.0" encoding="UTF-8"?><office:document-content '
               'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
               'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
               f'<office:body><office:spreadsheet><table:table table:name="CCAM">{body}</table:table>'
               "</office:spreadsheet></office:body></office:document-content>")
    manifest = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
                'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
                '<manifest:file-entry manifest:full-path="/" '
                'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
                "</manifest:manifest>")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()
