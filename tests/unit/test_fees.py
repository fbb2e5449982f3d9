"""Remuneration of teleradiology acts (CH-7.1 to CH-7.6)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

import engine.domain.fees as fees_module
from engine.domain.fees import (
    CCAM_COLUMNS,
    DEFAULT_TELEEXPERTISE_FEE_EUR,
    CcamAct,
    CcamTableError,
    FeeError,
    FeeSplit,
    load_ccam,
    split_fee,
)

D = Decimal
HEAD_CT = CcamAct("ACQK001", "Scanographie du crâne", "CT", "scanner", D("85.27"), D("60.00"))
BRAIN_MRI = CcamAct("ACQN001", "Remnographie du crâne", "MR", "irm", D("219.00"), D("150.00"))
CHEST_XR = CcamAct("ZBQK002", "Radiographie du thorax", "XR", "radiologie", D("21.28"))
LUMBAR_XR = CcamAct("LFQK002", "Radiographie du segment lombal", "XR", "radiologie", D("40.60"))


def lines(split: FeeSplit) -> dict[str, Decimal]:
    return {line.key: line.amount_eur for line in split.breakdown}


@pytest.mark.charter("CH-7.1")
def test_CH7_1_sample_table_loads_fifteen_ccam_acts() -> None:
    table = load_ccam()
    assert len(table) == 15
    assert {"ACQK001", "ZBQK002", "ACQN001"} <= set(table)
    assert all(code == act.code for code, act in table.items())
    assert {act.family for act in table.values()} == {"scanner", "irm", "radiologie"}
    head_ct = table["ACQK001"]
    assert (head_ct.modality, head_ct.family, head_ct.price_eur, head_ct.technical_share_eur) == (
        "CT", "scanner", D("85.27"), D("60.00")
    )
    for act in table.values():  # every act of the shipped table can be split
        split = split_fee(act)
        assert split.radiologist_eur + split.site_eur == act.price_eur


def test_sample_table_is_documented_as_sample() -> None:
    readme = (Path(fees_module.__file__).parent / "data" / "README.md").read_text(encoding="utf-8")
    assert "SAMPLE DATA, NOT THE OFFICIAL CCAM TABLE" in readme
    assert "ameli.fr" in readme and "illustrative" in readme


@pytest.mark.charter("CH-7.1")
def test_CH7_1_flat_rates_are_refused() -> None:
    for flat_rate in (D("150.00"), 150, "150.00", {"price_eur": "150.00"}):
        with pytest.raises(TypeError, match="CCAM"):
            split_fee(flat_rate)  # type: ignore[arg-type]


@pytest.mark.charter("CH-7.1")
@pytest.mark.parametrize("code", ["ZBQK02", "zbqk002", "ZBQK0022", "Z1QK002", "FORFAIT"])
def test_CH7_1_an_act_needs_a_ccam_code(code: str) -> None:
    with pytest.raises(FeeError, match="code CCAM invalide"):
        CcamAct(code, "x", "XR", "radiologie", D("20.00"))


@pytest.mark.charter("CH-7.2")
def test_CH7_2_ct_whole_intellectual_fee_plus_20_percent_of_technical() -> None:
    split = split_fee(HEAD_CT)
    assert lines(split) == {
        "intellectual_fee": D("25.27"),
        "technical_share_radiologist": D("12.00"),
        "technical_share_site": D("48.00"),
    }
    assert split.radiologist_eur == D("37.27")
    assert split.site_eur == D("48.00")


@pytest.mark.charter("CH-7.2")
def test_CH7_2_mri_split_and_rounding_to_the_cent() -> None:
    assert split_fee(BRAIN_MRI).radiologist_eur == D("99.00")  # 69.00 + 30.00
    odd = CcamAct("ACQJ002", "IRM", "MR", "irm", D("219.03"), D("150.03"))
    split = split_fee(odd)
    assert lines(split)["technical_share_radiologist"] == D("30.01")  # 30.006 -> 30.01
    assert lines(split)["technical_share_site"] == D("120.02")  # the remainder, not 120.024 rounded
    assert split.radiologist_eur + split.site_eur == D("219.03")


@pytest.mark.charter("CH-7.2")
def test_CH7_2_ct_and_mri_need_their_technical_share() -> None:
    with pytest.raises(FeeError, match="part technique"):
        CcamAct("ACQK001", "x", "CT", "scanner", D("85.27"))
    with pytest.raises(FeeError, match="dépasse"):
        CcamAct("ACQK001", "x", "CT", "scanner", D("85.27"), D("85.28"))


@pytest.mark.charter("CH-7.3")
def test_CH7_3_conventional_32_percent_plus_20_percent_of_the_68_percent() -> None:
    split = split_fee(CHEST_XR)
    # 32 % of 21.28 = 6.8096 -> 6.81; operating part 14.47; 20 % = 2.894 -> 2.89; site 11.58
    assert lines(split) == {
        "intellectual_fee": D("6.81"),
        "operating_share_radiologist": D("2.89"),
        "operating_share_site": D("11.58"),
    }
    assert split.radiologist_eur == D("9.70")
    assert split.site_eur == D("11.58")


@pytest.mark.charter("CH-7.3")
def test_CH7_3_conventional_second_example() -> None:
    split = split_fee(LUMBAR_XR)
    # 32 % of 40.60 = 12.992 -> 12.99; operating 27.61; 20 % = 5.522 -> 5.52
    assert split.radiologist_eur == D("18.51")
    assert split.site_eur == D("22.09")


@pytest.mark.charter("CH-7.3")
def test_CH7_3_mammography_is_conventional_radiology() -> None:
    mammography = CcamAct("QEQK004", "Mammographie", "MG", "radiologie", D("66.42"))
    split = split_fee(mammography)
    # 32 % = 21.2544 -> 21.25; operating 45.17; 20 % = 9.034 -> 9.03
    assert split.radiologist_eur == D("30.28")
    assert split.site_eur == D("36.14")


@pytest.mark.charter("CH-7.3")
def test_CH7_3_conventional_split_ignores_a_technical_share_column() -> None:
    with_share = CcamAct("ZBQK002", "x", "XR", "radiologie", D("21.28"), D("1.00"))
    assert split_fee(with_share) == split_fee(CHEST_XR)


@pytest.mark.charter("CH-7.4")
def test_CH7_4_teleexpertise_default_specific_fee() -> None:
    split = split_fee(HEAD_CT, teleexpertise=True)
    assert D("50.00") == DEFAULT_TELEEXPERTISE_FEE_EUR
    assert split.radiologist_eur == D("50.00")
    assert split.site_eur == D("0.00")
    assert [line.key for line in split.breakdown] == ["teleexpertise_fee"]
    assert "ACQK001" in split.breakdown[0].label


@pytest.mark.charter("CH-7.4")
def test_CH7_4_teleexpertise_fee_is_a_setting() -> None:
    assert split_fee(CHEST_XR, teleexpertise=True, teleexpertise_fee_eur="35.5").radiologist_eur == D("35.50")
    with pytest.raises(FeeError, match="non nulle"):
        split_fee(CHEST_XR, teleexpertise=True, teleexpertise_fee_eur=0)


@pytest.mark.charter("CH-7.4")
def test_CH7_4_teleexpertise_on_an_act_without_charter_split_is_allowed() -> None:
    ultrasound = CcamAct("ZCQM001", "Échographie", "US", "echographie", D("56.70"))
    with pytest.raises(FeeError, match="la charte ne fixe de partage"):
        split_fee(ultrasound)
    assert split_fee(ultrasound, teleexpertise=True).radiologist_eur == D("50.00")


@pytest.mark.charter("CH-7.5")
def test_CH7_5_whole_on_call_fee_added_on_top_and_paid_by_the_site() -> None:
    split = split_fee(HEAD_CT, on_call_fee_eur=D("180.00"))
    assert split.radiologist_eur == D("37.27") + D("180.00")
    assert split.site_eur == D("48.00") - D("180.00")
    assert lines(split)["on_call_fee"] == D("180.00")


@pytest.mark.charter("CH-7.5")
def test_CH7_5_on_call_fee_has_no_cap_and_rounds_half_up() -> None:
    assert split_fee(CHEST_XR, on_call_fee_eur="1000.005").radiologist_eur == D("9.70") + D("1000.01")
    assert split_fee(HEAD_CT, teleexpertise=True, on_call_fee_eur=40).radiologist_eur == D("90.00")


@pytest.mark.charter("CH-7.6")
def test_CH7_6_transmission_costs_never_reduce_the_radiologist_share() -> None:
    for act in (HEAD_CT, BRAIN_MRI, CHEST_XR):
        without = split_fee(act)
        with_costs = split_fee(act, transmission_costs_eur="250.00")
        assert with_costs.radiologist_eur == without.radiologist_eur
        assert with_costs.site_eur == without.site_eur - D("250.00")
        assert with_costs.radiologist_eur + with_costs.site_eur + D("250.00") == act.price_eur
    costs = [line for line in split_fee(CHEST_XR, transmission_costs_eur=30).breakdown
             if line.key == "transmission_costs"]
    assert len(costs) == 1 and costs[0].payee == "site" and costs[0].amount_eur == D("-30.00")


@pytest.mark.charter("CH-7.6")
def test_CH7_6_teleexpertise_transmission_costs_stay_with_the_site() -> None:
    split = split_fee(HEAD_CT, teleexpertise=True, transmission_costs_eur=D("12.00"))
    assert split.radiologist_eur == D("50.00")
    assert split.site_eur == D("-12.00")


@pytest.mark.charter("CH-7.6")
@pytest.mark.parametrize("parameter", ["on_call_fee_eur", "transmission_costs_eur", "teleexpertise_fee_eur"])
def test_CH7_6_negative_amounts_cannot_shift_costs_to_the_radiologist(parameter: str) -> None:
    with pytest.raises(FeeError, match="négatif"):
        split_fee(HEAD_CT, teleexpertise=True, **{parameter: "-10.00"})


@pytest.mark.parametrize("amount", [1.5, True, None, D("NaN"), "abc", D("Infinity")])
def test_money_refuses_floats_booleans_and_unreadable_amounts(amount: object) -> None:
    with pytest.raises((TypeError, FeeError)):
        split_fee(HEAD_CT, on_call_fee_eur=amount)  # type: ignore[arg-type]


def test_modality_must_match_family() -> None:
    with pytest.raises(FeeError, match="ne correspond pas"):
        CcamAct("ACQK001", "x", "MR", "scanner", D("85.27"), D("60.00"))
    with pytest.raises(FeeError, match="positif"):
        CcamAct("ZBQK002", "x", "XR", "radiologie", D("0"))


def write_table(tmp_path: Path, *rows: str, header: str = ",".join(CCAM_COLUMNS), bom: bool = False) -> Path:
    path = tmp_path / "ccam.csv"
    path.write_text(("\ufeff" if bom else "") + "\n".join((header, *rows)) + "\n", encoding="utf-8")
    return path


@pytest.mark.charter("CH-7.1")
def test_CH7_1_load_a_replacement_table_with_the_same_columns(tmp_path: Path) -> None:
    path = write_table(
        tmp_path,
        'ACQK001,"Scanographie du crâne, sans injection",ct,Scanner,90.00,62.50',
        "ZCQM001,Échographie abdominale,US,echographie,56.70,",
        bom=True,
    )
    table = load_ccam(path)
    assert table["ACQK001"].technical_share_eur == D("62.50")
    assert table["ACQK001"].modality == "CT" and table["ACQK001"].family == "scanner"
    assert table["ZCQM001"].technical_share_eur is None
    assert load_ccam(str(path)) == table


@pytest.mark.charter("CH-7.1")
@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (("ZBQK002,Radio,XR,radiologie,21.28,", "ZBQK002,Radio,XR,radiologie,21.28,"), "deux fois"),
        (("ZBQK02,Radio,XR,radiologie,21.28,",), "code CCAM invalide"),
        (("ZBQK002,Radio,XR,radiologie,21,05,",), "ligne 2 : trop de colonnes"),
        (("ZBQK002,Radio,XR,radiologie,,",), "prix absent"),
        (("ZBQK002,Radio,XR,radiologie,vingt,",), "montant illisible"),
        (("ACQK001,Scanner,CT,scanner,85.27,",), "part technique"),
        ((), "aucun acte"),
    ],
)
def test_CH7_1_bad_tables_are_refused_with_the_line(tmp_path: Path, rows: tuple[str, ...], message: str) -> None:
    with pytest.raises(CcamTableError, match=message):
        load_ccam(write_table(tmp_path, *rows))


def test_table_with_missing_columns_or_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CcamTableError, match="colonnes manquantes : technical_share_eur"):
        load_ccam(write_table(tmp_path, "ZBQK002,Radio,XR,radiologie,21.28",
                              header="code,label,modality,family,price_eur"))
    with pytest.raises(CcamTableError, match="illisible"):
        load_ccam(tmp_path / "absent.csv")
