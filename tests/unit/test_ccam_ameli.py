"""The reader of the CNAM's CCAM workbook (engine.services.ccam_ameli, CH-7.1): the header row found by its column
names among title rows, the imaging acts of activity 1 and phase 0 with a tariff kept, the rest skipped and counted
per reason, CT and MRI valued with the technical fees of the remuneration document (CH-7.2); a file it cannot trust
refused whole, in French. Prices computed by hand from tests/ccam_ameli_files.py."""

from __future__ import annotations

import io
import json
import logging
import sys
import time
import zipfile
from decimal import Decimal

import openpyxl
import pytest

from engine.domain.fees import CcamTableError, split_fee
from engine.services import ccam_ameli, ccam_sheet_reader
from engine.services.ccam_ameli import imaging_kind, looks_like_workbook, read_cnam_workbook, read_sheets
from tests.ccam_ameli_files import ROWS, ods, workbook

CT_FEE, MRI_FEE = Decimal("60.00"), Decimal("150.00")
EXPECTED = {  # code: (modality, family, price = CNAM tariff + technical fee, technical share)
    "ACQK001": ("CT", "scanner", Decimal("85.54"), Decimal("60.00")),  # 25.54 + 60.00
    "ACQH003": ("CT", "scanner", Decimal("85.54"), Decimal("60.00")),  # "25,54" + 60.00; its activity 4 skipped
    "ACQN001": ("MR", "irm", Decimal("219.00"), Decimal("150.00")),  # 69 + 150.00
    "ZBQK002": ("XR", "radiologie", Decimal("21.28"), None),
    "QEQK004": ("MG", "radiologie", Decimal("66.42"), None),  # activity and phase blank: 1 and 0
}


def _acts(table):
    return {code: (a.modality, a.family, a.price_eur, a.technical_share_eur) for code, a in table.acts.items()}


@pytest.mark.charter("CH-7.1")
@pytest.mark.charter("CH-7.2")
@pytest.mark.parametrize("content", [workbook(), ods()], ids=["xlsx", "ods"])
def test_CH7_1_the_imaging_acts_of_the_cnam_file_are_kept_with_the_technical_fees(content):
    assert looks_like_workbook(content)
    table = read_cnam_workbook(content, "CCAM_V80.xlsx", CT_FEE, MRI_FEE)
    assert _acts(table) == EXPECTED
    assert table.kept == {"scanner": 2, "irm": 1, "radiologie": 2}
    assert table.skipped == {"no_code": 3, "not_imaging": 2, "other_activity_phase": 2, "no_tariff": 1}
    assert (table.sheet, table.header_row) == ("CCAM", 4)
    assert table.acts["ACQK001"].label.startswith("Scanographie du crâne")
    # the CT act is shared as CH-7.2 says: the whole CNAM tariff plus 20 % of the technical fee
    assert split_fee(table.acts["ACQK001"]).radiologist_eur == Decimal("37.54")  # 25.54 + 12.00


def test_the_header_is_found_by_its_names_whatever_their_accents_case_and_order():
    header = ["TARIF (EN EURO) HORS SECTEUR 1/NON ADHERENTS OPTAM", "code", "LIBELLÉ", "Tarif\n(en euro) Secteur 1",
              "ACTIVITE", "phase"]
    rows = [[90, "ZBQK002", "Radiographie du thorax", 21.28, 1, 0], [90, "ZBQK002", "Radiographie du thorax", 30, 4, 0]]
    table = read_cnam_workbook(workbook(rows, header, titles=[["Titre"], ["Code des actes : voir ci-dessous"]]), "t")
    assert _acts(table) == {"ZBQK002": ("XR", "radiologie", Decimal("21.28"), None)}  # the sector 1 tariff
    assert table.skipped["other_activity_phase"] == 1
    only_tariff = read_cnam_workbook(workbook([["ZBQK002", "Radiographie du thorax", "21.28 €"]],
                                              ["Code", "Texte", "Tarif"]), "t")
    assert _acts(only_tariff) == {"ZBQK002": ("XR", "radiologie", Decimal("21.28"), None)}


