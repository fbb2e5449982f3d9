"""The reader of the CNAM's CCAM workbook (engine.services.ccam_ameli, CH-7.1): the header row found by its column
names among title rows, the imaging acts of activity 1 and phase 0 with a tariff kept, the rest skipped and counted
per reason, CT and MRI valued with the technical fees of the remuneration document (CH-7.2); a file it cannot trust
refused whole, in French. Prices computed by hand from tests/ccam_ameli_files.py."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.domain.fees import CcamTableError, split_fee
from engine.services.ccam_ameli import looks_like_workbook, read_cnam_workbook
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
