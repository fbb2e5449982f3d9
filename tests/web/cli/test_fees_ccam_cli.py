"""`telerad fees load-ccam` with the CNAM's CCAM workbook (CH-7.1, CH-7.2): the imaging acts loaded with the CT and
MRI technical fees given and a summary of what was kept and skipped; without a needed fee, with an unreadable fee or
a bad file: refused in French, nothing loaded. SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import openpyxl
import pytest

from engine.services.ccam_tables import list_tables
from tests.ccam_ameli_files import ROWS, workbook
from tests.web.cli.test_fees_cli import cli


@pytest.mark.charter("CH-7.1")
@pytest.mark.charter("CH-7.2", negative=True)
def test_CH7_1_the_cnam_workbook_is_loaded_from_the_command_line(ctx, database_url, tmp_path):
    path = tmp_path / "CCAM_V80.xlsx"
    path.write_bytes(workbook())
    result = cli(database_url, tmp_path, "load-ccam", str(path), "--effective", "2026-01-01",
                 "--mri-technical-fee", "150")
    assert result.exit_code == 1 and "ACQK001" in result.output and "--ct-technical-fee" in result.output
    assert "rien n'a été chargé" in result.output and list_tables(ctx) == []
    for fee, message in (("soixante", "montant illisible"), ("-60", "doit être positif")):
        result = cli(database_url, tmp_path, "load-ccam", str(path), "--effective", "2026-01-01",
                     "--ct-technical-fee", fee, "--mri-technical-fee", "150")
        assert result.exit_code == 1 and message in result.output, result.output
    path.write_bytes(workbook([*ROWS, ["ZBQK02", "Radiographie du thorax", 1, 0, 21.28]]))
    result = cli(database_url, tmp_path, "load-ccam", str(path), "--effective", "2026-01-01",
                 "--ct-technical-fee", "60", "--mri-technical-fee", "150")
    assert result.exit_code == 1 and "code CCAM invalide" in result.output and list_tables(ctx) == []
    path.write_bytes(workbook())
    result = cli(database_url, tmp_path, "load-ccam", str(path), "--effective", "2026-01-01",
                 "--ct-technical-fee", "60,00", "--mri-technical-fee", "150")
    assert result.exit_code == 0, result.output
    output = result.output
    assert "(fichier CCAM de la CNAM) : 5 acte(s), en vigueur depuis le 2026-01-01 (CCAM_V80.xlsx)" in output
    for line in ("scanner : 2 acte(s)", "IRM : 1 acte(s)", "radiologie conventionnelle : 2 acte(s)",
                 "forfait technique de scanner ajouté au tarif CCAM : 60.00 €",
                 "forfait technique d'IRM ajouté au tarif CCAM : 150.00 €",
                 "écartés : 3 ligne(s) sans code CCAM", "écartés : 2 acte(s) hors imagerie",
                 "écartés : 2 acte(s) d'imagerie d'une autre activité", "écartés : 1 acte(s) d'imagerie sans tarif"):
        assert line in output, line
    [table] = list_tables(ctx)
    assert (table.source_format, table.ct_technical_fee_eur, table.act_count) == ("cnam-excel", Decimal("60.00"), 5)


@pytest.mark.charter("CH-7.1", negative=True)
def test_CH7_1_a_dense_workbook_is_refused_by_the_command_in_french_not_aborted(ctx, database_url, tmp_path):
    book = openpyxl.Workbook()
    book.active["A1"], book.active["XFD1048576"] = "Code", "x"
    path = tmp_path / "CCAM_V80.xlsx"
    book.save(path)
    result = cli(database_url, tmp_path, "load-ccam", str(path), "--effective", "2026-01-01",
                 "--ct-technical-fee", "60", "--mri-technical-fee", "150")
    assert result.exit_code == 1 and "le classeur est trop grand ou illisible" in result.output, result.output
    assert "rien n'a été chargé" in result.output and list_tables(ctx) == []
    for fee in ("0.004", "60.001"):
        result = cli(database_url, tmp_path, "load-ccam", str(path), "--effective", "2026-01-01",
                     "--ct-technical-fee", fee, "--mri-technical-fee", "150")
        assert result.exit_code == 1 and "deux décimales au plus" in result.output, result.output
    csv = tmp_path / "ccam.csv"
    csv.write_text("code,label,modality,family,price_eur,technical_share_eur\n"
                   "ZBQK002,Radiographie du thorax,XR,radiologie,1e9999,\n", encoding="utf-8")
    result = cli(database_url, tmp_path, "load-ccam", str(csv), "--effective", "2026-01-01")
    assert result.exit_code == 1 and "montant illisible « 1e9999 »" in result.output, result.output
    assert list_tables(ctx) == []