@pytest.mark.charter("CH-7.1", negative=True)
@pytest.mark.charter("CH-7.2", negative=True)
@pytest.mark.parametrize(("content", "fees", "message"), [
    (workbook(header=["Code", "Désignation", "Prix"]), (CT_FEE, MRI_FEE), "ligne d'en-tête introuvable"),
    (workbook(titles=[], header=[]), (CT_FEE, MRI_FEE), "ligne d'en-tête introuvable"),
    (workbook(), (None, MRI_FEE), "--ct-technical-fee"),
    (workbook(), (CT_FEE, None), "--mri-technical-fee"),
    (workbook([*ROWS, ["ZBQK02", "Radiographie du thorax", 1, 0, 21.28]]), (CT_FEE, MRI_FEE),
     "ligne 19 : code CCAM invalide « ZBQK02 »"),
    (workbook([*ROWS, ["FORFAIT", "Forfait mensuel", "", "", 500]]), (CT_FEE, MRI_FEE), "code CCAM invalide"),
    (workbook([*ROWS, ["ZBQK002", "Radiographie du thorax", 1, 0, 25]]), (CT_FEE, MRI_FEE), "figure deux fois"),
    (workbook([["ZBQK002", "Radiographie du thorax", 1, 0, "21,2x8"]]), (None, None), "tarif illisible"),
    (workbook([["ZBQK002", "Radiographie du thorax", 1, 0, -3]]), (None, None), "tarif illisible"),
    (workbook([["AAQP007", "Électroencéphalographie", 1, 0, 61.46]]), (None, None), "aucun acte d'imagerie"),
    (b"code,label\nACQK001,x\n", (None, None), "illisible"),
    (b"PK\x03\x04 not really a zip", (None, None), "illisible"),
], ids=["no-header", "empty", "ct-fee", "mri-fee", "bad-code", "flat-rate", "duplicate", "tariff", "negative",
        "no-imaging", "csv", "broken-zip"])
def test_CH7_1_a_file_that_cannot_be_trusted_is_refused_whole_in_french(content, fees, message):
    with pytest.raises(CcamTableError, match=message):
        read_cnam_workbook(content, "CCAM_V80.xls", *fees)


def test_a_workbook_without_ct_or_mri_acts_needs_no_technical_fee():
    rows = [row for row in ROWS if row and row[0] not in ("ACQK001", "ACQH003", "ACQN001")]
    table = read_cnam_workbook(workbook(rows), "t")
    assert set(table.acts) == {"ZBQK002", "QEQK004"} and table.kept == {"radiologie": 2}


def _sheet(*cells) -> bytes:
    """An .xlsx whose only sheet has `cells` ({"A1": value, ...}): a cell far away makes calamine's grid dense."""
    book = openpyxl.Workbook()
    for ref, value in cells:
        book.active[ref] = value
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@pytest.mark.charter("CH-7.1", negative=True)
@pytest.mark.parametrize("far", ["XFD1048576", "BZ1048576"])
def test_CH7_1_a_tiny_dense_workbook_is_refused_and_this_process_survives(far):
    # 4 KB that calamine would turn into a grid of 17 billion (81 million) cells: 550 GB (3 GB) asked, the process
    # reading it aborted (SIGABRT); read in a child limited to 1 GB, it is refused in French and we are still here.
    content = _sheet(("A1", "Code"), (far, "x"))
    assert len(content) < 10_000
    started = time.monotonic()
    with pytest.raises(CcamTableError, match="le classeur est trop grand ou illisible"):
        read_cnam_workbook(content, "CCAM_V80.xlsx", CT_FEE, MRI_FEE)
    assert time.monotonic() - started < 30
    assert _acts(read_cnam_workbook(workbook(), "CCAM_V80.xlsx", CT_FEE, MRI_FEE)) == EXPECTED  # a normal one loads


def test_a_sheet_beyond_the_rows_and_columns_read_is_refused_in_french():
    # what the CCAM needs (some 20,000 rows of 15 columns) with margin, no more: the rows come back to this process
    assert (ccam_sheet_reader.MAX_ROWS, ccam_sheet_reader.MAX_COLUMNS) == (60_000, 40)
    with pytest.raises(CcamTableError, match=r"trop grand ou illisible : la feuille « Sheet » a 1 lignes et 41 "
                                             r"colonnes ; au plus 60000 lignes et 40 colonnes"):
        read_sheets(_sheet(("A1", "Code"), ("AO1", "x")), "t.xlsx")
    with pytest.raises(CcamTableError, match="60001 lignes"):
        read_sheets(_sheet(("A1", "Code"), ("A60001", "x")), "t.xlsx")
    assert read_sheets(_sheet(("A1", "Code"), ("AN3", 2.5)), "t.xlsx")[0][1][2][39] == 2.5  # within: read


def test_an_answer_of_the_reader_beyond_its_cap_is_refused_in_french(monkeypatch):
    # the child refuses to answer beyond MAX_OUTPUT_BYTES...
    sheets = [("CCAM", [["x" * 100] * 10] * 10)]
    assert json.loads(ccam_sheet_reader.encode(sheets, limit=20_000)) == {"sheets": [["CCAM", sheets[0][1]]]}
    with pytest.raises(ccam_sheet_reader.SheetTooLarge, match="au plus 0 Mo sont lus"):
        ccam_sheet_reader.encode(sheets, limit=5_000)
    # ...and this process never reads an answer beyond MAX_ANSWER_BYTES, whatever the child wrote
    monkeypatch.setattr(ccam_ameli, "MAX_ANSWER_BYTES", 100)
    with pytest.raises(CcamTableError, match="trop grand ou illisible : son contenu lu dépasse"):
        read_sheets(workbook(), "t.xlsx")


def _run_instead(monkeypatch, code: str) -> None:
    monkeypatch.setattr(ccam_ameli, "_reader_command", lambda: [sys.executable, "-P", "-c", code])


def test_a_failure_of_the_reader_itself_is_an_internal_error_logged_with_its_stderr(monkeypatch, caplog):
    _run_instead(monkeypatch, "import sys; sys.stderr.write('Traceback (most recent call last):\\n"
                              "ImportError: cannot import name calamine\\n'); sys.exit(1)")
    with caplog.at_level(logging.ERROR, logger="engine.services.ccam_ameli"), \
            pytest.raises(CcamTableError, match=r"^fichier CCAM t.xlsx : erreur interne du lecteur de classeur "
                                                r"\(code 1\)") as refused:
        read_sheets(workbook(), "t.xlsx")
    assert "mémoire" not in str(refused.value)
    assert "ImportError: cannot import name calamine" in caplog.text and "exit code 1" in caplog.text
    _run_instead(monkeypatch, "print('not json')")  # a garbled answer is the reader's fault as well
    with pytest.raises(CcamTableError, match=r"erreur interne du lecteur de classeur \(code 0\)"):
        read_sheets(workbook(), "t.xlsx")


@pytest.mark.parametrize("code", [
    "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
    "import sys; sys.stderr.write('Traceback (most recent call last):\\nMemoryError\\n'); sys.exit(1)",
], ids=["killed", "memory-error"])
def test_a_reader_stopped_by_its_limits_says_the_workbook_is_too_large(monkeypatch, caplog, code):
    _run_instead(monkeypatch, code)
    with pytest.raises(CcamTableError, match=r"trop grand ou illisible : sa lecture dépasse la mémoire \(1024 Mo\)"):
        read_sheets(workbook(), "t.xlsx")
    assert "reader failed" not in caplog.text


def test_the_reader_never_runs_a_module_of_the_current_directory_nor_sees_secrets(monkeypatch, tmp_path):
    # an engine/ package in the current directory (an upload folder, a checkout) is not what runs
    shadow = tmp_path / "engine" / "services"
    shadow.mkdir(parents=True)
    (tmp_path / "engine" / "__init__.py").write_text("")
    (shadow / "__init__.py").write_text("")
    (shadow / "ccam_sheet_reader.py").write_text('print(\'{"sheets": [["SHADOW", []]]}\')\n')
    (tmp_path / "json.py").write_text("raise SystemExit('shadow json')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", ".")  # a relative entry is the current directory again: dropped
    sheets = read_sheets(workbook(), "t.xlsx")
    assert [name for name, _ in sheets] == ["CCAM"] and sheets[0][1]
    # the child parses an untrusted file: it is given no database URL, no key, only PATH, the locale, PYTHONPATH
    monkeypatch.setenv("TELERAD_DATABASE_URL", "postgresql://secret")
    monkeypatch.setenv("TELERAD_SECRET_KEY", "secret")
    _run_instead(monkeypatch, "import json, os; print(json.dumps({'sheets': [[k, []] for k in os.environ]}))")
    names = {name for name, _ in read_sheets(workbook(), "t.xlsx")}
    assert "PATH" in names and "PYTHONPATH" in names
    assert names <= {"PATH", "PYTHONPATH", "LANG", "LC_ALL", "LC_CTYPE"}  # LC_CTYPE: Python's own C locale coercion


def test_a_zip_that_inflates_far_beyond_its_size_is_refused_before_it_is_read():
    buffer = io.BytesIO(workbook())
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/padding.bin", bytes(30 * 2**20))  # 30 MB of zeros in some 30 KB
    with pytest.raises(CcamTableError, match="trop grand ou illisible : il se décompresse en 30 Mo"):
        read_cnam_workbook(buffer.getvalue(), "CCAM_V80.xlsx", CT_FEE, MRI_FEE)


@pytest.mark.charter("CH-7.1", negative=True)
@pytest.mark.parametrize(("tariff", "message"), [
    ("1e9999", "tarif illisible « 1e9999 »"), ("1e15", "tarif illisible"), ("2,5E1", "tarif illisible"),
    ("NaN", None), ("Infinity", None), (1e15, "tarif hors limite"), (100000, "tarif hors limite"),
    ("100 000,00", "tarif hors limite")])
def test_an_odd_tariff_is_refused_in_french_never_an_exception(tariff, message):
    content = workbook([["ZBQK002", "Radiographie du thorax", 1, 0, tariff]])
    if message is None:  # text without a digit: no tariff, the act skipped
        with pytest.raises(CcamTableError, match="aucun acte d'imagerie avec un tarif"):
            read_cnam_workbook(content, "t")
        return
    with pytest.raises(CcamTableError, match=f"ligne 5 : {message}"):
        read_cnam_workbook(content, "t")


@pytest.mark.parametrize("other", ["Tarif non-adhérents OPTAM", "Tarif secteur 2 hors OPTAM",
                                   "Tarif hors adhérents OPTAM", "Tarif (en euro) hors secteur 1",
                                   "TARIF NON ADHERENT OPTAM-CO"])
def test_the_tariff_of_the_other_sector_is_never_taken_whatever_comes_first(other):
    for header, row in ((["Code", "Texte", other, "Tarif secteur 1 / OPTAM"], [30, 21.28]),
                        (["Code", "Texte", other, "Tarif"], [30, 21.28])):
        table = read_cnam_workbook(workbook([["ZBQK002", "Radiographie du thorax", *row]], header, titles=[]), "t")
        assert table.acts["ZBQK002"].price_eur == Decimal("21.28"), header
    with pytest.raises(CcamTableError, match="ligne d'en-tête introuvable"):  # only the other sector's: no tariff
        read_cnam_workbook(workbook([["ZBQK002", "Radiographie du thorax", 30]], ["Code", "Texte", other]), "t")


@pytest.mark.charter("CH-7.1")
def test_imaging_acts_whose_first_word_ends_as_ct_or_mri_are_kept_not_ultrasound():
    rows = [["EBQH001", "Angioscanographie thoracique", 1, 0, 25.54],
            ["MZQH001", "Arthroscanographie de l'épaule", 1, 0, 25.54],
            ["DDQH001", "Coroscanographie", 1, 0, 25.54],
            ["JAQH001", "Uroscanographie", 1, 0, 25.54],
            ["EAQN001", "Angioremnographie [angio-IRM] du crâne", 1, 0, 69],
            ["ZCQM001", "Échographie transcutanée de l'abdomen", 1, 0, 56.7],
            ["ZZQM001", "Échographie-doppler", 1, 0, 56.7]]
    table = read_cnam_workbook(workbook(rows), "t", CT_FEE, MRI_FEE)
    assert {code: (a.modality, a.family) for code, a in table.acts.items()} == {
        "EBQH001": ("CT", "scanner"), "MZQH001": ("CT", "scanner"), "DDQH001": ("CT", "scanner"),
        "JAQH001": ("CT", "scanner"), "EAQN001": ("MR", "irm")}
    assert table.skipped["not_imaging"] == 2
    assert [imaging_kind(label) for label in ("Radiographie du thorax", "Mammographie", "Tomographie", "")] == [
        ("XR", "radiologie"), ("MG", "radiologie"), None, None]


def test_control_characters_of_a_label_are_not_kept():
    table = read_cnam_workbook(workbook([["ZBQK002", "Radiographie du_x0000_thorax\t", 1, 0, 21.28]]), "t")
    assert table.acts["ZBQK002"].label == "Radiographie du thorax"
